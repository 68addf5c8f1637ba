package adminkey

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

func TestKeys(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Start(t).Client()
	s := NewStore(rdb, "ck:v1:")
	plain, k, err := s.Create(ctx, "1", "front desk")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "ckadm_") || len(plain) < 40 {
		t.Fatalf("key %q", plain)
	}
	// Only the hash is stored.
	keys, _ := rdb.Keys(ctx, "*").Result()
	for _, key := range keys {
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
