package redisconn

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestEmbeddedRequiresItsPassword: the embedded Redis listens on loopback,
// where any local process can reach it; only a client with the password
// in its URL, which each start draws anew, gets commands through.
func TestEmbeddedRequiresItsPassword(t *testing.T) {
	ctx := context.Background()
	e, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	for _, tt := range []struct {
		name, password, want string
	}{
		{"no password", "", "NOAUTH"},
		{"wrong password", "guess", "WRONGPASS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: e.Addr(), Password: tt.password, MaxRetries: -1})
			defer c.Close()
			for _, cmd := range []redis.Cmder{c.Set(ctx, "x", "1", 0), c.Get(ctx, "x"), c.Keys(ctx, "*")} {
				if err := cmd.Err(); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%v: err = %v, want %s", cmd.Args(), err, tt.want)
				}
			}
		})
	}

	c, err := Dial(e.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("with the URL's password: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("Get = %q, %v", got, err)
	}

	other, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.password == e.password {
		t.Error("two starts share a password")
	}
}
