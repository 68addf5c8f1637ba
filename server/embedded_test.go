package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// TestEmbeddedRedisTakesOnlyItsOwnClient: with no Redis configured the
// server runs on the embedded one and works; another process on the
// machine that connects to it (without the password drawn at start) can
// neither read nor write a key, so it cannot mint itself an admin key.
func TestEmbeddedRedisTakesOnlyItsOwnClient(t *testing.T) {
	st := newStack(t, stackOpts{embeddedRedis: true})
	if !st.app.EmbeddedRedis {
		t.Fatal("the stack is not on the embedded Redis")
	}
	me, err := st.client.GetMe(st.as(t, "alice@example.com"), &pb.GetMeRequest{})
	if err != nil || !me.Connected {
		t.Fatalf("GetMe on the embedded Redis = %v, %v", me, err)
	}
	if st.app.DevAdminKey == "" {
		t.Error("no development admin key")
	}

	opts := st.app.Redis.(*redis.Client).Options()
	if opts.Password == "" {
		t.Fatal("the server's own client has no password")
	}
	ctx := context.Background()
	stranger := redis.NewClient(&redis.Options{Addr: opts.Addr, MaxRetries: -1})
	defer stranger.Close()
	for _, cmd := range []redis.Cmder{
		stranger.Keys(ctx, "*"),
		stranger.HSet(ctx, "ck:v1:adminkey:x", "org", "1"),
		stranger.Ping(ctx),
	} {
		if err := cmd.Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
			t.Errorf("%v without the password: err = %v, want NOAUTH", cmd.Args(), err)
		}
	}
}
