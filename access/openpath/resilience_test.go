package openpath

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
)

// The demo organisation's erin: user 204, cloud key 304, Lobby 101; Server
// Room 105 is nobody's (403); user 999 does not exist (404).
func unlockErin(ctx context.Context, c *Client) error { return c.Unlock(ctx, "204", "304", "101") }

func listErin(ctx context.Context, c *Client) error {
	_, err := c.ListUserEntries(ctx, "204")
	return err
}

// TestRetryPolicy: reads are retried on 429, 502, 503, 504, after the
// Retry-After Openpath asked for, never more than maxReadAttempts times and
// never past the caller's deadline; unlocks are never retried.
func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name    string
		faults  sim.Faults
		timeout time.Duration // 0: no deadline
		op      sim.Op
		do      func(context.Context, *Client) error
		wantErr int // 0: success; otherwise the HTTP status the error carries
		calls   int64
		minTook time.Duration
		maxTook time.Duration
	}{
		{name: "read: 429 twice, then ok", faults: sim.Faults{RateLimitRate: 1, MaxFaults: 2},
			op: sim.OpListUserEntries, do: listErin, calls: 3},
		{name: "read: 503 once, then ok", faults: sim.Faults{ErrorRate: 1, MaxFaults: 1},
			op: sim.OpListUserEntries, do: listErin, calls: 2},
		{name: "read: 502 once, then ok", faults: sim.Faults{ErrorRate: 1, ErrorStatus: 502, MaxFaults: 1},
			op: sim.OpListUserEntries, do: listErin, calls: 2},
		{name: "read: 504 once, then ok", faults: sim.Faults{ErrorRate: 1, ErrorStatus: 504, MaxFaults: 1},
			op: sim.OpListUserEntries, do: listErin, calls: 2},
		{name: "find user: 429 once, then ok", faults: sim.Faults{RateLimitRate: 1, MaxFaults: 1},
			op: sim.OpListUsers, do: func(ctx context.Context, c *Client) error {
				_, err := c.FindUserByEmail(ctx, "erin@example.com")
				return err
			}, calls: 2},
		{name: "cloud key lookup: 503 once, then ok", faults: sim.Faults{ErrorRate: 1, MaxFaults: 1},
			op: sim.OpListCredentials, do: func(ctx context.Context, c *Client) error {
				_, err := c.EnsureCloudKey(ctx, access.User{ID: "204"})
				return err
			}, calls: 2},
		{name: "read: 429 always, attempts bounded", faults: sim.Faults{RateLimitRate: 1},
			op: sim.OpListUserEntries, do: listErin, wantErr: 429, calls: maxReadAttempts},
		{name: "read: 500 is not retried", faults: sim.Faults{ErrorRate: 1, ErrorStatus: 500, MaxFaults: 1},
			op: sim.OpListUserEntries, do: listErin, wantErr: 500, calls: 1},
		{name: "read: 404 is not retried",
			op: sim.OpListUserEntries, do: func(ctx context.Context, c *Client) error {
				_, err := c.ListUserEntries(ctx, "999")
				return err
			}, wantErr: 404, calls: 1},
		{name: "read: Retry-After is waited for", faults: sim.Faults{RateLimitRate: 1, RetryAfter: time.Second, MaxFaults: 1},
			op: sim.OpListUserEntries, do: listErin, calls: 2, minTook: time.Second, maxTook: 5 * time.Second},
		{name: "read: Retry-After past the deadline fails now", faults: sim.Faults{RateLimitRate: 1, RetryAfter: 2 * time.Second, MaxFaults: 1},
			timeout: time.Second, op: sim.OpListUserEntries, do: listErin, wantErr: 429, calls: 1, maxTook: 900 * time.Millisecond},
		{name: "read: a long Retry-After is not waited for", faults: sim.Faults{RateLimitRate: 1, RetryAfter: 3 * time.Second, MaxFaults: 1},
			op: sim.OpListUserEntries, do: listErin, wantErr: 429, calls: 1, maxTook: 2 * time.Second},
		{name: "unlock: 429 is not retried", faults: sim.Faults{RateLimitRate: 1, MaxFaults: 1},
			op: sim.OpUnlock, do: unlockErin, wantErr: 429, calls: 1},
		{name: "unlock: 503 is not retried", faults: sim.Faults{ErrorRate: 1, MaxFaults: 1},
			op: sim.OpUnlock, do: unlockErin, wantErr: 503, calls: 1},
		{name: "use unlock token: 429 is not retried", faults: sim.Faults{RateLimitRate: 1, MaxFaults: 1},
			op: sim.OpUseUnlockToken, do: func(ctx context.Context, c *Client) error {
				return c.UseUnlockToken(ctx, "abc.def.ghi", "101")
			}, wantErr: 429, calls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sim.DemoSeed())
			if err := listErin(context.Background(), e.client); err != nil { // log in first
				t.Fatal(err)
			}
			e.sim.Reset()
			if err := e.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			start := time.Now()
			err := tt.do(ctx, e.client)
			took := time.Since(start)
			var se *access.StatusError
			switch {
			case tt.wantErr == 0 && err != nil:
				t.Fatalf("err = %v, want success", err)
			case tt.wantErr != 0 && (!errors.As(err, &se) || se.Status != tt.wantErr):
				t.Fatalf("err = %v, want HTTP %d", err, tt.wantErr)
			case tt.wantErr >= 500 || tt.wantErr == 429:
				if !errors.Is(err, access.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want ErrUnavailable and no timeout", err)
				}
			}
			if got := e.sim.Calls(tt.op); got != tt.calls {
				t.Errorf("Calls(%s) = %d, want %d", tt.op, got, tt.calls)
			}
			if took < tt.minTook || (tt.maxTook > 0 && took > tt.maxTook) {
				t.Errorf("took %v, want within [%v, %v]", took, tt.minTook, tt.maxTook)
			}
			if got := len(e.sim.Unlocks()); tt.wantErr != 0 && got != 0 {
				t.Errorf("%d doors opened", got)
			}
		})
	}
}

// TestRetryWithinDeadline: each answer takes 150ms and is a 503; with a
// 400ms deadline a second attempt fits but a third does not, so the read
// fails before the deadline with the 503, never as a timeout of an attempt
// started too late.
func TestRetryWithinDeadline(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	if err := listErin(context.Background(), e.client); err != nil {
		t.Fatal(err)
	}
	e.sim.Reset()
	if err := e.sim.SetFaults(sim.Faults{ErrorRate: 1, Latency: 150 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	err := listErin(ctx, e.client)
	if !errors.Is(err, access.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if got := e.sim.Calls(sim.OpListUserEntries); got < 1 || got > 2 {
		t.Errorf("Calls = %d, want 1 or 2: no attempt may start that cannot end in time", got)
	}
	if ctx.Err() != nil && errors.Is(err, access.ErrUnavailable) {
		return // the 503 arrived just as the deadline passed: still no third attempt
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Logf("a slow machine: the second attempt ran out of time (%v)", err)
	}
}

// TestTransportErrorsRetried: a server that drops every connection is
// tried maxReadAttempts times by a read and once by an unlock.
func TestTransportErrorsRetried(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	var hits atomic.Int64
	dropping := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/login" {
			e.sim.Handler().ServeHTTP(w, r)
			return
		}
		hits.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer dropping.Close()
	// No keep-alive: the transport then never replays a request on its
	// own, so the hits are the client's attempts.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	c := newClient(t, Config{BaseURL: dropping.URL, HTTPClient: &http.Client{Transport: tr}})
	defer tr.CloseIdleConnections()
	for _, tt := range []struct {
		name  string
		do    func(context.Context, *Client) error
		sends int64
	}{
		{"read", listErin, maxReadAttempts},
		{"unlock", unlockErin, 1},
	} {
		hits.Store(0)
		err := tt.do(context.Background(), c)
		var se *access.StatusError
		if !errors.Is(err, access.ErrUnavailable) || errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a transport error matching ErrUnavailable", tt.name, err)
		}
		if got := hits.Load(); got != tt.sends {
			t.Errorf("%s: %d requests, want %d", tt.name, got, tt.sends)
		}
	}
}

// breakerLog records a client's breaker changes.
type breakerLog struct {
	mu      sync.Mutex
	changes []string
}

func (l *breakerLog) record(system, from, to string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, system+": "+from+" -> "+to)
}

func (l *breakerLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.changes)
}

// waitState polls the breaker until it is in state, for up to 5s.
func waitState(t *testing.T, c *Client, state string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); c.BreakerState() != state; {
		if time.Now().After(deadline) {
			t.Fatalf("breaker is %s after 5s, want %s", c.BreakerState(), state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBreakerOpensAndRecovers: a storm of 503s opens the breaker; while
// open, calls fail at once with ErrCircuitOpen and reach nobody; after the
// open timeout one probe goes through, and its success closes the breaker,
// its failure opens it again.
func TestBreakerOpensAndRecovers(t *testing.T) {
	var log breakerLog
	e := newEnvConfig(t, sim.DemoSeed(), Config{Name: "hq", BreakerOpenTimeout: 300 * time.Millisecond, OnBreakerChange: log.record})
	ctx := context.Background()
	if err := unlockErin(ctx, e.client); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	e.sim.Reset()
	for i := range breakerConsecutive {
		if err := unlockErin(ctx, e.client); errors.Is(err, ErrCircuitOpen) || !errors.Is(err, access.ErrUnavailable) {
			t.Fatalf("unlock %d: err = %v, want a 503", i+1, err)
		}
	}
	if got := e.client.BreakerState(); got != "open" {
		t.Fatalf("after %d 503s the breaker is %s, want open", breakerConsecutive, got)
	}
	e.sim.Reset()
	for _, tt := range []struct {
		name string
		do   func(context.Context, *Client) error
	}{
		{"unlock", unlockErin},
		{"list", listErin},
		{"find user", func(ctx context.Context, c *Client) error {
			_, err := c.FindUserByEmail(ctx, "erin@example.com")
			return err
		}},
		{"use unlock token", func(ctx context.Context, c *Client) error { return c.UseUnlockToken(ctx, "abc.def.ghi", "101") }},
	} {
		start := time.Now()
		err := tt.do(ctx, e.client)
		if !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, access.ErrUnavailable) {
			t.Errorf("%s while open: err = %v, want ErrCircuitOpen", tt.name, err)
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("%s while open took %v: it must fail fast", tt.name, took)
		}
	}
	if n := totalCalls(e.sim); n != 0 {
		t.Errorf("%d requests reached the access system while the breaker was open", n)
	}

	// Still failing: the probe fails and the breaker opens again.
	waitState(t, e.client, "half-open")
	if err := unlockErin(ctx, e.client); errors.Is(err, ErrCircuitOpen) || !errors.Is(err, access.ErrUnavailable) {
		t.Fatalf("probe: err = %v, want the 503", err)
	}
	if got := e.client.BreakerState(); got != "open" {
		t.Fatalf("after a failed probe the breaker is %s, want open", got)
	}

	// Healthy again: the probe succeeds and closes it, with no help.
	if err := e.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, e.client, "half-open")
	if err := listErin(ctx, e.client); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := e.client.BreakerState(); got != "closed" {
		t.Fatalf("after a good probe the breaker is %s, want closed", got)
	}
	if err := unlockErin(ctx, e.client); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"hq: closed -> open", "hq: open -> half-open", "hq: half-open -> open",
		"hq: open -> half-open", "hq: half-open -> closed",
	}
	if got := log.get(); !slices.Equal(got, want) {
		t.Errorf("breaker changes = %q, want %q", got, want)
	}
	if got := len(e.sim.Unlocks()); got != 1 {
		t.Errorf("%d doors opened after recovery, want 1", got)
	}
}

// TestBreakerIgnoresBusinessAnswersAndCallers: 403 and 404 are answers of
// a healthy system, and a caller that cancels, or gives a request too
// little time, says nothing about it; none of these open the breaker,
// while timeouts of requests given a fair time do.
func TestBreakerIgnoresBusinessAnswersAndCallers(t *testing.T) {
	tests := []struct {
		name   string
		faults sim.Faults
		do     func(*Client) error
		open   bool
	}{
		{"403", sim.Faults{}, func(c *Client) error { return c.Unlock(context.Background(), "204", "304", "105") }, false},
		{"404", sim.Faults{}, func(c *Client) error { _, err := c.ListUserEntries(context.Background(), "999"); return err }, false},
		{"cancelled", sim.Faults{Hang: true}, func(c *Client) error {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			return unlockErin(ctx, c)
		}, false},
		{"short deadline", sim.Faults{Hang: true}, func(c *Client) error {
			ctx, cancel := context.WithTimeout(context.Background(), minCountedBudget/4)
			defer cancel()
			return unlockErin(ctx, c)
		}, false},
		{"fair deadline", sim.Faults{Hang: true}, func(c *Client) error {
			ctx, cancel := context.WithTimeout(context.Background(), minCountedBudget+50*time.Millisecond)
			defer cancel()
			return unlockErin(ctx, c)
		}, true},
		{"slow beyond a fair deadline", sim.Faults{Latency: 2 * time.Second}, func(c *Client) error {
			ctx, cancel := context.WithTimeout(context.Background(), minCountedBudget+50*time.Millisecond)
			defer cancel()
			return listErin(ctx, c)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sim.DemoSeed())
			if err := listErin(context.Background(), e.client); err != nil {
				t.Fatal(err)
			}
			if err := e.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			for range 2 * breakerConsecutive {
				if err := tt.do(e.client); err == nil {
					t.Fatal("the call succeeded")
				}
			}
			if got, want := e.client.BreakerState(), map[bool]string{true: "open", false: "closed"}[tt.open]; got != want {
				t.Errorf("breaker is %s, want %s", got, want)
			}
			if len(e.sim.Unlocks()) != 0 {
				t.Error("a door opened")
			}
		})
	}
}

// TestBreakerOpensOnSparseTimeouts: a hung access system called once in a
// while, each call timing out after a fair time and the calls further
// apart than the breaker's window, still opens the breaker after
// breakerConsecutive timeouts in a row, and the next caller fails fast;
// a success in between starts the run again.
func TestBreakerOpensOnSparseTimeouts(t *testing.T) {
	const window = 200 * time.Millisecond
	e := newEnvConfig(t, sim.DemoSeed(), Config{breakerWindow: window})
	if err := listErin(context.Background(), e.client); err != nil {
		t.Fatal(err)
	}
	timeOut := func(i int) {
		t.Helper()
		time.Sleep(window + window/2) // the previous call has left the window
		if err := e.sim.SetFaults(sim.Faults{Hang: true}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), minCountedBudget+50*time.Millisecond)
		defer cancel()
		if err := unlockErin(ctx, e.client); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: err = %v, want a timeout", i, err)
		}
	}
	for i := range breakerConsecutive - 1 {
		timeOut(i + 1)
	}
	// One success ends the run.
	if err := e.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := listErin(context.Background(), e.client); err != nil {
		t.Fatal(err)
	}
	for i := range breakerConsecutive - 1 {
		timeOut(i + 1)
		if got := e.client.BreakerState(); got != "closed" {
			t.Fatalf("after %d timeouts in a row the breaker is %s, want closed", i+1, got)
		}
	}
	timeOut(breakerConsecutive)
	if got := e.client.BreakerState(); got != "open" {
		t.Fatalf("after %d sparse timeouts in a row the breaker is %s, want open", breakerConsecutive, got)
	}
	e.sim.Reset()
	start := time.Now()
	if err := unlockErin(context.Background(), e.client); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("next call: err = %v, want ErrCircuitOpen", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("the next call took %v: it must fail fast", took)
	}
	if n := totalCalls(e.sim); n != 0 {
		t.Errorf("%d requests reached the access system through the open breaker", n)
	}
	if len(e.sim.Unlocks()) != 0 {
		t.Error("a door opened")
	}
}

// TestMaxInFlight: with every slot held by a hung request, another call
// waits for one only as long as its context lets it, then fails with
// ErrBusy (UNAVAILABLE: nothing was sent) without sending anything, and
// without counting against the access system.
func TestMaxInFlight(t *testing.T) {
	e := newEnvConfig(t, sim.DemoSeed(), Config{MaxInFlight: 2})
	if err := listErin(context.Background(), e.client); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetFaults(sim.Faults{Hang: true}); err != nil {
		t.Fatal(err)
	}
	e.sim.Reset()
	hung, release := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _ = unlockErin(hung, e.client) })
	}
	for deadline := time.Now().Add(5 * time.Second); e.sim.Calls(sim.OpUnlock) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the two hung unlocks never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 2 * breakerConsecutive {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		err := listErin(ctx, e.client)
		cancel()
		if !errors.Is(err, ErrBusy) || !errors.Is(err, access.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call %d: err = %v, want ErrBusy", i+1, err)
		}
	}
	if got := e.sim.Calls(sim.OpListUserEntries); got != 0 {
		t.Errorf("%d lists were sent without a slot", got)
	}
	if got := e.client.BreakerState(); got != "closed" {
		t.Errorf("breaker is %s: waiting for a slot is not the access system's failure", got)
	}
	release()
	wg.Wait()
	if err := e.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := listErin(context.Background(), e.client); err != nil {
		t.Errorf("after the slots were freed: %v", err)
	}
	if len(e.sim.Unlocks()) != 0 {
		t.Error("a hung unlock opened a door")
	}
}

// TestUnlockDeadline: a 300ms unlock against a hung or slow access system
// returns a timeout soon after 300ms, sent exactly once.
func TestUnlockDeadline(t *testing.T) {
	for _, faults := range []sim.Faults{{Hang: true}, {Latency: 2 * time.Second}} {
		e := newEnv(t, sim.DemoSeed())
		if err := listErin(context.Background(), e.client); err != nil {
			t.Fatal(err)
		}
		if err := e.sim.SetFaults(faults); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		err := unlockErin(ctx, e.client)
		took := time.Since(start)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%+v: err = %v, want DeadlineExceeded", faults, err)
		}
		if took > time.Second {
			t.Errorf("%+v: returned after %v", faults, took)
		}
		if got := e.sim.Calls(sim.OpUnlock); got != 1 {
			t.Errorf("%+v: Calls(OpUnlock) = %d, want 1", faults, got)
		}
	}
}

// TestWrapTransport: the wrapper sees every upstream request, logins
// included, and CloseIdleConnections still reaches the pool beneath it
// (goleak checks that no connection goroutine is left).
func TestWrapTransport(t *testing.T) {
	var seen atomic.Int64
	s, err := sim.Start(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := newClient(t, Config{BaseURL: s.URL, WrapTransport: func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			seen.Add(1)
			return next.RoundTrip(r)
		})
	}})
	for range 3 {
		if err := unlockErin(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	if got := seen.Load(); got != 4 {
		t.Errorf("the wrapper saw %d requests, want 4 (login and 3 unlocks)", got)
	}
	c.CloseIdleConnections()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkGuard is what the breaker and the in-flight limit add to each
// upstream request: one breaker pass and one slot taken and given back,
// the request itself left out.
func BenchmarkGuard(b *testing.B) {
	c := newClient(b, Config{BaseURL: "http://127.0.0.1:1"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	attempt := func() error {
		if err := c.acquire(ctx, "bench"); err != nil {
			return err
		}
		c.release()
		return nil
	}
	b.Run("limiter only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := attempt(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.guarded(ctx, "bench", attemptStart(ctx), attempt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.guarded(ctx, "bench", attemptStart(ctx), attempt); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// TestReadStopsRetryingWhenBreakerOpens: a read whose failure opens the
// breaker answers that failure at once instead of waiting to be refused.
func TestReadStopsRetryingWhenBreakerOpens(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	if err := listErin(ctx, e.client); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	for range breakerConsecutive - 1 {
		_ = unlockErin(ctx, e.client)
	}
	e.sim.Reset()
	err := listErin(ctx, e.client)
	var se *access.StatusError
	if !errors.As(err, &se) || se.Status != 503 {
		t.Errorf("err = %v, want the 503 that opened the breaker", err)
	}
	if got := e.sim.Calls(sim.OpListUserEntries); got != 1 {
		t.Errorf("Calls(OpListUserEntries) = %d, want 1", got)
	}
	if got := e.client.BreakerState(); got != "open" {
		t.Errorf("breaker is %s, want open", got)
	}
}
