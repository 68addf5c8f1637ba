package setup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/access/kisi/loginredis"
	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/server"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/visitor/envoyapi"
)

// pollEvery is how often a replica reads the properties' version: a
// change whose PUBLISH was lost still arrives within a second.
const pollEvery = 500 * time.Millisecond

// applyFile creates or updates, in the store, each property the file (or
// the shorthand, or the demo) names, to match it; nothing else is
// touched, so properties added through the admin API stay. The first of
// ps is made the default. A second start with the same file writes
// nothing.
func applyFile(ctx context.Context, store *propertyredis.Store, ps []property.Property, log *slog.Logger) error {
	// One read of what is stored; only what differs is written.
	snap, err := store.Load(ctx)
	if err != nil {
		return err
	}
	stored := make(map[string]propertyredis.Stored, len(snap.Properties))
	for _, st := range snap.Properties {
		stored[st.Property.ID] = st
	}
	var created, updated []string
	unchanged := 0
	for i, p := range ps {
		p.Default = i == 0
		st, existed := stored[p.ID]
		if existed && st.Err == nil && propertyredis.Same(st.Property, p) && (!p.Default || snap.Default == p.ID) {
			unchanged++
			continue
		}
		if existed && st.Err != nil {
			// Sealed with a key no longer given, say: the file's replaces it.
			log.Warn("a stored property does not open; the properties file's replaces it", "property", p.ID, "err", st.Err)
		}
		changed, err := store.Put(ctx, p)
		if err != nil {
			return fmt.Errorf("properties: apply %s: %w", p.ID, err)
		}
		switch {
		case !existed:
			created = append(created, p.ID)
		case changed:
			updated = append(updated, p.ID)
		default:
			unchanged++
		}
	}
	log.Info("properties applied", "created", created, "updated", updated, "unchanged", unchanged, "default", ps[0].ID)
	return nil
}

// builder makes a property's clients and Service, as the first start
// always did: clients log in lazily, at their first call.
type builder struct {
	cfg     Config
	rdb     redis.UniversalClient
	keys    *secrets.Keyring
	shared  sharedHTTP
	log     *slog.Logger
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	cache   *cache.Store
	engine  *unlock.Engine
}

// liveProperty is a property served and what was built for it.
type liveProperty struct {
	prop  property.Property
	hash  string // the stored record's, to rebuild only what changed
	conns []*liveConn
	svc   *unlock.Service
	envoy *envoyapi.Client // the tile's Envoy connection, or nil (envoy.go)
}

// liveConn is one connection of a liveProperty.
type liveConn struct {
	conn     unlock.Connection
	openpath *openpath.Client // one of these two
	kisi     *kisi.Client
	status   *connStatus
}

func (c *liveConn) closeIdle() {
	switch {
	case c.openpath != nil:
		c.openpath.CloseIdleConnections()
	case c.kisi != nil:
		c.kisi.CloseIdleConnections()
	}
}

func (c *liveConn) breakerState() string {
	switch {
	case c.openpath != nil:
		return c.openpath.BreakerState()
	case c.kisi != nil:
		return c.kisi.BreakerState()
	}
	return ""
}

// build makes p's clients (no login yet) and its Service. The default
// property's first connection keeps the system's own entry ids and the
// bare-email cache keys: what one Openpath system had before.
func (b *builder) build(p property.Property, hash string, isDefault bool) (*liveProperty, error) {
	lp := &liveProperty{prop: p, hash: hash}
	var err error
	if lp.envoy, err = newEnvoy(p, b.log); err != nil {
		return nil, err
	}
	conns := make([]unlock.Connection, 0, len(p.Access))
	for i, c := range p.Access {
		conn := unlock.Connection{ID: c.ID(p), Kind: c.System, Name: systemNames[c.System], Bare: isDefault && i == 0, Property: p.ID}
		label := conn.ID
		if conn.Bare && c.System == property.Openpath {
			label = property.Openpath // the metric label one Openpath system always had
		}
		lc := &liveConn{status: &connStatus{conn: conn.ID, log: b.log}}
		var sys access.System
		switch c.System {
		case property.Openpath:
			client, err := newOpenpath(b.cfg, c, label, b.shared.openpath, b.log, b.metrics, b.tracing)
			if err != nil {
				return nil, fmt.Errorf("property %s: connection %s: %w", p.ID, conn.ID, err)
			}
			lc.openpath, sys = client, client
		case property.Kisi:
			client, err := newKisi(b.cfg, c, conn.ID, b.shared.kisi, loginredis.New(b.rdb, b.keys, conn.ID), b.log, b.metrics, b.tracing)
			if err != nil {
				return nil, fmt.Errorf("property %s: connection %s: %w", p.ID, conn.ID, err)
			}
			lc.kisi, sys = client, client
		default:
			return nil, fmt.Errorf("property %s: connection %s: system %q is not supported", p.ID, conn.ID, c.System)
		}
		// Watched: a connection failing at first use (bad credentials,
		// unreachable) is shown by the admin API and logged once.
		conn.System = watched{System: sys, status: lc.status}
		lc.conn = conn
		lp.conns = append(lp.conns, lc)
		conns = append(conns, conn)
	}
	svc, err := unlock.NewPropertyService(conns, b.cache, b.engine, b.log)
	if err != nil {
		return nil, fmt.Errorf("property %s: %w", p.ID, err)
	}
	lp.svc = svc
	return lp, nil
}

// registry is the properties this replica serves: loaded from Redis at
// start and kept equal to it (the channel, and the version polled), each
// change swapped into the Portfolio. It is the admin API's directory and
// editor too.
type registry struct {
	store *propertyredis.Store
	b     *builder
	defID string
	log   *slog.Logger
	// grace is how long a replaced client is kept before its idle
	// connections are closed: calls in flight finish within it.
	grace time.Duration

	portfolio *unlock.Portfolio

	mu       sync.Mutex // one refresh at a time
	version  int64
	served   map[string]*liveProperty
	failing  bool             // the last refresh failed (logged once)
	refused  map[string]error // stored properties not served, logged once
	view     atomic.Pointer[[]*liveProperty]
	byID     atomic.Pointer[map[string]*liveProperty] // view's, by id
	releases []*time.Timer
	released []func() // what pending timers would run, run at close
	closed   bool
	stopLoop context.CancelFunc
	runCtx   context.Context // until close: the loop's and the clean-ups'
	// endPasses ends a removed property's guest passes (set once at
	// start, before the server serves).
	endPasses func(ctx context.Context, property string) (int, error)
	cleanups  sync.WaitGroup // removed properties' Kisi logins being deleted
	// onChange, when set, is told after each change of the served set
	// (the scheduled roster pulls follow it); it must not block.
	onChange atomic.Pointer[func()]
	// pmsView shows a property's pms block and last pull (set once at
	// start, before the server serves; nil: none shown).
	pmsView   func(property.Property) *server.PMSStatus
	loopDone  chan struct{}
	releaseMu sync.Mutex
}

// startRegistry loads the properties from Redis and builds each, then
// follows changes until close.
func startRegistry(ctx context.Context, store *propertyredis.Store, b *builder, grace time.Duration, log *slog.Logger) (*registry, error) {
	snap, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	if snap.Default == "" {
		return nil, errors.New("properties: Redis names no default property")
	}
	r := &registry{store: store, b: b, defID: snap.Default, log: log, grace: grace, served: map[string]*liveProperty{}, refused: map[string]error{}}
	svcs := map[string]*unlock.Service{}
	for _, st := range snap.Properties {
		if st.Err != nil {
			if st.Property.ID == snap.Default {
				return nil, fmt.Errorf("properties: the default property: %w", st.Err)
			}
			r.refuse(st.Property.ID, st.Err)
			continue
		}
		lp, err := b.build(st.Property, st.Hash, st.Property.ID == r.defID)
		if err != nil {
			if st.Property.ID == snap.Default {
				return nil, err
			}
			r.refuse(st.Property.ID, err)
			continue
		}
		r.served[lp.prop.ID] = lp
		svcs[lp.prop.ID] = lp.svc
	}
	if r.portfolio, err = unlock.NewPortfolio(r.defID, svcs); err != nil {
		return nil, err
	}
	r.version = snap.Version
	r.publishView()
	runCtx, stop := context.WithCancel(context.Background())
	r.runCtx, r.stopLoop, r.loopDone = runCtx, stop, make(chan struct{})
	go func() { defer close(r.loopDone); r.run(runCtx) }()
	return r, nil
}

// refuse logs, once per reason, a stored property this replica does not
// serve.
func (r *registry) refuse(id string, err error) {
	if prev, ok := r.refused[id]; ok && prev.Error() == err.Error() {
		return
	}
	r.refused[id] = err
	r.log.Error("a stored property is not served (the one served before, if any, stays)", "property", id, "err", err)
}

// run follows changes: each published one, and the version every
// pollEvery in case a message was lost.
func (r *registry) run(ctx context.Context) {
	changes := r.store.Changes(ctx)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			for range changes { // until the subscription is closed
			}
			return
		case <-changes:
		case <-tick.C:
		}
		r.refresh(ctx)
	}
}

// refresh brings the served properties to the stored version: a
// property whose record changed is rebuilt and swapped in, a removed one
// taken out; the replaced clients are released after the grace period.
func (r *registry) refresh(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := r.store.Version(rctx)
	if err == nil && v == r.version {
		r.recovered()
		return
	}
	var snap propertyredis.Snapshot
	if err == nil {
		snap, err = r.store.Load(rctx)
	}
	if err != nil {
		if !r.failing && ctx.Err() == nil {
			r.failing = true
			r.log.Error("properties: cannot read them from Redis; the ones served stay", "err", err)
		}
		return
	}
	r.recovered()
	seen := map[string]bool{}
	var replaced []*liveProperty
	for _, st := range snap.Properties {
		id := st.Property.ID
		seen[id] = true
		if cur := r.served[id]; cur != nil && cur.hash == st.Hash {
			continue
		}
		if st.Err != nil {
			r.refuse(id, st.Err)
			continue
		}
		lp, err := r.b.build(st.Property, st.Hash, id == r.defID)
		if err == nil {
			err = r.portfolio.Set(id, lp.svc)
		}
		if err != nil {
			r.refuse(id, err)
			continue
		}
		delete(r.refused, id)
		if old := r.served[id]; old != nil {
			replaced = append(replaced, old)
			r.log.Info("property updated", "property", id)
		} else {
			r.log.Info("property added", "property", id)
		}
		r.served[id] = lp
	}
	for id, old := range r.served {
		if seen[id] {
			continue
		}
		if err := r.portfolio.Remove(id); err != nil {
			r.refuse(id, err) // the default: it stays
			continue
		}
		delete(r.served, id)
		replaced = append(replaced, old)
		r.log.Info("property removed", "property", id)
	}
	for id := range r.refused {
		if !seen[id] {
			delete(r.refused, id)
		}
	}
	r.version = snap.Version
	r.publishView()
	r.release(replaced)
	if f := r.onChange.Load(); f != nil {
		(*f)()
	}
}

func (r *registry) recovered() {
	if r.failing {
		r.failing = false
		r.log.Info("properties: reading them from Redis again")
	}
}

// publishView makes the served set what Properties shows, the default
// first, then by id.
func (r *registry) publishView() {
	v := make([]*liveProperty, 0, len(r.served))
	for _, lp := range r.served {
		v = append(v, lp)
	}
	slices.SortFunc(v, func(a, b *liveProperty) int {
		switch {
		case a.prop.ID == r.defID:
			return -1
		case b.prop.ID == r.defID:
			return 1
		case a.prop.ID < b.prop.ID:
			return -1
		}
		return 1
	})
	byID := make(map[string]*liveProperty, len(v))
	for _, lp := range v {
		byID[lp.prop.ID] = lp
	}
	r.view.Store(&v)
	r.byID.Store(&byID)
}

// release closes the replaced properties' clients' idle connections once
// the calls in flight on them have had their deadline. The transports are
// shared by every connection of a system: this lets idle connections go,
// and the pool re-dials as needed.
func (r *registry) release(old []*liveProperty) {
	if len(old) == 0 {
		return
	}
	f := func() {
		for _, lp := range old {
			for _, c := range lp.conns {
				c.closeIdle()
			}
		}
	}
	r.releaseMu.Lock()
	defer r.releaseMu.Unlock()
	if r.closed {
		f()
		return
	}
	r.releases = append(r.releases, time.AfterFunc(r.grace, f))
	r.released = append(r.released, f)
}

// close stops following changes and releases every client.
func (r *registry) close() {
	r.stopLoop()
	<-r.loopDone
	r.cleanups.Wait() // ended by stopLoop: what is left stays stored
	r.releaseMu.Lock()
	r.closed = true
	for i, t := range r.releases {
		if t.Stop() {
			r.released[i]()
		}
	}
	r.releases, r.released = nil, nil
	r.releaseMu.Unlock()
	for _, lp := range *r.view.Load() {
		for _, c := range lp.conns {
			c.closeIdle()
		}
	}
}

// served returns the properties served now, the default first.
func (r *registry) properties() []property.Property {
	v := *r.view.Load()
	out := make([]property.Property, len(v))
	for i, lp := range v {
		out[i] = lp.prop
		out[i].Default = lp.prop.ID == r.defID
	}
	return out
}

// lookup is the served property id.
func (r *registry) lookup(id string) *liveProperty { return (*r.byID.Load())[id] }

// Serves reports whether property id is served (the admin API's check on
// every request naming a property).
func (r *registry) Serves(id string) bool { return r.lookup(id) != nil }

// propertyName is served property id's name ("" when not served): the
// guest page and messages show it when the building has no name.
func (r *registry) propertyName(id string) string {
	if lp := r.lookup(id); lp != nil {
		return lp.prop.Name
	}
	return ""
}

// guestAccess is the access system of property id's guest passes and
// Protect: its first Openpath connection (Kisi has no time-limited
// unlock tokens for guests); ok is false when it has none or is not
// served. It reads the served set at each call, so a property added or
// changed while serving issues passes through its current connection.
func (r *registry) guestAccess(id string) (access.GuestSystem, bool) {
	if lp := r.lookup(id); lp != nil {
		for _, c := range lp.conns {
			if c.openpath != nil {
				return c.openpath, true
			}
		}
	}
	return nil, false
}

// Properties lists the properties served, the default first: settings
// without secrets, and each connection's breaker and first-use failure.
func (r *registry) Properties() []server.PropertyStatus {
	v := *r.view.Load()
	out := make([]server.PropertyStatus, len(v))
	for i, lp := range v {
		p := lp.prop
		ps := server.PropertyStatus{ID: p.ID, Name: p.Name, TimeZone: p.TimeZone, Default: p.ID == r.defID}
		for j, c := range p.Access {
			lc := lp.conns[j]
			cs := server.ConnectionStatus{ID: c.ID(p), Name: c.Name, System: c.System, URL: c.URL, Org: c.Org, Email: c.Email, Places: c.Places,
				BreakerState: lc.breakerState(), SecretSet: c.Secret != ""}
			if f := lc.status.failure(); f != nil {
				cs.LastError, cs.LastErrorAt = f.text, f.at
			}
			ps.Connections = append(ps.Connections, cs)
		}
		if r.pmsView != nil {
			ps.PMS = r.pmsView(p)
		}
		out[i] = ps
	}
	return out
}

// Stored returns property id as stored, secrets included.
func (r *registry) Stored(ctx context.Context, id string) (property.Property, bool, error) {
	return r.store.Get(ctx, id)
}

// Create stores a new property and serves it here at once; the other
// replicas follow.
func (r *registry) Create(ctx context.Context, p property.Property) error {
	p.Default = false // the default is the properties file's
	if err := r.store.Create(ctx, p); err != nil {
		return err
	}
	r.refresh(ctx)
	return nil
}

// Update replaces a stored property.
func (r *registry) Update(ctx context.Context, p property.Property) error {
	p.Default = false // never moves the default (a false Default keeps it)
	old := r.lookup(p.ID)
	if _, err := r.store.Update(ctx, p); err != nil {
		return err
	}
	r.refresh(ctx)
	if old != nil {
		r.cleanUp(ctx, replaced(old, p))
	}
	return nil
}

// replaced are old's connections that p drops or points elsewhere (another
// system, URL or organisation): what they cached and the Kisi logins they
// made are another system's now. A new secret or other places keep them.
func replaced(old *liveProperty, p property.Property) []*liveConn {
	var out []*liveConn
	for i, oc := range old.prop.Access {
		j := slices.IndexFunc(p.Access, func(c property.Connection) bool { return c.Name == oc.Name })
		if j < 0 || p.Access[j].System != oc.System || p.Access[j].URL != oc.URL || p.Access[j].Org != oc.Org {
			out = append(out, old.conns[i])
		}
	}
	return out
}

// Remove forgets a property and cleans up after it: its Kisi logins are
// deleted (at Kisi and here) and its cached data dropped, by this replica
// (the one asked); every replica stops serving it.
func (r *registry) Remove(ctx context.Context, id string) error {
	lp := r.lookup(id)
	removed, err := r.store.Remove(ctx, id)
	if err != nil {
		return err
	}
	if !removed {
		return fmt.Errorf("property %s: %w", id, propertyredis.ErrNotFound)
	}
	r.refresh(ctx)
	if lp != nil {
		r.cleanUp(ctx, lp.conns)
	}
	if r.endPasses != nil {
		if n, err := r.endPasses(ctx, id); err != nil {
			r.log.Warn("removed property: its guest passes not all ended", "property", id, "ended", n, "err", err)
		} else if n > 0 {
			r.log.Info("removed property: its guest passes ended", "property", id, "ended", n)
		}
	}
	return nil
}

// cleanupTimeout bounds the deletion of a removed property's Kisi logins:
// at the organisation key's 5 requests per second, 3,000 logins.
const cleanupTimeout = 10 * time.Minute

// cleanUp deletes removed connections' Kisi logins (at Kisi, then here)
// and drops their cached data on every replica. The logins
// are deleted at the organisation key's pace (5 per second): it runs
// detached from the admin call, bounded by cleanupTimeout, and what it
// could not delete stays stored for the next attempt (logged).
func (r *registry) cleanUp(ctx context.Context, conns []*liveConn) {
	if len(conns) == 0 {
		return
	}
	for _, c := range conns {
		if c.conn.Bare {
			continue // the default property's: never removed
		}
		if n, err := r.b.cache.DropConnection(ctx, c.conn.ID); err != nil {
			r.log.Warn("removed connection: its cached data not all dropped", "connection", c.conn.ID, "dropped", n, "err", err)
		}
	}
	r.cleanups.Go(func() {
		ctx, cancel := context.WithTimeout(r.runCtx, cleanupTimeout)
		defer cancel()
		r.deleteLogins(ctx, conns)
	})
}

// deleteLogins deletes removed connections' Kisi logins at Kisi and here.
func (r *registry) deleteLogins(ctx context.Context, conns []*liveConn) {
	for _, c := range conns {
		if c.kisi == nil {
			continue
		}
		n, err := c.kisi.DeleteLogins(ctx)
		if err != nil {
			r.log.Warn("removed connection: its Kisi logins not all deleted; they stay stored", "connection", c.conn.ID, "deleted", n, "err", err)
			continue
		}
		r.log.Info("removed connection: its Kisi logins deleted at Kisi and here", "connection", c.conn.ID, "deleted", n)
	}
}

// CheckConnection proves a connection live before it is saved: a new
// client for it (outside the breakers of the clients serving) runs the
// system's Check. The error is an *access.CheckError saying why it
// failed (unreachable, bad credentials, unknown organisation or place),
// never with a secret in it.
func (r *registry) CheckConnection(ctx context.Context, c property.Connection) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch c.System {
	case property.Openpath:
		client, err := openpath.New(openpath.Config{BaseURL: c.URL, Email: c.Email, Password: c.Secret, OrgID: c.Org,
			HTTPClient: r.b.shared.openpath, MaxInFlight: -1, Name: c.Name})
		if err != nil {
			return err
		}
		return client.Check(ctx)
	case property.Kisi:
		client, err := kisi.New(kisi.Config{BaseURL: c.URL, APIKey: c.Secret, PlaceIDs: c.Places, HTTPClient: r.b.shared.kisi,
			Logins: loginredis.New(r.b.rdb, r.b.keys, "check"), MaxInFlight: -1, Name: c.Name, OrgRate: r.b.cfg.KisiOrgRate})
		if err != nil {
			return err
		}
		return client.Check(ctx)
	}
	return fmt.Errorf("system %q is not supported", c.System)
}

// watched is an access system whose failures at first use are recorded
// in status: a look-up or listing that fails other than "no such user"
// says the connection is failing; one that answers, that it works.
// Unlock errors are the door's, not the connection's.
type watched struct {
	access.System
	status *connStatus
}

func (w watched) FindUserByEmail(ctx context.Context, email string) (access.User, error) {
	u, err := w.System.FindUserByEmail(ctx, email)
	var se *access.StatusError
	if errors.As(err, &se) {
		// Nobody with that email is an empty answer; an HTTP error here
		// (even a 404: an unknown organisation) is the connection's.
		w.status.fail(ctx, err)
	} else {
		w.status.observe(ctx, err)
	}
	return u, err
}

func (w watched) ListUserEntries(ctx context.Context, userID string) ([]access.Entry, error) {
	es, err := w.System.ListUserEntries(ctx, userID)
	w.status.observe(ctx, err)
	return es, err
}

// connStatus is a connection's first-use state: its last failure, logged
// once per change of state, not per request.
type connStatus struct {
	conn    string
	log     *slog.Logger
	failing atomic.Bool
	last    atomic.Pointer[connFailure]
}

type connFailure struct {
	text string
	at   time.Time
}

func (s *connStatus) observe(ctx context.Context, err error) {
	switch {
	case err == nil, errors.Is(err, access.ErrNotFound), errors.Is(err, access.ErrAmbiguous):
		if s.failing.Load() && s.failing.CompareAndSwap(true, false) {
			s.last.Store(nil)
			s.log.Info("access-system connection works again", "connection", s.conn)
		}
	default:
		s.fail(ctx, err)
	}
}

// fail records err as the connection's failure, unless the caller gave up.
func (s *connStatus) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // the caller gave up: not the connection's failure
	}
	s.last.Store(&connFailure{text: classify(err).Error(), at: time.Now()})
	if s.failing.CompareAndSwap(false, true) {
		s.log.Error("access-system connection failing", "connection", s.conn, "err", classify(err))
	}
}

func (s *connStatus) failure() *connFailure { return s.last.Load() }

// classify says why a connection failed at first use, in the words of a
// failed check (bad credentials, unreachable, unexpected answer).
func classify(err error) error {
	return fmt.Errorf("%s: %w", access.CheckFailure("", err).Reason, err)
}

// Directories gives property id's time zone and its connections' user
// directories, for roster reports; ok is false when it is not served. It
// reads the served set at each call, like guestAccess.
func (r *registry) Directories(id string) (string, []reconcile.Connection, bool) {
	lp := r.lookup(id)
	if lp == nil {
		return "", nil, false
	}
	conns := make([]reconcile.Connection, 0, len(lp.conns))
	for _, c := range lp.conns {
		switch {
		case c.openpath != nil:
			conns = append(conns, reconcile.Connection{Name: c.conn.ID, Directory: c.openpath})
		case c.kisi != nil:
			conns = append(conns, reconcile.Connection{Name: c.conn.ID, Directory: c.kisi})
		}
	}
	return lp.prop.TimeZone, conns, true
}
