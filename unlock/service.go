package unlock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/cache"
)

// MaxUnlockEntries is the most entries one Unlock may name.
const MaxUnlockEntries = 50

// Reasons, shared with the API (GetMe.reason and google.rpc.ErrorInfo).
const (
	ReasonUserNotFound      = "USER_NOT_FOUND"
	ReasonUserDisabled      = "USER_DISABLED"
	ReasonNoEntries         = "NO_ENTRIES"
	ReasonEntryNotFound     = "ENTRY_NOT_FOUND"
	ReasonAccessUnavailable = "ACCESS_UNAVAILABLE"
	// ReasonUnknownProperty: the token names a property not served here.
	ReasonUnknownProperty = "UNKNOWN_PROPERTY"
)

// Domain errors; the server maps each to a gRPC status in one place.
var (
	ErrUserNotFound = errors.New("no access-system user has this email; ask your property manager to add you")
	ErrUserDisabled = errors.New("your access-system user is suspended or inactive; ask your property manager")
	// ErrUnavailable: the access system could not answer in time.
	ErrUnavailable = errors.New("the access system is unavailable; try again")
)

// EntryNotFoundError: the entry is not one the user may open.
type EntryNotFoundError struct{ EntryID string }

func (e *EntryNotFoundError) Error() string {
	return fmt.Sprintf("entry %q is not one of your entries", e.EntryID)
}

// InvalidArgumentError names the request field that is wrong and why.
type InvalidArgumentError struct {
	Field  string
	Reason string
}

func (e *InvalidArgumentError) Error() string { return e.Field + ": " + e.Reason }

// Entry is an entry as the resident sees it.
type Entry struct {
	access.Entry
	Favorite bool
	System   string // the kind of access system it is on: "openpath", "kisi"
	Property string // the id of the property it is at
}

// Me is the resident's link to the access system.
type Me struct {
	Email      string
	Connected  bool
	Reason     string // "" or one of the Reason constants
	Message    string
	Name       string
	EntryCount int
	// Systems is each connection's answer, in the property's order.
	Systems []SystemAnswer
}

// Cache is what Service needs of the cache (cache.Store): a view, read
// through loader, and the two writes. Keys are the service's: the email
// for a connection with bare ids, "<connection id>|<email>" for others.
type Cache interface {
	Get(ctx context.Context, key string, l cache.Loader) (cache.View, error)
	SetFavorite(ctx context.Context, key, entryID string, on bool) error
	Invalidate(ctx context.Context, key string) error
}

// Connection is one access-system connection of a property: the resident
// sees the union of their doors in every connection.
type Connection struct {
	// ID names the connection ("harbor-view.kisi"): no "|", at most one
	// ".". It prefixes its entries' ids and its cache keys, so the same
	// door keeps the same id whatever else a caller's token covers.
	ID string
	// Kind is the system ("openpath", "kisi"), shown on each entry.
	Kind string
	// Name is for people: audit and messages ("Kisi").
	Name   string
	System access.System
	// Bare keeps the system's own entry ids and the bare email as cache
	// key: the first connection of the default property, so the ids and
	// cached data from before several systems keep working.
	Bare bool
	// Property is the id of the property the connection belongs to,
	// named on each of its entries.
	Property string
}

// conn is a Connection as the service uses it.
type conn struct {
	Connection
	loader   cache.Loader // boxed once: the hot path passes it as is
	idPrefix string       // ID + "."; unused when Bare
}

// key is email's cache key in c.
func (c *conn) key(email string) string {
	if c.Bare {
		return email
	}
	return c.ID + "|" + email
}

// rawID is the system's own id behind the id the resident sees; ok is
// false when id is not one of c's form.
func (c *conn) rawID(id string) (raw string, ok bool) {
	if c.Bare {
		return id, true
	}
	return strings.CutPrefix(id, c.idPrefix)
}

// entryID is the id the resident sees for c's entry raw.
func (c *conn) entryID(raw string) string {
	if c.Bare {
		return raw
	}
	return c.idPrefix + raw
}

// Service is the resident use cases on a property's access systems: it
// resolves an app user (canonical email) to each system's user through the
// cache, lists the union of their entries, checks the entries they name,
// fans unlocks out through the Engine (which audits each attempt), and
// drops the user's cached view of a system when it refuses. Safe for
// concurrent use.
type Service struct {
	conns  []*conn
	cache  Cache
	engine *Engine
	log    *slog.Logger
}

// NewService returns a Service for one access system whose entries keep
// their own ids.
func NewService(sys access.System, sysName string, c Cache, engine *Engine, log *slog.Logger) *Service {
	s, _ := NewPropertyService([]Connection{{ID: sysName, Kind: sysName, Name: sysName, System: sys, Bare: true}}, c, engine, log)
	return s
}

// NewPropertyService returns a Service over a property's connections. At
// most one connection may be Bare, and ids must be distinct.
func NewPropertyService(conns []Connection, c Cache, engine *Engine, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.Default()
	}
	if len(conns) == 0 {
		return nil, errors.New("unlock: a property needs at least one access-system connection")
	}
	s := &Service{cache: c, engine: engine, log: log}
	seen := map[string]bool{}
	bare := 0
	for _, cn := range conns {
		switch {
		case cn.System == nil:
			return nil, fmt.Errorf("unlock: connection %q has no access system", cn.ID)
		case cn.ID == "" || strings.Contains(cn.ID, "|") || strings.Count(cn.ID, ".") > 1:
			return nil, fmt.Errorf("unlock: connection id %q: want a non-empty id without \"|\" and with at most one \".\"", cn.ID)
		case seen[cn.ID]:
			return nil, fmt.Errorf("unlock: connection id %q is used twice", cn.ID)
		}
		seen[cn.ID] = true
		if cn.Bare {
			bare++
		}
		if cn.Name == "" {
			cn.Name = cn.Kind
		}
		l := loader{sys: cn.System}
		if !cn.Bare {
			l.prefix = cn.ID + "|"
		}
		s.conns = append(s.conns, &conn{Connection: cn, loader: l, idPrefix: cn.ID + "."})
	}
	if bare > 1 {
		return nil, errors.New("unlock: at most one connection may keep bare entry ids")
	}
	return s, nil
}

// property is the id of the property s serves (every connection of a
// Service is one property's).
func (s *Service) property() string { return s.conns[0].Property }

// connOf returns the connection an entry id belongs to and the system's
// own id for it; ok is false when no connection claims it. A namespaced
// id goes to its connection, any other to the bare one.
func (s *Service) connOf(entryID string) (c *conn, raw string, ok bool) {
	var bare *conn
	for _, c := range s.conns {
		if c.Bare {
			bare = c
		} else if r, found := c.rawID(entryID); found {
			return c, r, true
		}
	}
	if bare != nil {
		return bare, entryID, true
	}
	return nil, "", false
}

// resolve returns email's view in c, loaded through the cache (see
// cache.Get: one load per user, bounded by the cache's LoadTimeout and
// ctx), with the domain error for a user who is unknown, not active, or
// cannot be resolved now.
func (s *Service) resolve(ctx context.Context, c *conn, email string) (cache.View, error) {
	v, err := s.cache.Get(ctx, c.key(email), c.loader)
	if err != nil {
		return cache.View{}, upstream(err)
	}
	// The view comes back with the domain errors too: its Version counts
	// in a listing over several systems (Listing).
	if !v.Account.Active() {
		if !v.Account.Found() {
			return v, ErrUserNotFound
		}
		return v, ErrUserDisabled
	}
	return v, nil
}

// connView is one connection's answer for a user.
type connView struct {
	c    *conn
	view cache.View
	err  error // nil, ErrUserNotFound, ErrUserDisabled or unavailable
}

// views resolves email in every connection, concurrently when there are
// several (the first in the caller's goroutine), each under ctx.
func (s *Service) views(ctx context.Context, email string) []connView {
	out := make([]connView, len(s.conns))
	var wg sync.WaitGroup
	for i, c := range s.conns[1:] {
		wg.Go(func() {
			v, err := s.resolve(ctx, c, email)
			out[i+1] = connView{c: c, view: v, err: err}
		})
	}
	c := s.conns[0]
	v, err := s.resolve(ctx, c, email)
	out[0] = connView{c: c, view: v, err: err}
	wg.Wait()
	return out
}

// combined is the answer over every connection (combine).
func combined(vs []connView) error {
	return combine(len(vs), func(i int) error { return vs[i].err })
}

// combine is the answer over n parts (connections, properties) whose
// i-th answer is err(i): nil when at least one has the user active; else
// ErrUserNotFound when none knows the email, ErrUserDisabled when every
// one that knows it has the user disabled, or the first part's failure.
func combine(n int, err func(int) error) error {
	var failure error
	notFound := true
	for i := range n {
		switch e := err(i); {
		case e == nil:
			return nil
		case errors.Is(e, ErrUserNotFound):
		case errors.Is(e, ErrUserDisabled):
			notFound = false
		case failure == nil:
			failure = e
		}
	}
	switch {
	case failure != nil:
		return failure
	case notFound:
		return ErrUserNotFound
	}
	return ErrUserDisabled
}

// loader is the cache's Loader on the access system. The cache hands it
// the key it was asked for; prefix ("<connection id>|", or "" for the
// bare email) is cut to get the email.
type loader struct {
	sys    access.System
	prefix string
}

// LoadAccount finds the user and, when active, makes sure they have a
// cloud key: the first successful resolution creates it. The cache's
// single flight and load lock make concurrent first calls share this one
// load.
func (l loader) LoadAccount(ctx context.Context, key string) (cache.Account, error) {
	email := strings.TrimPrefix(key, l.prefix)
	u, err := l.sys.FindUserByEmail(ctx, email)
	if err != nil {
		return cache.Account{}, err
	}
	a := cache.Account{User: u, FetchedAt: time.Now()}
	if !u.Active() {
		return a, nil
	}
	if a.CredentialID, err = l.sys.EnsureCloudKey(ctx, u); err != nil {
		return cache.Account{}, fmt.Errorf("ensure cloud key for user %s: %w", u.ID, err)
	}
	return a, nil
}

// LoadEntries lists the entries the user may open.
func (l loader) LoadEntries(ctx context.Context, userID string) ([]access.Entry, error) {
	return l.sys.ListUserEntries(ctx, userID)
}

// upstream turns the cache's load error into the domain's: the wait's
// end as itself, anything else as ErrUnavailable.
func upstream(err error) error {
	var le *cache.LoadError
	if !errors.As(err, &le) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	op := "find user"
	if le.Part == cache.PartEntries {
		op = "list entries"
	}
	if le.Stopped {
		return fmt.Errorf("%s: %w", op, le.Err)
	}
	// Not logged here: the server logs every UNAVAILABLE answer once, with
	// this error (and so op and the access system's error) in it.
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, le.Err)
}

// SystemAnswer is one connection's answer for the caller, so the app and
// the manager see which side to fix.
type SystemAnswer struct {
	Property   string // the property's id
	Connection string // the connection id
	System     string // its kind: "openpath", "kisi"
	Connected  bool
	// Reason is "" (connected, with entries) or USER_NOT_FOUND,
	// USER_DISABLED, NO_ENTRIES or ACCESS_UNAVAILABLE.
	Reason     string
	Message    string
	EntryCount int
}

// Me describes email's link to the access systems. Unknown and disabled
// users are answers here, not errors; so is a system that cannot answer
// now while another can.
func (s *Service) Me(ctx context.Context, email string) (Me, error) {
	me := Me{Email: email}
	vs := s.views(ctx, email)
	for _, v := range vs {
		a := SystemAnswer{Property: v.c.Property, Connection: v.c.ID, System: v.c.Kind}
		switch {
		case errors.Is(v.err, ErrUserNotFound):
			a.Reason, a.Message = ReasonUserNotFound, fmt.Sprintf("%s has no user with this email", v.c.Name)
		case errors.Is(v.err, ErrUserDisabled):
			a.Reason, a.Message = ReasonUserDisabled, fmt.Sprintf("your %s user is suspended or inactive", v.c.Name)
		case v.err != nil:
			a.Reason, a.Message = ReasonAccessUnavailable, fmt.Sprintf("%s is unavailable; try again", v.c.Name)
		default:
			a.Connected, a.EntryCount = true, len(v.view.Entries)
			if me.Name == "" {
				me.Name = v.view.Account.Name
			}
			if a.EntryCount == 0 {
				a.Reason, a.Message = ReasonNoEntries, fmt.Sprintf("connected to %s, with no entries there", v.c.Name)
			} else {
				a.Message = fmt.Sprintf("connected to %s: %s", v.c.Name, entries(a.EntryCount))
			}
		}
		me.Systems = append(me.Systems, a)
		me.EntryCount += a.EntryCount
	}
	return me.summarize(combined(vs))
}

// summarize sets me's top-level answer from err, the combined answer of
// its parts (combine), and its entry count: unknown and disabled users
// are answers, a failure with no part connected is the error.
func (me Me) summarize(err error) (Me, error) {
	switch {
	case errors.Is(err, ErrUserNotFound):
		me.Reason, me.Message = ReasonUserNotFound, ErrUserNotFound.Error()
	case errors.Is(err, ErrUserDisabled):
		me.Reason, me.Message = ReasonUserDisabled, ErrUserDisabled.Error()
	case err != nil:
		return Me{}, err
	case me.EntryCount == 0:
		me.Connected = true
		me.Reason, me.Message = ReasonNoEntries, "you are connected but have no entries yet; ask your property manager"
	default:
		me.Connected = true
		me.Message = "connected: " + entries(me.EntryCount)
	}
	return me, nil
}

// Entries lists email's entries, favourites first, then by name.
func (s *Service) Entries(ctx context.Context, email string) ([]Entry, error) {
	l, err := s.Listing(ctx, email)
	if err != nil {
		return nil, err
	}
	return l.Entries(), nil
}

// MaxVersioned is the most connections whose listing can be versioned
// (Listing.Version); a property with more is listed afresh every time.
const MaxVersioned = 4

// ListingVersion identifies the cached views a listing comes from: the
// cache's View.Version of each connection's view. The zero value means
// "derive afresh".
type ListingVersion [MaxVersioned]uint64

// Listing is a user's entries as Entries lists them, sorted on demand,
// with the version of the cached views they come from: a caller that
// keeps what it derives from a listing (the server keeps its encoded
// answer) can reuse it for the next listing of the same user with the
// same nonzero Version, without sorting again.
type Listing struct {
	// Version is zero when any view is not kept by the cache.
	Version ListingVersion
	views   []connView
	one     connView // the view of a property with one connection: no slice to allocate
}

// Entries returns the listing's entries, favourites first, then by name.
func (l Listing) Entries() []Entry {
	if l.views == nil {
		return sortedEntries([]connView{l.one})
	}
	return sortedEntries(l.views)
}

// Listing resolves email as Entries does, and returns its entries unsorted
// with their version. A connection that cannot answer now while another
// has the user active leaves its entries out.
func (s *Service) Listing(ctx context.Context, email string) (Listing, error) {
	if len(s.conns) == 1 { // the common case, without a slice of views
		c := s.conns[0]
		v, err := s.resolve(ctx, c, email)
		if err != nil {
			return Listing{}, err
		}
		return Listing{Version: ListingVersion{v.Version}, one: connView{c: c, view: v}}, nil
	}
	vs := s.views(ctx, email)
	if err := combined(vs); err != nil {
		return Listing{}, err
	}
	l := Listing{views: vs}
	if len(vs) > MaxVersioned {
		return l, nil
	}
	for i, v := range vs {
		if v.view.Version == 0 { // not kept, or the system did not answer
			return Listing{views: vs}, nil
		}
		l.Version[i] = v.view.Version
	}
	return l, nil
}

// sortedEntries is the union of the views' entries, favourites first,
// then by name.
func sortedEntries(vs []connView) []Entry {
	n := 0
	for _, v := range vs {
		n += len(v.view.Entries)
	}
	out := make([]Entry, 0, n)
	for _, v := range vs {
		if v.err != nil {
			continue
		}
		for _, e := range v.view.Entries {
			fav := v.view.Favorites[e.ID]
			e.ID = v.c.entryID(e.ID)
			out = append(out, Entry{Entry: e, Favorite: fav, System: v.c.Kind, Property: v.c.Property})
		}
	}
	sortEntries(out)
	return out
}

// sortEntries puts favourites first, then sorts by name.
func sortEntries(out []Entry) {
	slices.SortStableFunc(out, func(a, b Entry) int {
		if a.Favorite != b.Favorite {
			if a.Favorite {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// SetFavorite marks or unmarks one of email's entries.
func (s *Service) SetFavorite(ctx context.Context, email, entryID string, on bool) (Entry, error) {
	if strings.TrimSpace(entryID) == "" {
		return Entry{}, &InvalidArgumentError{Field: "entry_id", Reason: "must not be empty"}
	}
	c, raw, ok := s.connOf(entryID)
	if !ok {
		// Still a domain error for an unknown or disabled user.
		if err := combined(s.views(ctx, email)); err != nil {
			return Entry{}, err
		}
		return Entry{}, &EntryNotFoundError{EntryID: entryID}
	}
	v, err := s.resolve(ctx, c, email)
	if err != nil {
		if len(s.conns) > 1 && (errors.Is(err, ErrUserNotFound) || errors.Is(err, ErrUserDisabled)) {
			if err := combined(s.views(ctx, email)); err != nil {
				return Entry{}, err
			}
			return Entry{}, &EntryNotFoundError{EntryID: entryID}
		}
		return Entry{}, err
	}
	for _, e := range v.Entries {
		if e.ID == raw {
			if err := s.cache.SetFavorite(ctx, c.key(email), raw, on); err != nil {
				return Entry{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			e.ID = entryID
			return Entry{Entry: e, Favorite: on, System: c.Kind, Property: c.Property}, nil
		}
	}
	return Entry{}, &EntryNotFoundError{EntryID: entryID}
}

// Invalidate drops what every connection's cache holds about email's
// access, so the next call asks the access systems. Favourites stay.
func (s *Service) Invalidate(ctx context.Context, email string) error {
	var errs []error
	for _, c := range s.conns {
		if err := s.cache.Invalidate(ctx, c.key(email)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ValidateUnlock checks an unlock request's entry ids.
func ValidateUnlock(entryIDs []string) error {
	switch {
	case len(entryIDs) == 0:
		return &InvalidArgumentError{Field: "entry_ids", Reason: "name at least one entry"}
	case len(entryIDs) > MaxUnlockEntries:
		return &InvalidArgumentError{Field: "entry_ids", Reason: fmt.Sprintf("at most %d entries per call, got %d", MaxUnlockEntries, len(entryIDs))}
	}
	seen := make(map[string]struct{}, len(entryIDs))
	for i, id := range entryIDs {
		if strings.TrimSpace(id) == "" || len(id) > 128 {
			return &InvalidArgumentError{Field: fmt.Sprintf("entry_ids[%d]", i), Reason: "must be a non-empty entry id of at most 128 characters"}
		}
		if _, dup := seen[id]; dup {
			return &InvalidArgumentError{Field: fmt.Sprintf("entry_ids[%d]", i), Reason: fmt.Sprintf("entry %q is named twice", id)}
		}
		seen[id] = struct{}{}
	}
	return nil
}

// Unlock opens email's entries and returns a result per entry. An entry
// the user may not open is DENIED without an upstream call. When an
// access system refuses, the user's cached view of it is dropped so the
// next call sees the access system's truth (move-out). The whole call,
// the user's resolution included, runs under the engine's deadline: the
// sooner of ctx's and the server cap. Each connection named resolves the
// user and opens its entries on its own, concurrently, so a slow or dead
// system fails only its own entries.
func (s *Service) Unlock(ctx context.Context, email string, entryIDs []string) ([]Result, error) {
	if err := ValidateUnlock(entryIDs); err != nil {
		return nil, err
	}
	ctx, cancel := s.engine.WithDeadline(ctx)
	defer cancel()
	if len(s.conns) == 1 { // the common case: one system, no grouping
		c := s.conns[0]
		v, err := s.resolve(ctx, c, email)
		if err != nil {
			return nil, err
		}
		results := s.engine.Unlock(ctx, Request{Email: email, EntryIDs: entryIDs, Property: s.property(), Targets: c.targets(v)})
		s.dropRefused(ctx, c, email, results)
		return results, nil
	}
	return s.unlockAcross(ctx, email, entryIDs)
}

// targets says what to call for each of c's entries in view v.
func (c *conn) targets(v cache.View) func(string) ([]Target, bool) {
	return func(id string) ([]Target, bool) {
		raw, ok := c.rawID(id)
		if !ok {
			return nil, false
		}
		for _, e := range v.Entries {
			if e.ID == raw {
				return []Target{{
					System: c.System, SystemName: c.Name, Connection: c.ID,
					UserID: v.Account.ID, CredentialID: v.Account.CredentialID, EntryID: raw,
					Restriction: e.Restriction,
				}}, true
			}
		}
		return nil, false
	}
}

// unlockAcross is Unlock over several connections: the ids are grouped by
// connection, and each group resolves the user in its connection and
// opens its entries concurrently with the others. When no connection has
// the user active, the call fails as with one system (unknown, disabled,
// unavailable) and nothing is sent.
func (s *Service) unlockAcross(ctx context.Context, email string, entryIDs []string) ([]Result, error) {
	groups, unclaimed := groupIDs(entryIDs, func(id string) (*conn, bool) {
		c, _, ok := s.connOf(id)
		return c, ok
	})
	results := make([]Result, len(entryIDs))
	errs := make([]error, len(groups))
	run := func(i int) {
		g := groups[i]
		v, err := s.resolve(ctx, g.owner, email)
		if errs[i] = err; err != nil {
			return
		}
		rs := s.engine.Unlock(ctx, Request{Email: email, EntryIDs: g.ids, Property: s.property(), Targets: g.owner.targets(v)})
		s.dropRefused(ctx, g.owner, email, rs)
		g.place(results, rs)
	}
	if len(groups) > 0 { // the first group in this goroutine, the others beside it
		var wg sync.WaitGroup
		for i := range groups[1:] {
			wg.Go(func() { run(i + 1) })
		}
		run(0)
		wg.Wait()
	}
	if !slices.Contains(errs, nil) {
		// Nothing was sent. Ask every connection, as GetMe does, so the
		// caller hears "unknown" only when no system knows the email.
		if err := combined(s.views(ctx, email)); err != nil {
			return nil, err
		}
	}
	for i, g := range groups {
		if errs[i] == nil {
			continue
		}
		// The user could not be resolved in this system: its entries are
		// answered (and audited) without an upstream call.
		c := g.owner
		st, msg := Denied, fmt.Sprintf("you have no %s access here", c.Name)
		switch {
		case errors.Is(errs[i], ErrUserDisabled):
			msg = fmt.Sprintf("your %s user is suspended or inactive; ask your property manager", c.Name)
		case errors.Is(errs[i], ErrUserNotFound):
		case errors.Is(errs[i], context.DeadlineExceeded):
			st, msg = Unavailable, fmt.Sprintf("%s did not answer in time; nothing was sent to the door", c.Name)
		default:
			st, msg = Unavailable, fmt.Sprintf("%s is unavailable; try again", c.Name)
		}
		g.place(results, s.engine.Unlock(ctx, Request{Email: email, EntryIDs: g.ids, Property: s.property(), Targets: func(string) ([]Target, bool) {
			return []Target{{SystemName: c.Name, Connection: c.ID, Outcome: st, Reason: msg}}, true
		}}))
	}
	s.engine.denyUnclaimed(ctx, email, s.property(), unclaimed, results)
	return results, nil
}

// dropRefused drops email's cached view of c when c refused one of the
// results, so the next call sees the access system's truth.
func (s *Service) dropRefused(ctx context.Context, c *conn, email string, results []Result) {
	for _, r := range results {
		if r.Refused {
			ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			if err := s.cache.Invalidate(ictx, c.key(email)); err != nil {
				s.log.WarnContext(ctx, "cannot drop cache after refusal", "err", err)
			}
			cancel()
			return
		}
	}
}

// entries is "1 entry" or "n entries".
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}
