package cache

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// TestMemoryPerUser caches users shaped as the load test's generated
// ones (five doors of a pool of 20, with the ids `cloudkey sim --users N`
// serves)
// and reports what each costs in Redis (INFO memory used_memory) and in
// this process (heap in use after a GC, the in-process layer holding
// them all, or as many as its budget allows). CLOUDKEY_MEMTEST_USERS sets
// how many (default 20,000; e.g. 1000000).
func TestMemoryPerUser(t *testing.T) {
	if testing.Short() {
		t.Skip("fills Redis")
	}
	n := 20_000
	if v := os.Getenv("CLOUDKEY_MEMTEST_USERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	rdb := redistest.Start(t).Client()
	ctx := context.Background()
	redis0 := usedMemory(t, rdb)
	fillUsers(t, rdb, n)
	redis1 := usedMemory(t, rdb)
	t.Logf("%d users: Redis %d bytes/user (used_memory %d → %d)", n, (redis1-redis0)/int64(n), redis0, redis1)

	tests := []struct {
		name   string
		budget int64
		// most heap bytes a user may cost with all held (0: not checked)
		perUser int64
	}{
		{"unbounded (1 GiB)", 1 << 30, 1200},
		{"default budget", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(rdb, Config{LocalTTL: time.Hour, LocalMaxBytes: tt.budget})
			if _, err := s.peek(ctx, userEmail(0)); err != nil {
				t.Fatal(err)
			}
			s.local.invalidateAll()
			heap0 := heapInUse()
			var wg sync.WaitGroup
			const workers = 16
			for w := range workers {
				wg.Go(func() {
					for i := w; i < n; i += workers {
						if snap, err := s.peek(ctx, userEmail(i)); err != nil || !snap.HasEntries {
							t.Errorf("peek %d: %+v, %v", i, snap, err)
							return
						}
					}
				})
			}
			wg.Wait()
			heap1 := heapInUse()
			held, est := s.local.m.Stats()
			per := (heap1 - heap0) / int64(max(held, 1))
			t.Logf("%d users read, %d held: heap +%d bytes (%d bytes/user held), estimate %d (%d/user), budget %d",
				n, held, heap1-heap0, per, est, est/int64(max(held, 1)), s.local.m.Budget())
			if tt.perUser > 0 && (held != n || per > tt.perUser) {
				t.Errorf("%d of %d held, %d bytes each; want all, at most %d", held, n, per, tt.perUser)
			}
			if est > s.local.m.Budget() {
				t.Errorf("estimate %d over the budget %d", est, s.local.m.Budget())
			}
			runtime.KeepAlive(s)
		})
	}
}

func userEmail(i int) string { return "user" + strconv.Itoa(i) + "@load.example.com" }

// fillUsers stores n users' accounts and entries in Redis as the cache's
// loads do, pipelined.
func fillUsers(t *testing.T, rdb redis.UniversalClient, n int) {
	t.Helper()
	ctx := context.Background()
	s := New(rdb, Config{})
	const pool = 20
	doors := make([]access.Entry, pool)
	for e := range doors {
		doors[e] = access.Entry{ID: strconv.Itoa(10_001 + e), Name: "Door " + strconv.Itoa(e+1),
			Zone: "Zone " + strconv.Itoa(e/16+1), Site: "Load Site"}
	}
	for start := 0; start < n; start += 1000 {
		pipe := rdb.Pipeline()
		for i := start; i < min(n, start+1000); i++ {
			email := userEmail(i)
			a := Account{User: access.User{ID: strconv.Itoa(1_000_000 + i), Email: email, Name: "User " + strconv.Itoa(i),
				Status: access.StatusActive}, CredentialID: strconv.Itoa(500_000_000 + i), FetchedAt: time.Now()}
			es := make([]access.Entry, 5)
			for j := range es {
				es[j] = doors[(i+j)%pool]
			}
			pipe.Set(ctx, s.accountKey(email), encodeAccount(a), time.Hour)
			pipe.Set(ctx, s.entriesKey(email), encodeEntries(es), time.Hour)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func usedMemory(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestFillRedis fills the Redis at CLOUDKEY_FILL_URL with
// CLOUDKEY_FILL_USERS users as fillUsers makes them, for measuring a
// server with many users cached without loading each from a simulator
// (loadtest/results/issue14-rss.sh). Without the variable it does nothing.
func TestFillRedis(t *testing.T) {
	url := os.Getenv("CLOUDKEY_FILL_URL")
	if url == "" {
		t.Skip("CLOUDKEY_FILL_URL is not set")
	}
	n, err := strconv.Atoi(os.Getenv("CLOUDKEY_FILL_USERS"))
	if err != nil {
		t.Fatal("CLOUDKEY_FILL_USERS:", err)
	}
	rdb, err := redisconn.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	fillUsers(t, rdb, n)
}
