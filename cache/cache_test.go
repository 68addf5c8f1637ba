package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
)

var alice = Account{User: access.User{ID: "1", Email: "alice@example.com", Name: "Alice", Status: access.StatusActive}, CredentialID: "9"}

func TestContract(t *testing.T) {
	for name, dial := range backends.All() {
		t.Run(name, func(t *testing.T) {
			t.Run("read through", func(t *testing.T) { testReadThrough(t, dial(t)) })
			t.Run("not found is cached briefly", func(t *testing.T) { testNotFound(t, dial(t)) })
			t.Run("single flight", func(t *testing.T) { testSingleFlight(t, dial(t)) })
			t.Run("favourites survive invalidation", func(t *testing.T) { testFavorites(t, dial(t)) })
			t.Run("ttl jitter", func(t *testing.T) { testTTL(t, dial(t)) })
			t.Run("load error is not cached", func(t *testing.T) { testLoadError(t, dial(t)) })
		})
	}
}

func testReadThrough(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	s := New(rdb, Config{})
	snap, err := s.peek(ctx, "alice@example.com")
	if err != nil || snap.HasAccount || snap.HasEntries || len(snap.Favorites) != 0 {
		t.Fatalf("empty cache: Get = %+v, %v", snap, err)
	}
	var loads atomic.Int32
	a, err := s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) {
		loads.Add(1)
		return alice, nil
	})
	if err != nil || a.ID != "1" || a.CredentialID != "9" {
		t.Fatalf("ResolveAccount = %+v, %v", a, err)
	}
	entries := []access.Entry{{ID: "101", Name: "Lobby", Zone: "Main", Site: "HQ"}, {ID: "102", Name: "Garage"}}
	if _, err := s.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) { return entries, nil }); err != nil {
		t.Fatal(err)
	}
	snap, err = s.peek(ctx, "alice@example.com")
	if err != nil || !snap.HasAccount || !snap.HasEntries {
		t.Fatalf("after resolve: Get = %+v, %v", snap, err)
	}
	if snap.Account.User != alice.User || snap.Account.CredentialID != "9" || snap.Account.FetchedAt.IsZero() {
		t.Errorf("cached account = %+v, want %+v", snap.Account, alice)
	}
	if fmt.Sprint(snap.Entries) != fmt.Sprint(entries) {
		t.Errorf("cached entries = %v, want %v", snap.Entries, entries)
	}
	if err := s.Invalidate(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if snap, _ = s.peek(ctx, "alice@example.com"); snap.HasAccount || snap.HasEntries {
		t.Errorf("after Invalidate: %+v", snap)
	}
}

func testNotFound(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	s := New(rdb, Config{NotFoundTTL: 5 * time.Second, AccountTTL: time.Minute})
	a, err := s.resolveAccount(ctx, "nobody@example.com", func(context.Context) (Account, error) {
		return Account{}, fmt.Errorf("find: %w", access.ErrNotFound)
	})
	if err != nil || a.Found() {
		t.Fatalf("ResolveAccount(not found) = %+v, %v; want a not-found account", a, err)
	}
	snap, _ := s.peek(ctx, "nobody@example.com")
	if !snap.HasAccount || snap.Account.Found() {
		t.Fatalf("not-found was not cached: %+v", snap)
	}
	ttl := rdb.TTL(ctx, s.accountKey("nobody@example.com")).Val()
	if ttl <= 0 || ttl > 6*time.Second {
		t.Errorf("not-found TTL = %v, want about 5s", ttl)
	}
}

func testSingleFlight(t *testing.T, rdb redis.UniversalClient) {
	s := New(rdb, Config{})
	var loads atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			es, err := s.resolveEntries(context.Background(), "alice@example.com", func(context.Context) ([]access.Entry, error) {
				loads.Add(1)
				<-release
				return []access.Entry{{ID: "101"}}, nil
			})
			if err == nil && len(es) != 1 {
				err = fmt.Errorf("got %d entries", len(es))
			}
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the callers pile up on the one load
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("100 concurrent misses made %d loads, want 1", n)
	}
}

func testFavorites(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	s := New(rdb, Config{})
	for _, id := range []string{"101", "103"} {
		if err := s.SetFavorite(ctx, "alice@example.com", id, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetFavorite(ctx, "alice@example.com", "101", false); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFavorite(ctx, "alice@example.com", "999", false); err != nil { // clearing an unset one is fine
		t.Fatal(err)
	}
	s.Invalidate(ctx, "alice@example.com")
	snap, err := s.peek(ctx, "alice@example.com")
	if err != nil || len(snap.Favorites) != 1 || !snap.Favorites["103"] {
		t.Fatalf("favourites = %v, %v; want just 103", snap.Favorites, err)
	}
}

func testTTL(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	s := New(rdb, Config{AccountTTL: 100 * time.Second, Jitter: 0.2})
	seen := map[time.Duration]bool{}
	for i := range 20 {
		email := fmt.Sprintf("u%d@example.com", i)
		s.resolveAccount(ctx, email, func(context.Context) (Account, error) { return alice, nil })
		ttl := rdb.TTL(ctx, s.accountKey(email)).Val()
		if ttl < 99*time.Second || ttl > 120*time.Second {
			t.Fatalf("TTL %v outside [100s, 120s]", ttl)
		}
		seen[ttl.Truncate(time.Second)] = true
	}
	if len(seen) < 3 {
		t.Errorf("20 TTLs took only %d distinct values: no jitter?", len(seen))
	}
}

func testLoadError(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	s := New(rdb, Config{})
	_, err := s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) {
		return Account{}, access.ErrUnavailable
	})
	if !errors.Is(err, access.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if snap, _ := s.peek(ctx, "alice@example.com"); snap.HasAccount {
		t.Fatal("a failed load was cached")
	}
}

// A caller's deadline ends its wait even while the shared load goes on.
func TestCallerDeadline(t *testing.T) {
	s := New(redistest.Start(t).Client(), Config{})
	release := make(chan struct{})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) {
		<-release
		return nil, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
}

// With Redis gone, reads fail fast and resolution still answers from the
// access system.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	s := New(srv.Client(), Config{})
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.peek(ctx, "alice@example.com"); err == nil {
		t.Fatal("Get with Redis down returned no error")
	}
	a, err := s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
	if err != nil || a.ID != "1" {
		t.Fatalf("ResolveAccount with Redis down = %+v, %v", a, err)
	}
}

// BenchmarkGetHit reads from Redis (the in-process layer off): one
// pipelined round trip, through the breaker (Guard) as cloudkey serve
// runs it.
func BenchmarkGetHit(b *testing.B) {
	rdb := redistest.Start(b).Client()
	redisconn.Guard(rdb, nil)
	s := New(rdb, Config{LocalTTL: -1})
	ctx := context.Background()
	s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
	s.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) {
		return []access.Entry{{ID: "101", Name: "Lobby"}, {ID: "102", Name: "Garage"}, {ID: "103", Name: "Gym"}}, nil
	})
	s.SetFavorite(ctx, "alice@example.com", "101", true)
	var l Loader = hitOnly{b}
	b.ReportAllocs()
	for b.Loop() {
		if v, err := s.Get(ctx, "alice@example.com", l); err != nil || len(v.Entries) != 3 {
			b.Fatal(v, err)
		}
	}
}

// Two replicas on one Redis: a change on one is seen by the other at once,
// though both serve hits from process memory.
func TestReplicasSeeInvalidations(t *testing.T) {
	for name, dial := range backends.All() {
		t.Run(name, func(t *testing.T) {
			rdb := dial(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a := New(rdb, Config{LocalTTL: time.Hour})
			b := New(rdb, Config{LocalTTL: time.Hour})
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			wg.Go(func() { a.Run(ctx) })
			wg.Go(func() { b.Run(ctx) })
			time.Sleep(100 * time.Millisecond) // subscriptions up
			a.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
			a.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) {
				return []access.Entry{{ID: "101"}}, nil
			})
			if snap, _ := a.peek(ctx, "alice@example.com"); !snap.HasEntries || snap.Favorites["101"] {
				t.Fatalf("a: %+v", snap)
			}
			b.peek(ctx, "alice@example.com") // now cached in both processes
			if err := b.SetFavorite(ctx, "alice@example.com", "101", true); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { snap, _ := a.peek(ctx, "alice@example.com"); return snap.Favorites["101"] })
			if snap, _ := b.peek(ctx, "alice@example.com"); !snap.Favorites["101"] {
				t.Error("b does not see its own favourite")
			}
			if err := a.Invalidate(ctx, "alice@example.com"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { snap, _ := b.peek(ctx, "alice@example.com"); return !snap.HasAccount })
		})
	}
}

// A hit from process memory makes no Redis round trip.
func TestLocalLayerServesHits(t *testing.T) {
	srv := redistest.Start(t)
	s := New(srv.Client(), Config{LocalTTL: time.Hour})
	ctx := context.Background()
	s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
	s.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) { return []access.Entry{{ID: "101"}}, nil })
	if snap, err := s.peek(ctx, "alice@example.com"); err != nil || !snap.HasEntries {
		t.Fatal(snap, err)
	}
	srv.Kill()
	if snap, err := s.peek(ctx, "alice@example.com"); err != nil || !snap.HasEntries {
		t.Fatalf("hit with Redis gone: %+v, %v", snap, err)
	}
}

// The in-process copy never outlives the Redis copy it was read from:
// however long LocalTTL is, the account's TTL stays the move-out bound.
func TestLocalLayerEndsWithRedisCopy(t *testing.T) {
	for name, dial := range backends.All() {
		t.Run(name, func(t *testing.T) {
			s := New(dial(t), Config{LocalTTL: time.Hour, AccountTTL: 300 * time.Millisecond, Jitter: 0.01})
			ctx := context.Background()
			s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
			s.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) { return []access.Entry{{ID: "101"}}, nil })
			if snap, err := s.peek(ctx, "alice@example.com"); err != nil || !snap.HasAccount {
				t.Fatal(snap, err)
			}
			waitFor(t, func() bool { snap, _ := s.peek(ctx, "alice@example.com"); return !snap.HasAccount })
			if snap, _ := s.peek(ctx, "alice@example.com"); snap.HasAccount {
				t.Errorf("account served from memory after it expired in Redis: %+v", snap)
			}
		})
	}
}

// A snapshot served from process memory carries one version, shared by
// its hits; a favourite change replaces the snapshot and its version.
// Without the local layer there is no version. (This was the memo's test:
// the version is what a caller keys what it derives from a view by.)
func TestLocalSnapshotVersion(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client()
	warm := func(s *Store) {
		s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
		s.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) { return []access.Entry{{ID: "101"}}, nil })
	}
	get := func(s *Store) snapshot {
		snap, err := s.peek(ctx, "alice@example.com")
		if err != nil || !snap.HasEntries {
			t.Fatal(snap, err)
		}
		return snap
	}

	s := New(rdb, Config{LocalTTL: time.Hour})
	warm(s)
	first := get(s)
	if first.version == 0 {
		t.Fatal("a snapshot kept in process memory has no version")
	}
	if again := get(s); again.version != first.version {
		t.Fatalf("second hit: version %d, want %d", again.version, first.version)
	}
	if err := s.SetFavorite(ctx, "alice@example.com", "101", true); err != nil {
		t.Fatal(err)
	}
	after := get(s)
	if after.version == first.version || after.version == 0 || !after.Favorites["101"] {
		t.Fatalf("after a favourite change: version %d (was %d), favourites %v; want a new version and the favourite", after.version, first.version, after.Favorites)
	}

	noLocal := New(rdb, Config{LocalTTL: -1})
	if snap := get(noLocal); snap.version != 0 {
		t.Error("a snapshot read from Redis alone has a version")
	}
}

// countingLoader is a Loader with fixed answers that counts its loads.
type countingLoader struct {
	acct     Account
	acctErr  error
	entries  []access.Entry
	acctN    atomic.Int32
	entriesN atomic.Int32
}

func (l *countingLoader) LoadAccount(context.Context, string) (Account, error) {
	l.acctN.Add(1)
	return l.acct, l.acctErr
}

func (l *countingLoader) LoadEntries(context.Context, string) ([]access.Entry, error) {
	l.entriesN.Add(1)
	return l.entries, nil
}

// Get reads through: the first call loads the account and entries through
// the Loader, the next ones are hits with one stable version until a
// change; a user not found is a view, not an error; a failed load is a
// *LoadError naming the part.
func TestGetReadsThrough(t *testing.T) {
	ctx := context.Background()
	s := New(redistest.Start(t).Client(), Config{LocalTTL: time.Hour})
	l := &countingLoader{acct: alice, entries: []access.Entry{{ID: "101"}, {ID: "102"}}}
	v, err := s.Get(ctx, "alice@example.com", l)
	if err != nil || v.Account.ID != alice.ID || len(v.Entries) != 2 || v.Version != 0 {
		t.Fatalf("first Get = %+v, %v; want the loaded view, no version", v, err)
	}
	v1, _ := s.Get(ctx, "alice@example.com", l)
	v2, _ := s.Get(ctx, "alice@example.com", l)
	if len(v1.Entries) != 2 || v1.Version == 0 || v2.Version != v1.Version {
		t.Fatalf("hits: %+v then %+v; want one nonzero version", v1, v2)
	}
	if a, e := l.acctN.Load(), l.entriesN.Load(); a != 1 || e != 1 {
		t.Errorf("%d account and %d entries loads, want 1 and 1", a, e)
	}
	if err := s.SetFavorite(ctx, "alice@example.com", "102", true); err != nil {
		t.Fatal(err)
	}
	if v3, _ := s.Get(ctx, "alice@example.com", l); v3.Version == v1.Version || !v3.Favorites["102"] {
		t.Errorf("after a favourite change: %+v; want a new version with the favourite", v3)
	}

	nobody := &countingLoader{acctErr: fmt.Errorf("find: %w", access.ErrNotFound)}
	if v, err := s.Get(ctx, "nobody@example.com", nobody); err != nil || v.Account.Found() || v.Entries != nil {
		t.Errorf("Get(unknown) = %+v, %v; want a not-found view", v, err)
	}
	failing := &countingLoader{acctErr: access.ErrUnavailable}
	_, err = s.Get(ctx, "bob@example.com", failing)
	var le *LoadError
	if !errors.As(err, &le) || le.Part != PartAccount || le.Stopped || !errors.Is(err, access.ErrUnavailable) {
		t.Errorf("Get with a failing loader: %v; want a *LoadError for the account", err)
	}
}

// With Redis down, Get answers from the Loader and keeps the loaded view
// in memory, so the next call does not load again.
func TestGetKeepsLoadsWhileRedisIsDown(t *testing.T) {
	dead, err := redisconn.Dial("redis://127.0.0.1:1/0") // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	s := New(dead, Config{OpTimeout: 100 * time.Millisecond})
	l := &countingLoader{acct: alice, entries: []access.Entry{{ID: "101"}}}
	for range 3 {
		if v, err := s.Get(context.Background(), "alice@example.com", l); err != nil || len(v.Entries) != 1 {
			t.Fatalf("Get with Redis down = %+v, %v", v, err)
		}
	}
	if a, e := l.acctN.Load(), l.entriesN.Load(); a != 1 || e != 1 {
		t.Errorf("%d account and %d entries loads, want 1 and 1", a, e)
	}
}

// hitOnly is the Loader of a benchmark of hits: any load fails it.
type hitOnly struct{ tb testing.TB }

func (h hitOnly) LoadAccount(context.Context, string) (Account, error) {
	h.tb.Fatal("a hit loaded the account")
	return Account{}, nil
}

func (h hitOnly) LoadEntries(context.Context, string) ([]access.Entry, error) {
	h.tb.Fatal("a hit loaded the entries")
	return nil, nil
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 2s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkGetLocalHit is the hot path's cache hit: process memory, no
// Redis round trip. Budget: 0 allocations.
func BenchmarkGetLocalHit(b *testing.B) {
	s := New(redistest.Start(b).Client(), Config{LocalTTL: time.Hour})
	ctx := context.Background()
	s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
	s.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) {
		return []access.Entry{{ID: "101", Name: "Lobby"}, {ID: "102", Name: "Garage"}, {ID: "103", Name: "Gym"}}, nil
	})
	if snap, err := s.peek(ctx, "alice@example.com"); err != nil || !snap.HasEntries {
		b.Fatal(snap, err)
	}
	var l Loader = hitOnly{b}
	b.ReportAllocs()
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			if v, _ := s.Get(ctx, "alice@example.com", l); len(v.Entries) != 3 {
				b.Fatal("miss")
			}
		}
	})
}

func TestInvalidateAll(t *testing.T) {
	for name, dial := range backends.All() {
		t.Run(name, func(t *testing.T) { testInvalidateAll(t, dial(t)) })
	}
}

func testInvalidateAll(t *testing.T, rdb redis.UniversalClient) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := New(rdb, Config{LocalTTL: time.Hour}), New(rdb, Config{LocalTTL: time.Hour})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { b.Run(ctx) })
	time.Sleep(100 * time.Millisecond)
	for i := range 1200 { // more than one SCAN batch of 1000
		email := fmt.Sprintf("u%d@example.com", i)
		a.resolveAccount(ctx, email, func(context.Context) (Account, error) { return alice, nil })
		a.resolveEntries(ctx, email, func(context.Context) ([]access.Entry, error) { return []access.Entry{{ID: "1"}}, nil })
	}
	a.SetFavorite(ctx, "u1@example.com", "1", true)
	if snap, _ := b.peek(ctx, "u7@example.com"); !snap.HasEntries {
		t.Fatal("b has no entries before")
	}
	n, err := a.InvalidateAll(ctx)
	if err != nil || n != 1200 {
		t.Fatalf("InvalidateAll = %d, %v; want 1200", n, err)
	}
	waitFor(t, func() bool { snap, _ := b.peek(ctx, "u7@example.com"); return !snap.HasAccount && !snap.HasEntries })
	if snap, _ := a.peek(ctx, "u1@example.com"); !snap.Favorites["1"] {
		t.Error("favourites were dropped")
	}
}

// Observe sees each layer's outcome: a local miss then a Redis miss on an
// empty cache, a Redis hit once loaded, a local hit next, and a Redis
// error when Redis is gone (the local layer dropped first).
func TestObserve(t *testing.T) {
	srv := redistest.Start(t)
	var mu sync.Mutex
	seen := map[string]int{}
	s := New(srv.Client(), Config{LocalTTL: time.Hour, Observe: func(layer, result string) {
		mu.Lock()
		seen[layer+" "+result]++
		mu.Unlock()
	}})
	ctx := context.Background()
	step := func(want map[string]int) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("observed %v, want %v", seen, want)
		}
		clear(seen)
	}
	s.peek(ctx, "alice@example.com")
	step(map[string]int{"local miss": 1, "redis miss": 1})
	s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
	s.resolveEntries(ctx, "alice@example.com", func(context.Context) ([]access.Entry, error) { return []access.Entry{{ID: "101"}}, nil })
	s.peek(ctx, "alice@example.com")
	step(map[string]int{"local miss": 1, "redis hit": 1})
	s.peek(ctx, "alice@example.com")
	step(map[string]int{"local hit": 1})
	s.local.invalidateAll()
	srv.Kill()
	s.peek(ctx, "alice@example.com")
	step(map[string]int{"local miss": 1, "redis error": 1})
}

// keepLoaded keeps a loaded view in memory only when Redis failed, for
// outageLocalTTL at most, and never over an invalidation that came
// during the load.
func TestKeepLoadedDuringARedisOutage(t *testing.T) {
	ents := []access.Entry{{ID: "101", Name: "Lobby"}}
	dead, err := redisconn.Dial("redis://127.0.0.1:1/0") // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	ctx := context.Background()
	tests := []struct {
		name       string
		rdb        redis.UniversalClient
		invalidate bool // between peek and keepLoaded
		kept       bool
	}{
		{"Redis down: kept", dead, false, true},
		{"Redis down, invalidated during the load: not kept", dead, true, false},
		{"Redis up: not kept (the loaders stored it there)", redistest.Start(t).Client(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.rdb, Config{OpTimeout: 100 * time.Millisecond})
			prev, _ := s.peek(ctx, "alice@example.com")
			if prev.HasAccount {
				t.Fatal("alice is cached before anything was loaded")
			}
			if tt.invalidate {
				_ = s.Invalidate(ctx, "alice@example.com")
			}
			s.keepLoaded("alice@example.com", prev, alice, ents)
			after := time.Now().UnixNano()
			snap, ok := s.local.get("alice@example.com", after)
			if ok != tt.kept {
				t.Fatalf("kept in memory: %v, want %v", ok, tt.kept)
			}
			if !ok {
				return
			}
			if !snap.HasAccount || !snap.HasEntries || snap.Account.ID != alice.ID || len(snap.Entries) != 1 || snap.version == 0 {
				t.Errorf("kept snapshot %+v", snap)
			}
			if _, still := s.local.get("alice@example.com", after+int64(outageLocalTTL)); still {
				t.Errorf("the outage copy outlives %v", outageLocalTTL)
			}
			if got, err := s.peek(ctx, "alice@example.com"); err != nil || !got.HasEntries {
				t.Errorf("Get with Redis down after keepLoaded: %+v, %v; want the kept copy", got, err)
			}
		})
	}
}
