package adminkey

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

func TestKeys(t *testing.T) {
	for name, start := range map[string]func(testing.TB) redis.UniversalClient{
		"redis-server":  func(t testing.TB) redis.UniversalClient { return redistest.Start(t).Client() },
		"redis-cluster": func(t testing.TB) redis.UniversalClient { return redistest.StartCluster(t).Client() },
	} {
		t.Run(name, func(t *testing.T) { testKeys(t, start(t)) })
	}
}

// allKeys lists every key, on each master of a cluster.
func allKeys(ctx context.Context, t *testing.T, rdb redis.UniversalClient) []string {
	var mu sync.Mutex
	var out []string
	add := func(ctx context.Context, c redis.Cmdable) error {
		keys, err := c.Keys(ctx, "*").Result()
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return err
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return add(ctx, c) })
	} else {
		err = add(ctx, rdb)
	}
	if err != nil || len(out) == 0 {
		t.Fatalf("keys: %v, %v", out, err)
	}
	return out
}

func testKeys(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	s := NewStore(rdb, "ck:v1:")
	plain, k, err := s.Create(ctx, "1", "front desk")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "ckadm_") || len(plain) < 40 {
		t.Fatalf("key %q", plain)
	}
	// Only the hash is stored.
	for _, key := range allKeys(ctx, t, rdb) {
		if strings.Contains(key, plain) || strings.Contains(rdb.Get(ctx, key).Val(), plain) {
			t.Fatalf("plaintext key stored in Redis under %s", key)
		}
	}
	got, err := s.Verify(ctx, plain)
	if err != nil || got != k || got.Org != "1" {
		t.Fatalf("Verify = %+v, %v; want %+v", got, err, k)
	}
	for _, bad := range []string{"", "ckadm_", plain + "x", strings.ToUpper(plain), "Bearer " + plain} {
		if _, err := s.Verify(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := s.Revoke(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, plain); !errors.Is(err, ErrInvalid) {
		t.Errorf("revoked key still verifies: %v", err)
	}
	for _, tt := range []struct{ org, name string }{{"", "x"}, {"1", " "}} {
		if _, _, err := s.Create(ctx, tt.org, tt.name); err == nil {
			t.Errorf("Create(%q, %q) accepted", tt.org, tt.name)
		}
	}
}
