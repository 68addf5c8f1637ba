package openpath

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
)

// TestUnavailable: with every answer a 503, an unlock is sent once and a
// read maxReadAttempts times; all report ErrUnavailable with the status.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	calls := []struct {
		name  string
		op    sim.Op
		sends int64
		do    func(*Client) error
	}{
		{"unlock", sim.OpUnlock, 1, func(c *Client) error { return c.Unlock(ctx, "204", "304", "101") }},
		{"find user", sim.OpListUsers, maxReadAttempts, func(c *Client) error { _, err := c.FindUserByEmail(ctx, "erin@example.com"); return err }},
		{"entries", sim.OpListUserEntries, maxReadAttempts, func(c *Client) error { _, err := c.ListUserEntries(ctx, "204"); return err }},
		{"cloud key", sim.OpListCredentials, maxReadAttempts, func(c *Client) error { _, err := c.EnsureCloudKey(ctx, access.User{ID: "204"}); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, sim.DemoSeed())
			if err := e.sim.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
				t.Fatal(err)
			}
			err := c.do(e.client)
			var se *access.StatusError
			if !errors.Is(err, access.ErrUnavailable) || !errors.As(err, &se) || se.Status != 503 {
				t.Fatalf("err = %v, want a 503 matching ErrUnavailable", err)
			}
			if got := e.sim.Calls(c.op); got != c.sends {
				t.Errorf("Calls(%s) = %d, want %d", c.op, got, c.sends)
			}
			if len(e.sim.Unlocks()) != 0 {
				t.Error("a door opened")
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c := newClient(t, Config{BaseURL: url})
	err := c.Unlock(context.Background(), "204", "304", "101")
	var se *access.StatusError
	if !errors.Is(err, access.ErrUnavailable) || errors.As(err, &se) {
		t.Errorf("err = %v, want a transport error matching ErrUnavailable", err)
	}
}

func TestHangReturnsByDeadline(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	if _, err := e.client.ListUserEntries(context.Background(), "204"); err != nil { // log in first
		t.Fatal(err)
	}
	if err := e.sim.SetFaults(sim.Faults{Hang: true}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func(context.Context) error
	}{
		{"unlock", func(ctx context.Context) error { return e.client.Unlock(ctx, "204", "304", "101") }},
		{"find user", func(ctx context.Context) error {
			_, err := e.client.FindUserByEmail(ctx, "erin@example.com")
			return err
		}},
		{"entries", func(ctx context.Context) error { _, err := e.client.ListUserEntries(ctx, "204"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := tt.do(ctx)
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, access.ErrUnavailable) {
				t.Errorf("err = %v, want context.DeadlineExceeded and not ErrUnavailable", err)
			}
			if took > 500*time.Millisecond {
				t.Errorf("returned after %v, deadline was 150ms", took)
			}
		})
	}

	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if err := e.client.Unlock(ctx, "204", "304", "101"); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	})

	t.Run("latency beyond the deadline", func(t *testing.T) {
		if err := e.sim.SetFaults(sim.Faults{Latency: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := e.client.Unlock(ctx, "204", "304", "101"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
	})
	if len(e.sim.Unlocks()) != 0 {
		t.Error("a door opened")
	}
}

// TestLoginHangBoundedByDeadline: when the login itself hangs, the caller
// still returns at its deadline.
func TestLoginHangBoundedByDeadline(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	if err := e.sim.SetFaults(sim.Faults{Hang: true, IncludeLogin: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := e.client.Unlock(ctx, "204", "304", "101")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 500*time.Millisecond {
		t.Errorf("err = %v after %v, want context.DeadlineExceeded at 100ms", err, time.Since(start))
	}
}

func TestReloginAfterTokenExpiry(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	if err := e.client.Unlock(ctx, "204", "304", "101"); err != nil {
		t.Fatal(err)
	}
	e.sim.ExpireTokens() // Openpath forgets the token before the client expects it
	if err := e.client.Unlock(ctx, "204", "304", "101"); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	if got := e.sim.Calls(sim.OpLogin); got != 2 {
		t.Errorf("Calls(OpLogin) = %d, want 2", got)
	}
	if got := e.sim.Calls(sim.OpUnlock); got != 3 {
		t.Errorf("Calls(OpUnlock) = %d, want 3 (ok, 401, ok)", got)
	}
	if got := len(e.sim.Unlocks()); got != 2 {
		t.Errorf("%d doors opened, want 2", got)
	}
}

// TestTokenRefreshedBeforeExpiry: with a 1s token the client logs in again
// in its last tenth of life, and no call is ever answered 401.
func TestTokenRefreshedBeforeExpiry(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	e.sim.SetTokenTTL(time.Second)
	ctx := context.Background()
	list := func() {
		t.Helper()
		if _, err := e.client.ListUserEntries(ctx, "204"); err != nil {
			t.Fatal(err)
		}
	}
	list()
	time.Sleep(920 * time.Millisecond) // past refreshAt (900ms), before expiry
	list()
	deadline := time.Now().Add(2 * time.Second)
	for e.sim.Calls(sim.OpLogin) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // the first token has now expired
	list()
	if got := e.sim.Calls(sim.OpLogin); got != 2 {
		t.Errorf("Calls(OpLogin) = %d, want 2", got)
	}
	if got := e.sim.Calls(sim.OpListUserEntries); got != 3 {
		t.Errorf("Calls(OpListUserEntries) = %d, want 3: no call may be answered 401", got)
	}
}

func TestConcurrentCallersShareOneLogin(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	burst := func() {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := e.client.ListUserEntries(ctx, "204"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	burst()
	if got := e.sim.Calls(sim.OpLogin); got != 1 {
		t.Errorf("first burst: Calls(OpLogin) = %d, want 1", got)
	}
	e.sim.ExpireTokens()
	burst()
	if got := e.sim.Calls(sim.OpLogin); got != 2 {
		t.Errorf("after expiry: Calls(OpLogin) = %d, want 2", got)
	}
}

func TestWrongPassword(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	c := newClient(t, Config{BaseURL: e.url, Email: sim.DemoServiceEmail, Password: "wrong"})
	for range 2 {
		err := c.Unlock(context.Background(), "204", "304", "101")
		var se *access.StatusError
		if !errors.As(err, &se) || se.Status != 401 || se.Op != "login" {
			t.Fatalf("err = %v, want a 401 from login", err)
		}
	}
	if got := e.sim.Calls(sim.OpLogin); got != 2 {
		t.Errorf("Calls(OpLogin) = %d, want one per call", got)
	}
	if got := e.sim.Calls(sim.OpUnlock); got != 0 {
		t.Errorf("Calls(OpUnlock) = %d, want 0", got)
	}
}

// TestConnectionsAreReused: bodies are drained and closed, errors
// included, so sequential calls share one connection.
func TestConnectionsAreReused(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	for i := range 30 {
		switch i % 3 {
		case 0:
			_ = e.client.Unlock(ctx, "204", "304", "105") // 403 with a body
		case 1:
			_, _ = e.client.FindUserByEmail(ctx, "alice@example.com")
		case 2:
			_, _ = e.client.ListUserEntries(ctx, "999") // 404
		}
	}
	if got := e.conns.Load(); got != 1 {
		t.Errorf("%d connections for 31 sequential requests, want 1", got)
	}
}

// BenchmarkUnlock measures one unlock, client to simulator over loopback:
// serial gives the cost of one call, parallel the throughput of many.
func BenchmarkUnlock(b *testing.B) {
	srv, err := sim.Start(sim.DemoSeed())
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c := newClient(b, Config{BaseURL: srv.URL})
	ctx := context.Background()
	user, cred, entry := strconv.Itoa(sim.DemoErinID), strconv.Itoa(sim.DemoErinCloudKeyID), strconv.Itoa(sim.DemoLobbyID)
	if err := c.Unlock(ctx, user, cred, entry); err != nil { // log in outside the loop
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Unlock(ctx, user, cred, entry); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Unlock(ctx, user, cred, entry); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
