package redisproc

import (
	"context"
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
