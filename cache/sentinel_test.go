package cache

import (
	"context"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// A Sentinel URL reaches the master the sentinel names, and the cache
// works through it.
func TestDialSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master, "mymaster")
	rdb, err := redisconn.Dial("redis-sentinel://" + sentinel.Addr + "/0?master=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s := New(rdb, Config{LocalTTL: -1})
	if _, err := s.resolveAccount(ctx, "alice@example.com", func(context.Context) (Account, error) { return alice, nil }); err != nil {
		t.Fatal(err)
	}
	if snap, err := s.peek(ctx, "alice@example.com"); err != nil || !snap.HasAccount {
		t.Fatalf("Get through Sentinel = %+v, %v", snap, err)
	}
	if n := master.Client().Exists(ctx, s.accountKey("alice@example.com")).Val(); n != 1 {
		t.Error("the account is not on the master the sentinel monitors")
	}
	// A master name the sentinel does not monitor fails on use.
	other, err := redisconn.Dial("redis-sentinel://" + sentinel.Addr + "/0?master=nosuch")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Ping(ctx).Err(); err == nil {
		t.Error("PING through a master name nobody monitors succeeded")
	}
}
