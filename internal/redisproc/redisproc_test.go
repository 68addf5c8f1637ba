package redisproc

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartServesAndCloseStops(t *testing.T) {
	if !Available() {
		t.Skip("redis-server is not installed (make test installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET on the started server: %v", err)
	}
	if s.Version == "" {
		t.Error("Version is empty")
	}
	s.Close()
	s.Close() // idempotent
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("PING answered after Close")
	}
}

// started starts a server for one test, with a client holding k=v.
func started(t *testing.T) (*Server, *redis.Client) {
	t.Helper()
	if !Available() {
		t.Skip("redis-server is not installed")
	}
	s, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	if err := c.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestRestart(t *testing.T) {
	ctx := context.Background()
	s, c := started(t)
	addr := s.Addr
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Addr != addr {
		t.Fatalf("restarted on %s, want %s", s.Addr, addr)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("after restart: exists = %d, %v; want an empty server", n, err)
	}
}

func TestPauseResume(t *testing.T) {
	ctx := context.Background()
	s, c := started(t)
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err := c.Get(pctx, "k").Err()
	cancel()
	if err == nil {
		t.Fatal("a paused server answered")
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after Resume: %q, %v; want the value kept", v, err)
	}
}

func TestCluster(t *testing.T) {
	if !Available() {
		t.Skip("redis-server is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := StartCluster(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Logf("cluster of 3 up in %v", time.Since(start))
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()[:1]})
	defer cc.Close()
	// Keys land on every master; each is readable through the one client.
	for i := range 100 {
		if err := cc.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var masters, keys atomic.Int64
	err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		masters.Add(1)
		if n > 0 {
			keys.Add(1)
		}
		return err
	})
	if err != nil || masters.Load() != 3 || keys.Load() != 3 {
		t.Fatalf("masters = %d, with keys = %d, err %v; want 3 masters all holding keys", masters.Load(), keys.Load(), err)
	}
	if err := cc.MSet(ctx, "a", 1, "b", 2).Err(); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("MSET across slots: %v, want CROSSSLOT (is it really a cluster?)", err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := cc.Exists(ctx, "k1").Result(); err != nil || n != 0 {
		t.Errorf("after Flush: exists = %d, %v", n, err)
	}
	c.Close()
	c.Close()
}
