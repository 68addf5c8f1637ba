package cache

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
)

// DropConnection on one replica drops connection A's accounts, entries and
// favourites from Redis and from both replicas' in-process layers; B's and
// the bare connection's stay everywhere.
func TestDropConnection(t *testing.T) {
	for name, dial := range backends.All() {
		t.Run(name, func(t *testing.T) { testDropConnection(t, dial(t)) })
	}
}

func testDropConnection(t *testing.T, rdb redis.UniversalClient) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b := New(rdb, Config{LocalTTL: time.Hour}), New(rdb, Config{LocalTTL: time.Hour})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { a.Run(ctx) })
	wg.Go(func() { b.Run(ctx) })
	time.Sleep(100 * time.Millisecond) // subscriptions up

	const (
		connA = "harbor-view.kisi"
		connB = "harbor-view.kisi2" // A's id is a prefix of B's: only "A|" may match
	)
	emails := []string{"alice@example.com", "frank@example.com"}
	var keysA, keysB, bare []string
	for _, email := range emails {
		keysA = append(keysA, connA+"|"+email)
		keysB = append(keysB, connB+"|"+email)
		bare = append(bare, email)
	}
	// A key with a glob character in its connection id.
	keysB = append(keysB, "harbor-view.kisi*|x@example.com")
	all := append(append(append([]string(nil), keysA...), keysB...), bare...)
	for _, key := range all {
		a.resolveAccount(ctx, key, func(context.Context) (Account, error) { return alice, nil })
		a.resolveEntries(ctx, key, func(context.Context) ([]access.Entry, error) { return []access.Entry{{ID: "101"}}, nil })
		// Written directly: SetFavorite's announcements could reach the
		// layers after the reads below (a Cluster's pub/sub is late).
		if err := rdb.SAdd(ctx, a.favKey(key), "101").Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Cached in both processes, favourites included.
	for _, s := range []*Store{a, b} {
		for _, key := range all {
			waitFor(t, func() bool { snap, _ := s.peek(ctx, key); return snap.HasEntries && snap.Favorites["101"] })
		}
	}

	// A glob character in an id matches itself only: "h*" is no
	// connection here.
	if n, err := a.DropConnection(ctx, "h*"); err != nil || n != 0 {
		t.Fatalf(`DropConnection("h*") = %d, %v; want nothing dropped`, n, err)
	}
	n, err := a.DropConnection(ctx, connA)
	if err != nil || n != int64(3*len(keysA)) {
		t.Fatalf("DropConnection = %d, %v; want %d keys", n, err, 3*len(keysA))
	}
	// Redis holds none of A's keys.
	for _, key := range keysA {
		for _, k := range []string{a.accountKey(key), a.entriesKey(key), a.favKey(key)} {
			if rdb.Exists(ctx, k).Val() != 0 {
				t.Errorf("%s is still in Redis", k)
			}
		}
	}
	// Neither process serves A's users from memory; b learns of it
	// through the channel.
	for _, key := range keysA {
		if _, ok := a.local.get(key, time.Now().UnixNano()); ok {
			t.Errorf("a still holds %s", key)
		}
		waitFor(t, func() bool { _, ok := b.local.get(key, time.Now().UnixNano()); return !ok })
		if snap, _ := b.peek(ctx, key); snap.HasAccount || snap.HasEntries || len(snap.Favorites) > 0 {
			t.Errorf("b: %s after the drop: %+v", key, snap)
		}
	}
	// B and the bare connection are untouched, in memory and in Redis.
	for _, key := range append(append([]string(nil), keysB...), bare...) {
		for _, s := range []*Store{a, b} {
			if _, ok := s.local.get(key, time.Now().UnixNano()); !ok {
				t.Errorf("%s dropped from memory", key)
			}
		}
		if rdb.Exists(ctx, a.accountKey(key), a.entriesKey(key), a.favKey(key)).Val() != 3 {
			t.Errorf("%s dropped from Redis", key)
		}
	}
}

// The bare connection's keys cannot be dropped by prefix: an empty id, or
// one with "|", is refused and nothing is touched.
func TestDropConnectionRefuses(t *testing.T) {
	for name, dial := range backends.All() {
		t.Run(name, func(t *testing.T) {
			rdb := dial(t)
			ctx := context.Background()
			s := New(rdb, Config{LocalTTL: time.Hour})
			s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
			for _, conn := range []string{"", "a|b", "a b"} {
				n, err := s.DropConnection(ctx, conn)
				if err == nil || n != 0 {
					t.Errorf("DropConnection(%q) = %d, %v; want an error", conn, n, err)
				} else if !strings.Contains(err.Error(), "bare") {
					t.Errorf("DropConnection(%q): %v does not say why", conn, err)
				}
			}
			if rdb.Exists(ctx, s.accountKey("alice@example.com")).Val() != 1 {
				t.Error("a refused drop deleted the bare key")
			}
		})
	}
}
