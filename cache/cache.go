// Package cache is the typed read-through in front of the access systems:
// email → account (access-system user, status, cloud-key credential),
// email → entries, and the user's favourites, in Redis with an in-process
// layer in front. Get returns a user's View and loads what is missing
// through the caller's Loader itself: single flight within a process, a
// load lock across replicas (loadlock.go), and, while Redis fails, the
// loaded view kept in process memory. Values carry TTLs with jitter so a
// building's users do not all expire at once; not-found is cached briefly
// so a typo does not hammer the access system.
//
// Everything a user has is keyed by canonical email, so the hot path reads
// it all in one pipelined round trip, or from process memory. A user of a
// namespaced connection is keyed "<connection>|<email>", so that
// DropConnection can drop a removed connection's users everywhere.
//
// It owns Redis keys and their encoding; it knows access-system types
// (package access) but no access-system client, no domain rule (what an
// inactive user may do is the caller's) and nothing of gRPC or the API.
//
// It imports access (the types it caches), go-redis and its record
// encoding (gen/cloudkey/cache/v1); it must not import unlock, server or
// any access-system adapter: loads come in through Loader.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"time"
	"unique"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"google.golang.org/protobuf/proto"

	"github.com/cloudkey/cloudkey/access"
	cachepb "github.com/cloudkey/cloudkey/gen/cloudkey/cache/v1"
)

// Config tunes the cache. Zero fields take the defaults below.
type Config struct {
	// Prefix starts every key; the version lets a new encoding ignore old
	// values. Default "ck:v1:".
	Prefix string
	// AccountTTL bounds how long a cached account (and so a cached
	// "active") is trusted. It is the move-out bound: a user suspended in
	// the access system is shown as connected for at most this long (the
	// access system still refuses every unlock at once). Default 30s.
	AccountTTL time.Duration
	// EntriesTTL bounds how long a cached entry list is used. Default 60s.
	EntriesTTL time.Duration
	// NotFoundTTL is how long "no such user" is remembered. Default 10s.
	NotFoundTTL time.Duration
	// Jitter adds up to this fraction of a TTL at random. Default 0.2.
	Jitter float64
	// LoadTimeout bounds one upstream load shared by concurrent callers;
	// each caller still stops waiting at its own deadline. Default 5s.
	LoadTimeout time.Duration
	// OpTimeout bounds each Redis round trip, so a sick Redis costs a
	// request at most this much before it is served from the access
	// system instead. Default 250ms.
	OpTimeout time.Duration
	// LocalTTL is how long a snapshot read from Redis is served from
	// process memory without asking Redis again, and never past the expiry
	// of the Redis copy it was read from, so it adds nothing to the TTLs
	// above. Invalidations reach every replica at once through Redis
	// pub/sub (see Run; a broken subscription drops the whole layer).
	// Default 30s; negative disables.
	LocalTTL time.Duration
	// LocalMaxBytes bounds the in-process layer's memory, by an estimate
	// of each user's snapshot (about 1 KB for five entries): when a new
	// snapshot would exceed it, users not read lately are dropped first
	// (CLOCK), and are read from Redis again when they come back.
	// Default DefaultLocalMaxBytes.
	LocalMaxBytes int64
	Logger        *slog.Logger
	// Observe, when set, is told the outcome of every Get by layer
	// ("local", "redis") and result ("hit", "miss", "error"), for the
	// hit-ratio metrics. It is called on the hot path with constant
	// strings: it must be cheap and must not block.
	Observe func(layer, result string)
}

// DefaultPrefix starts every cloudkey Redis key.
const DefaultPrefix = "ck:v1:"

// DefaultLocalMaxBytes is Config.LocalMaxBytes's default: 32 MiB (half
// of cloudkey serve's --cache-memory default), some 35,000 users of five
// entries in process memory per replica, the rest one Redis round trip
// away.
const DefaultLocalMaxBytes = 32 << 20

// DefaultAccountTTL is how long an account is cached when
// Config.AccountTTL is not set.
const DefaultAccountTTL = 30 * time.Second

func (c *Config) defaults() {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.AccountTTL <= 0 {
		c.AccountTTL = DefaultAccountTTL
	}
	if c.EntriesTTL <= 0 {
		c.EntriesTTL = 60 * time.Second
	}
	if c.NotFoundTTL <= 0 {
		c.NotFoundTTL = 10 * time.Second
	}
	if c.Jitter <= 0 {
		c.Jitter = 0.2
	}
	if c.LoadTimeout <= 0 {
		c.LoadTimeout = 5 * time.Second
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 250 * time.Millisecond
	}
	if c.LocalTTL == 0 {
		c.LocalTTL = 30 * time.Second
	}
	if c.LocalMaxBytes <= 0 {
		c.LocalMaxBytes = DefaultLocalMaxBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Account is an app user resolved to an access-system user.
type Account struct {
	access.User
	CredentialID string // the user's cloud-key credential; empty unless active
	FetchedAt    time.Time
}

// Found reports whether the access system knows the user.
func (a Account) Found() bool { return a.ID != "" }

// Loader loads what the cache lacks from the access system. LoadAccount
// returns an error matching access.ErrNotFound for an unknown user (the
// cache remembers that for NotFoundTTL); LoadEntries is asked only for an
// active user.
type Loader interface {
	LoadAccount(ctx context.Context, email string) (Account, error)
	LoadEntries(ctx context.Context, userID string) ([]access.Entry, error)
}

// View is what Get knows of one user. Entries is nil unless the account
// is active. The slices and map are shared: callers must not modify them.
type View struct {
	Account   Account
	Entries   []access.Entry
	Favorites map[string]bool
	// Version identifies the snapshot the view was served from while
	// process memory keeps it: two views of one email with the same
	// nonzero Version are equal, and any change (favourite, invalidation,
	// expiry, reload) gives the next view another, so what a caller derives
	// from a view can be kept under (email, Version) and reused. 0: the
	// view is not kept; derive afresh.
	Version uint64
}

// Parts of a user a LoadError names.
const (
	PartAccount = "account"
	PartEntries = "entries"
)

// LoadError is Get's only error: loading Part failed.
type LoadError struct {
	Part string // PartAccount or PartEntries
	// Err is the Loader's error or, when Stopped, the context's.
	Err error
	// Stopped: the wait ended (the caller's deadline or cancellation, or
	// LoadTimeout) before the load answered.
	Stopped bool
}

func (e *LoadError) Error() string { return "cache: load " + e.Part + ": " + e.Err.Error() }
func (e *LoadError) Unwrap() error { return e.Err }

// snapshot is what the cache holds for one email; Get loads the missing
// parts.
type snapshot struct {
	Account    Account
	HasAccount bool
	Entries    []access.Entry
	HasEntries bool
	Favorites  map[string]bool
	// version is set on a snapshot kept in process memory (View.Version).
	version uint64

	// For keepLoaded: the in-process layer's invalidation count when peek
	// began, and whether Redis failed.
	gen      uint64
	redisErr bool
}

// outageLocalTTL bounds what keepLoaded keeps: favourites live only in
// Redis, so such a copy lacks them, and it should give way soon to the
// Redis copy once Redis answers again.
const outageLocalTTL = 5 * time.Second

// Store is the Redis-backed cache. It is safe for concurrent use.
type Store struct {
	rdb   redis.UniversalClient
	cfg   Config
	sf    singleflight.Group
	local *local // nil when disabled
	// versions numbers the snapshots kept in process memory (View.Version).
	versions atomic.Uint64
}

// New returns a Store on rdb. Call Run to receive other replicas'
// invalidations.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	cfg.defaults()
	s := &Store{rdb: rdb, cfg: cfg}
	if cfg.LocalTTL > 0 {
		s.local = newLocal(cfg.LocalTTL, cfg.LocalMaxBytes)
	}
	return s
}

// Config returns the effective configuration.
func (s *Store) Config() Config { return s.cfg }

func (s *Store) accountKey(email string) string { return s.cfg.Prefix + "acct:{" + email + "}" }
func (s *Store) entriesKey(email string) string { return s.cfg.Prefix + "ent:{" + email + "}" }
func (s *Store) favKey(email string) string     { return s.cfg.Prefix + "fav:{" + email + "}" }

// Get returns email's view: from process memory when it is there, else
// from Redis in one round trip, loading what is missing through l (one
// load per email in this process, and for the account across replicas),
// within LoadTimeout in all (and ctx's deadline). A Redis failure is
// logged and served from l, and what l loaded is then kept in process
// memory for a few seconds, so that the next calls do not all go to the
// access system. A user not found, or not active, is a view whose
// Account says so. The only errors are *LoadError.
func (s *Store) Get(ctx context.Context, email string, l Loader) (View, error) {
	snap, err := s.peek(ctx, email)
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "cache unavailable; asking the access system", "err", err)
	}
	if snap.HasAccount && (snap.HasEntries || !snap.Account.Active()) {
		v := View{Account: snap.Account, Favorites: snap.Favorites, Version: snap.version}
		if snap.Account.Active() {
			v.Entries = snap.Entries
		}
		return v, nil
	}
	return s.load(ctx, email, l, snap)
}

// load completes snap through l. The load bound applies to the whole
// resolution (account, then entries), not to each.
func (s *Store) load(ctx context.Context, email string, l Loader, snap snapshot) (View, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LoadTimeout)
	defer cancel()
	v := View{Account: snap.Account, Favorites: snap.Favorites}
	if !snap.HasAccount {
		a, err := s.resolveAccount(ctx, email, func(ctx context.Context) (Account, error) {
			return l.LoadAccount(ctx, email)
		})
		if err != nil {
			return View{}, loadError(ctx, PartAccount, err)
		}
		v.Account = a
	}
	if !v.Account.Active() { // not found, or not active: no entries to load
		s.keepLoaded(email, snap, v.Account, nil)
		return v, nil
	}
	v.Entries = snap.Entries
	if !snap.HasEntries {
		userID := v.Account.ID
		es, err := s.resolveEntries(ctx, email, func(ctx context.Context) ([]access.Entry, error) {
			return l.LoadEntries(ctx, userID)
		})
		if err != nil {
			return View{}, loadError(ctx, PartEntries, err)
		}
		v.Entries = es
	}
	s.keepLoaded(email, snap, v.Account, v.Entries)
	return v, nil
}

func loadError(ctx context.Context, part string, err error) error {
	if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() != nil {
		return &LoadError{Part: part, Err: ctx.Err(), Stopped: true}
	}
	return &LoadError{Part: part, Err: err}
}

// peek returns everything cached for email, loading nothing: from process
// memory when it is there, else from Redis in one round trip (the hash
// tag {email} keeps the keys on one Redis Cluster slot). The snapshot is
// shared: callers must not modify its slices or map.
func (s *Store) peek(ctx context.Context, email string) (snapshot, error) {
	var gen uint64
	var now int64
	if s.local != nil {
		now = time.Now().UnixNano()
		if snap, ok := s.local.get(email, now); ok {
			s.observe("local", "hit")
			return snap, nil
		}
		s.observe("local", "miss")
		gen = s.local.gen.Load()
	}
	snap, life, err := s.getRedis(ctx, email)
	complete := err == nil && snap.HasAccount && (snap.HasEntries || !snap.Account.Active())
	switch {
	case err != nil:
		s.observe("redis", "error")
	case complete:
		s.observe("redis", "hit")
	default:
		s.observe("redis", "miss")
	}
	if complete && s.local != nil {
		snap.version = s.versions.Add(1)
		s.local.put(email, snap, gen, now, int64(life))
	}
	snap.gen, snap.redisErr = gen, err != nil
	return snap, err
}

// keepLoaded keeps in process memory what Get just loaded through its
// Loader for email after peek (which returned prev) failed on Redis, where
// the loads could not store it either: while Redis is unavailable the
// next calls are then served from memory instead of each going to the
// access system. entries may be nil for a user not found or not active.
// The copy lives outageLocalTTL at most, without favourites, and an
// invalidation drops it (or keeps it out, if it came during the load) as
// any other. Without an in-process layer, or when Redis did not fail, it
// does nothing.
func (s *Store) keepLoaded(email string, prev snapshot, acct Account, entries []access.Entry) {
	if s.local == nil || !prev.redisErr || (acct.Active() && entries == nil) {
		return
	}
	snap := snapshot{Account: acct, HasAccount: true, Entries: entries, HasEntries: entries != nil,
		version: s.versions.Add(1)}
	s.local.put(email, snap, prev.gen, time.Now().UnixNano(), int64(outageLocalTTL))
}

func (s *Store) observe(layer, result string) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(layer, result)
	}
}

// getRedis reads email's snapshot in one round trip, with how long its
// account and entries have left in Redis: the in-process copy must not
// outlive them (the account's TTL is the move-out bound).
func (s *Store) getRedis(ctx context.Context, email string) (snapshot, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	pipe := s.rdb.Pipeline()
	acct := pipe.Get(ctx, s.accountKey(email))
	ents := pipe.Get(ctx, s.entriesKey(email))
	favs := pipe.SMembers(ctx, s.favKey(email))
	acctTTL := pipe.PTTL(ctx, s.accountKey(email))
	entsTTL := pipe.PTTL(ctx, s.entriesKey(email))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return snapshot{}, 0, fmt.Errorf("cache: read %s: %w", email, err)
	}
	acctB, _ := acct.Bytes()
	entsB, _ := ents.Bytes()
	snap := decodeSnapshot(email, acctB, entsB, favs.Val())
	life := remaining(acctTTL.Val())
	if snap.HasEntries {
		life = min(life, remaining(entsTTL.Val()))
	}
	return snap, life, nil
}

// decodeSnapshot builds email's snapshot from its Redis values (nil:
// missing) and favourites, as small as it can be held in process memory:
// the account's email is the key's string when they are equal, the
// entries' strings are interned, and no map is made without favourites.
func decodeSnapshot(email string, acct, ents []byte, favs []string) snapshot {
	var snap snapshot
	if acct != nil {
		if a, err := decodeAccount(acct); err == nil {
			if a.Email == email { // one string for both
				a.Email = email
			}
			snap.Account, snap.HasAccount = a, true
		}
	}
	if ents != nil {
		if e, err := decodeEntries(ents); err == nil {
			snap.Entries, snap.HasEntries = e, true
		}
	}
	if len(favs) > 0 { // most users have none: nil
		snap.Favorites = make(map[string]bool, len(favs))
		for _, m := range favs {
			snap.Favorites[intern(m)] = true
		}
	}
	return snap
}

// remaining is a key's PTTL as a lifetime: a key without expiry lives on,
// a missing one (it expired between the reads) is already gone.
func remaining(pttl time.Duration) time.Duration {
	switch {
	case pttl == -1: // no expiry (go-redis passes -1 and -2 through as is)
		return time.Duration(math.MaxInt64)
	case pttl < 0:
		return 0
	}
	return pttl
}

// resolveAccount loads the account through load, shared by concurrent
// callers for the same email, and caches it (not-found for NotFoundTTL).
// load returns ErrNotFound-matching errors for unknown users.
func (s *Store) resolveAccount(ctx context.Context, email string, load func(context.Context) (Account, error)) (Account, error) {
	cached := func(ctx context.Context) (any, bool) {
		if b, ok := s.recheck(ctx, s.accountKey(email)); ok {
			if a, err := decodeAccount(b); err == nil {
				return a, true
			}
		}
		return nil, false
	}
	v, err := s.shared(ctx, "acct:"+email, func(ctx context.Context) (any, error) {
		// A caller that missed just before another load finished would
		// otherwise start a second one: look again first.
		if a, ok := cached(ctx); ok {
			return a, nil
		}
		// Across replicas too (loadlock.go).
		return s.underLoadLock(ctx, email, cached, func(ctx context.Context) (any, error) {
			return s.loadAccount(ctx, email, load)
		})
	})
	if err != nil {
		return Account{}, err
	}
	return v.(Account), nil
}

// loadAccount loads email's account and stores it (not-found too).
func (s *Store) loadAccount(ctx context.Context, email string, load func(context.Context) (Account, error)) (any, error) {
	a, err := load(ctx)
	if errors.Is(err, access.ErrNotFound) {
		a, err = Account{FetchedAt: time.Now()}, nil
	}
	if err != nil {
		return nil, err
	}
	if a.FetchedAt.IsZero() {
		a.FetchedAt = time.Now()
	}
	ttl := s.cfg.AccountTTL
	if !a.Found() {
		ttl = s.cfg.NotFoundTTL
	}
	s.store(ctx, s.accountKey(email), encodeAccount(a), ttl)
	return a, nil
}

// resolveEntries loads the entry list through load, shared by concurrent
// callers for the same email, and caches it.
func (s *Store) resolveEntries(ctx context.Context, email string, load func(context.Context) ([]access.Entry, error)) ([]access.Entry, error) {
	v, err := s.shared(ctx, "ent:"+email, func(ctx context.Context) (any, error) {
		if b, ok := s.recheck(ctx, s.entriesKey(email)); ok {
			if e, err := decodeEntries(b); err == nil {
				return e, nil
			}
		}
		e, err := load(ctx)
		if err != nil {
			return nil, err
		}
		s.store(ctx, s.entriesKey(email), encodeEntries(e), s.cfg.EntriesTTL)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]access.Entry), nil
}

// recheck reads key once more inside a shared load.
func (s *Store) recheck(ctx context.Context, key string) ([]byte, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	b, err := s.rdb.Get(ctx, key).Bytes()
	return b, err == nil
}

// store writes a loaded value; a failure only costs a later miss.
func (s *Store) store(ctx context.Context, key string, val []byte, ttl time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	if err := s.rdb.Set(ctx, key, val, s.jitter(ttl)).Err(); err != nil {
		s.cfg.Logger.Warn("cache: cannot store; serving uncached", "key", key, "err", err)
	}
}

// shared runs load once for all concurrent callers of key. The load runs
// detached from any one caller's cancellation (bounded by LoadTimeout) so
// that one impatient caller does not fail the others; each caller stops
// waiting at its own deadline.
func (s *Store) shared(ctx context.Context, key string, load func(context.Context) (any, error)) (any, error) {
	ch := s.sf.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.LoadTimeout)
		defer cancel()
		return load(lctx)
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// SetFavorite marks or unmarks entryID as one of email's favourites.
// Favourites are the user's own data: they have no TTL and survive
// invalidation.
func (s *Store) SetFavorite(ctx context.Context, email, entryID string, on bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	var err error
	if on {
		err = s.rdb.SAdd(ctx, s.favKey(email), entryID).Err()
	} else {
		err = s.rdb.SRem(ctx, s.favKey(email), entryID).Err()
	}
	if err != nil {
		return fmt.Errorf("cache: set favourite %s for %s: %w", entryID, email, err)
	}
	s.announce(ctx, email)
	return nil
}

// Invalidate drops what is cached about email's access (account and
// entries), so the next call asks the access system. Favourites stay.
func (s *Store) Invalidate(ctx context.Context, email string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	if s.local != nil {
		s.local.invalidate(email)
	}
	if err := s.rdb.Del(ctx, s.accountKey(email), s.entriesKey(email)).Err(); err != nil {
		return fmt.Errorf("cache: invalidate %s: %w", email, err)
	}
	s.announce(ctx, email)
	return nil
}

func (s *Store) jitter(ttl time.Duration) time.Duration {
	return ttl + time.Duration(rand.Float64()*s.cfg.Jitter*float64(ttl))
}

func encodeAccount(a Account) []byte {
	b, _ := proto.Marshal(&cachepb.Account{
		UserId:       a.ID,
		Email:        a.Email,
		Name:         a.Name,
		Status:       string(a.Status),
		CredentialId: a.CredentialID,
		FetchedAtMs:  a.FetchedAt.UnixMilli(),
	})
	return b
}

func decodeAccount(b []byte) (Account, error) {
	var m cachepb.Account
	if err := proto.Unmarshal(b, &m); err != nil {
		return Account{}, err
	}
	return Account{
		User:         access.User{ID: m.UserId, Email: m.Email, Name: m.Name, Status: access.Status(intern(m.Status))},
		CredentialID: m.CredentialId,
		FetchedAt:    time.UnixMilli(m.FetchedAtMs),
	}, nil
}

func encodeEntries(es []access.Entry) []byte {
	m := &cachepb.Entries{Entries: make([]*cachepb.Entry, len(es)), FetchedAtMs: time.Now().UnixMilli()}
	for i, e := range es {
		m.Entries[i] = &cachepb.Entry{Id: e.ID, Name: e.Name, Zone: e.Zone, Site: e.Site, Restriction: e.Restriction}
	}
	b, _ := proto.Marshal(m)
	return b
}

func decodeEntries(b []byte) ([]access.Entry, error) {
	var m cachepb.Entries
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	es := make([]access.Entry, len(m.Entries))
	for i, e := range m.Entries {
		es[i] = access.Entry{ID: intern(e.Id), Name: intern(e.Name), Zone: intern(e.Zone), Site: intern(e.Site),
			Restriction: intern(e.Restriction)}
	}
	return es, nil
}

// intern returns s's canonical copy: the users of a building share their
// doors' ids, names, zones and sites, so a snapshot in process memory
// holds references to one copy of each instead of copies of its own.
// Canonical copies are dropped by the runtime once nothing refers to them.
func intern(s string) string {
	if s == "" {
		return ""
	}
	return unique.Make(s).Value()
}
