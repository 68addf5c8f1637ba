package kisi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/guard"
	"github.com/cloudkey/cloudkey/access/kisisim"
)

// TestOrgRateLimit: the organisation key's calls share one token bucket.
// A call waits for its token when its deadline allows, and otherwise
// fails at once without being sent.
func TestOrgRateLimit(t *testing.T) {
	e := newEnv(t, quietSeed(), kisisim.DemoFoundryAPIKey, Config{OrgRate: 2}) // bursts of 2, one token every 500 ms
	find := func(timeout time.Duration) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		_, err := e.client.FindUserByEmail(ctx, kisisim.DemoHankEmail)
		return time.Since(start), err
	}
	for i := range 2 { // the burst
		if took, err := find(time.Second); err != nil || took > 200*time.Millisecond {
			t.Fatalf("call %d: %v after %v, want at once", i, err, took)
		}
	}
	// The bucket is empty: a call with 300 ms left cannot get a token
	// (the next comes 500 ms after the last).
	took, err := find(300 * time.Millisecond)
	if !errors.Is(err, ErrRateLimited) || !errors.Is(err, access.ErrUnavailable) {
		t.Errorf("short deadline: err = %v, want ErrRateLimited (unavailable)", err)
	}
	if took > 150*time.Millisecond {
		t.Errorf("short deadline: failed after %v, want at once", took)
	}
	if n := e.srv.Calls(kisisim.OpFetchUsers); n != 2 {
		t.Errorf("GET /users sent %d times, want 2: the refused call must not be sent", n)
	}
	// With time enough, it waits for the token.
	took, err = find(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if took < 300*time.Millisecond {
		t.Errorf("long deadline: answered after %v, want a wait for the token", took)
	}
	// Login creations share the bucket.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := e.client.EnsureCloudKey(ctx, kisiUser(kisisim.DemoHankID, kisisim.DemoHankEmail)); !errors.Is(err, ErrRateLimited) {
		t.Errorf("login creation: err = %v, want ErrRateLimited", err)
	}
	if e.client.BreakerState() != "closed" {
		t.Error("the rate limit opened the breaker")
	}
}

// TestUserRateLimit: one user's calls stay under Kisi's 5 requests per
// second per user (UserRate), so that Kisi (the simulator enforces the limit) never
// answers 429; an unlock that cannot get its token before the deadline
// is not sent and reads as "Kisi is busy".
func TestUserRateLimit(t *testing.T) {
	e := newEnv(t, kisisim.DemoSeed(), kisisim.DemoFoundryAPIKey, Config{}) // the simulator limits 5/s per user
	cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	time.Sleep(time.Second) // refill the simulator's bucket after the login
	ctx := context.Background()
	start := time.Now()
	for i := range 8 {
		if err := e.client.Unlock(ctx, id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID)); err != nil {
			t.Fatalf("unlock %d: %v", i, err)
		}
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("8 unlocks took %v: the client did not pace them", took)
	}
	if n := e.srv.Calls(kisisim.OpUnlock); n != 8 {
		t.Errorf("unlock sent %d times, want 8 (no 429 retries)", n)
	}
	// The bucket is empty now: with 20 ms left, the unlock is not sent.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	for range 5 {
		_ = e.client.Unlock(short, id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID))
	}
	err := e.client.Unlock(short, id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID))
	var re *access.ReasonError
	if !errors.As(err, &re) || re.Reason != ReasonBusy || !errors.Is(err, ErrRateLimited) {
		t.Errorf("err = %v, want %q over ErrRateLimited", err, ReasonBusy)
	}
	// Another user has a bucket of its own.
	frank := e.ensure(t, kisisim.DemoFoundryFrankID, kisisim.DemoFrankEmail)
	other, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if err := e.client.Unlock(other, id(kisisim.DemoFoundryFrankID), frank, id(kisisim.DemoFrontDoorID)); err != nil {
		t.Errorf("frank, while hank's bucket is empty: %v", err)
	}
}

// TestBreaker: Kisi hung, or gone, opens the breaker after
// guard.BreakerConsecutive failures, and the next call fails at once
// without a request.
func TestBreaker(t *testing.T) {
	for _, tt := range []struct {
		name string
		kill func(*env) error
	}{
		{"hung", func(e *env) error { return e.srv.SetFaults(kisisim.Faults{Hang: true}) }},
		{"dead", func(e *env) error { return e.srv.Close() }},
		{"answers 503", func(e *env) error { return e.srv.SetFaults(kisisim.Faults{ErrorRate: 1}) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var changes []string
			e := newEnv(t, quietSeed(), kisisim.DemoFoundryAPIKey, Config{
				Name:               "foundry",
				BreakerOpenTimeout: time.Minute,
				userRate:           1000, // the failures come faster than Kisi's 5/s
				OnBreakerChange:    func(system, from, to string) { changes = append(changes, system+":"+from+"->"+to) },
			})
			cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
			if err := tt.kill(e); err != nil {
				t.Fatal(err)
			}
			unlock := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), guard.MinCountedBudget+100*time.Millisecond)
				defer cancel()
				return e.client.Unlock(ctx, id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID))
			}
			for i := range guard.BreakerConsecutive {
				if err := unlock(); err == nil || errors.Is(err, guard.ErrCircuitOpen) {
					t.Fatalf("call %d: err = %v, want a failure that reached Kisi", i, err)
				}
			}
			if got := e.client.BreakerState(); got != "open" {
				t.Fatalf("breaker %s, want open", got)
			}
			before := len(e.sent())
			start := time.Now()
			err := unlock()
			if !errors.Is(err, guard.ErrCircuitOpen) || !errors.Is(err, access.ErrUnavailable) {
				t.Errorf("err = %v, want ErrCircuitOpen", err)
			}
			if took := time.Since(start); took > 100*time.Millisecond {
				t.Errorf("open breaker answered after %v, want at once", took)
			}
			if n := len(e.sent()); n != before {
				t.Errorf("%d requests sent through an open breaker", n-before)
			}
			if len(changes) != 1 || changes[0] != "foundry:closed->open" {
				t.Errorf("OnBreakerChange told %v", changes)
			}
		})
	}
}

// TestDoorTroubleDoesNotOpenBreaker: an offline lock, a refusal or a
// user's own 429 are answers of a healthy Kisi; many of them do not open
// the breaker for everyone.
func TestDoorTroubleDoesNotOpenBreaker(t *testing.T) {
	e := foundry(t)
	cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	if err := e.srv.SetLockState(kisisim.DemoBikeRoomID, false, false); err != nil {
		t.Fatal(err)
	}
	for range 3 * guard.BreakerConsecutive {
		err := e.client.Unlock(context.Background(), id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID))
		wantReason(t, err, access.ErrUnavailable, ReasonLockOffline, 503)
	}
	if got := e.client.BreakerState(); got != "closed" {
		t.Errorf("breaker %s after an offline lock's answers, want closed", got)
	}
}

// TestReadsRetried: a listing answered 503 or 429 is retried with backoff;
// a 500 is not.
func TestReadsRetried(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults kisisim.Faults
		calls  int64
		ok     bool
	}{
		{"503 once", kisisim.Faults{ErrorRate: 1, MaxFaults: 1}, 2, true},
		{"429 twice", kisisim.Faults{RateLimitRate: 1, MaxFaults: 2}, 3, true},
		{"503 always: bounded", kisisim.Faults{ErrorRate: 1}, guard.MaxReadAttempts, false},
		{"500: not retried", kisisim.Faults{ErrorRate: 1, ErrorStatus: 500, MaxFaults: 1}, 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := foundry(t)
			e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
			if _, err := e.client.ListUserEntries(context.Background(), id(kisisim.DemoHankID)); err != nil {
				t.Fatal(err) // fetches the places first
			}
			e.srv.Reset()
			if err := e.srv.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			_, err := e.client.ListUserEntries(context.Background(), id(kisisim.DemoHankID))
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok %v", err, tt.ok)
			}
			if n := e.srv.Calls(kisisim.OpFetchLocks); n != tt.calls {
				t.Errorf("GET /locks sent %d times, want %d", n, tt.calls)
			}
		})
	}
}

// TestNoSecretsLeak: neither the API key nor any login secret appears in
// the logs (at debug level) or in an error, whatever happened.
func TestNoSecretsLeak(t *testing.T) {
	e := foundry(t)
	ctx := context.Background()
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err := e.client.FindUserByEmail(ctx, kisisim.DemoHankEmail)
	note(err)
	_, err = e.client.FindUserByEmail(ctx, "nobody@example.com")
	note(err)
	cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	_, err = e.client.ListUserEntries(ctx, id(kisisim.DemoHankID))
	note(err)
	note(e.client.Unlock(ctx, id(kisisim.DemoHankID), cred, id(kisisim.DemoPoolID)))
	oldSecrets := e.store.secrets()
	e.revoke(t, cred)
	note(e.client.Unlock(ctx, id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID)))
	note(e.srv.SetFaults(kisisim.Faults{ErrorRate: 1}))
	for range guard.BreakerConsecutive + 1 {
		note(e.client.Unlock(ctx, id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID)))
	}
	secrets := append(oldSecrets, e.store.secrets()...)
	secrets = append(secrets, kisisim.DemoFoundryAPIKey)
	if len(errs) < 3 {
		t.Fatalf("only %d errors to check", len(errs))
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "created a login") || !strings.Contains(logs, "circuit breaker") {
		t.Errorf("logs lack the expected entries:\n%s", logs)
	}
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret")
		}
		if strings.Contains(logs, s) {
			t.Errorf("a secret is in the logs:\n%s", logs)
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), s) {
				t.Errorf("a secret is in the error %q", err)
			}
		}
	}
}

func TestNew(t *testing.T) {
	store := newMemStore()
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"no base URL", Config{APIKey: "k", Logins: store}},
		{"not http", Config{BaseURL: "ftp://kisi", APIKey: "k", Logins: store}},
		{"no API key", Config{BaseURL: "https://api.kisi.io", Logins: store}},
		{"API key with a space", Config{BaseURL: "https://api.kisi.io", APIKey: "a b", Logins: store}},
		{"no login store", Config{BaseURL: "https://api.kisi.io", APIKey: "k"}},
		{"bad place", Config{BaseURL: "https://api.kisi.io", APIKey: "k", Logins: store, PlaceIDs: []int64{0}}},
		{"negative rate", Config{BaseURL: "https://api.kisi.io", APIKey: "k", Logins: store, OrgRate: -1}},
	} {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: no error", tt.name)
		} else if strings.Contains(err.Error(), "a b") {
			t.Errorf("%s: the error %q quotes the key", tt.name, err)
		}
	}
	c, err := New(Config{BaseURL: "https://api.kisi.io/", APIKey: "k", Logins: store})
	if err != nil {
		t.Fatal(err)
	}
	if c.BreakerState() != "closed" || c.name != "kisi" || c.base != "https://api.kisi.io" {
		t.Errorf("defaults: %s, %q, %q", c.BreakerState(), c.name, c.base)
	}
	c.CloseIdleConnections()
}
