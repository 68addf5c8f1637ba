package kisi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/kisisim"
)

// wantReason checks that err is an *access.ReasonError of kind with
// reason, over the *access.StatusError of status.
func wantReason(t *testing.T, err error, kind error, reason string, status int) {
	t.Helper()
	var re *access.ReasonError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want an *access.ReasonError", err)
	}
	if !errors.Is(err, kind) || re.Reason != reason {
		t.Errorf("err = %v (kind %v, reason %q), want kind %v, reason %q", err, re.Kind, re.Reason, kind, reason)
	}
	var se *access.StatusError
	if !errors.As(re.Err, &se) || se.Status != status {
		t.Errorf("err = %v, want it over an HTTP %d", err, status)
	}
}

func TestUnlock(t *testing.T) {
	e := foundry(t)
	cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	if err := e.client.Unlock(context.Background(), id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID)); err != nil {
		t.Fatal(err)
	}
	u := e.srv.Unlocks()
	if len(u) != 1 || u[0].LockID != kisisim.DemoBikeRoomID || u[0].UserID != kisisim.DemoHankID || id(u[0].LoginID) != cred || u[0].ByOrgKey {
		t.Errorf("unlocks %+v, want the Bike Room by hank's own login %s", u, cred)
	}
}

// TestUnlockRefusals: each of Kisi's refusals is a ReasonError a person
// can act on, and none is retried.
func TestUnlockRefusals(t *testing.T) {
	hour := time.Hour
	for _, tt := range []struct {
		name   string
		setup  func(*kisisim.Server) error
		lock   int
		kind   error
		reason string
		status int
	}{
		{name: "not granted (fcd8ef)", lock: kisisim.DemoBikeRoomID, kind: access.ErrDenied, reason: ReasonDenied, status: 403,
			setup: func(s *kisisim.Server) error { return s.Revoke(kisisim.DemoHankEmail, kisisim.DemoBikeRoomID) }},
		{name: "access disabled (fcd8ff)", lock: kisisim.DemoBikeRoomID, kind: access.ErrDenied, reason: ReasonDisabled, status: 403,
			setup: func(s *kisisim.Server) error {
				return s.SetUserAccess(kisisim.DemoFoundryOrgID, kisisim.DemoHankEmail, false)
			}},
		{name: "not yet valid (f358de)", lock: kisisim.DemoBikeRoomID, kind: access.ErrDenied, reason: ReasonNotYetValid, status: 403,
			setup: func(s *kisisim.Server) error {
				return s.GrantWindow(kisisim.DemoHankEmail, kisisim.DemoBikeRoomID, time.Now().Add(hour), time.Time{})
			}},
		{name: "no longer valid (f35ade)", lock: kisisim.DemoBikeRoomID, kind: access.ErrDenied, reason: ReasonNoLongerValid, status: 403,
			setup: func(s *kisisim.Server) error {
				return s.GrantWindow(kisisim.DemoHankEmail, kisisim.DemoBikeRoomID, time.Now().Add(-2*hour), time.Now().Add(-hour))
			}},
		{name: "reader restricted (bb4faa)", lock: kisisim.DemoBikeRoomID, kind: access.ErrDenied, reason: ReaderRestricted, status: 403,
			setup: func(s *kisisim.Server) error { return s.SetLockRestrictions(kisisim.DemoBikeRoomID, true, false) }},
		{name: "geofenced (a3995f)", lock: kisisim.DemoBikeRoomID, kind: access.ErrDenied, reason: GeofenceRestricted, status: 403,
			setup: func(s *kisisim.Server) error { return s.SetLockRestrictions(kisisim.DemoBikeRoomID, false, true) }},
		{name: "locked down (fad001)", lock: kisisim.DemoBikeRoomID, kind: access.ErrDenied, reason: ReasonLockedDown, status: 409,
			setup: func(s *kisisim.Server) error { return s.SetLockState(kisisim.DemoBikeRoomID, true, true) }},
		{name: "lock offline (fad107)", lock: kisisim.DemoBikeRoomID, kind: access.ErrUnavailable, reason: ReasonLockOffline, status: 503,
			setup: func(s *kisisim.Server) error { return s.SetLockState(kisisim.DemoBikeRoomID, false, false) }},
		{name: "no such lock (404)", lock: 8999, kind: access.ErrDenied, reason: ReasonDoorNotFound, status: 404},
		{name: "another organisation's lock (404)", lock: kisisim.DemoPoolID, kind: access.ErrDenied, reason: ReasonDoorNotFound, status: 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := foundry(t)
			cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
			if tt.setup != nil {
				if err := tt.setup(e.srv); err != nil {
					t.Fatal(err)
				}
			}
			err := e.client.Unlock(context.Background(), id(kisisim.DemoHankID), cred, id(tt.lock))
			wantReason(t, err, tt.kind, tt.reason, tt.status)
			if !strings.HasPrefix(err.Error(), "kisi: unlock lock ") {
				t.Errorf("err = %q, want it to say what failed", err)
			}
			if n := e.srv.Calls(kisisim.OpUnlock); n != 1 {
				t.Errorf("unlock sent %d times, want 1", n)
			}
			if len(e.srv.Unlocks()) != 0 {
				t.Errorf("the door opened")
			}
		})
	}
}

// TestUnlockMoreReasons: Kisi codes the simulator does not give, from a
// made-up answer of the spec's shape.
func TestUnlockMoreReasons(t *testing.T) {
	for _, tt := range []struct {
		status int
		code   string
		kind   error
		reason string
	}{
		{403, "afc496", access.ErrDenied, ReasonDenied},
		{403, "0000ff", access.ErrDenied, ReasonDenied},
		{409, "fad002", access.ErrDenied, ReasonLockedDown},
		{409, "fad112", access.ErrUnavailable, ReasonInProgress},
		{503, "fac001", access.ErrUnavailable, ReasonController},
		{503, "fbc000", access.ErrUnavailable, ReasonFirmware},
		{503, "", access.ErrUnavailable, ReasonController},
	} {
		t.Run(tt.code, func(t *testing.T) {
			e := foundry(t)
			cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
			e.intercept = func(req *http.Request) *http.Response {
				if !strings.HasSuffix(req.URL.Path, "/unlock") {
					return nil
				}
				return jsonAnswer(req, tt.status, `{"error":"made up","code":"`+tt.code+`"}`, nil)
			}
			err := e.client.Unlock(context.Background(), id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID))
			wantReason(t, err, tt.kind, tt.reason, tt.status)
		})
	}
}

// Test429: an unlock answered 429 did not reach the door: it is sent once
// more after Retry-After (1 s when absent) if that fits before the
// deadline, else it fails at once as "Kisi is busy".
func Test429(t *testing.T) {
	for _, tt := range []struct {
		name       string
		retryAfter time.Duration
		faults     int
		timeout    time.Duration
		wantErr    bool
		calls      int64
		minTook    time.Duration
		maxTook    time.Duration
	}{
		{name: "Retry-After fits", retryAfter: time.Second, faults: 1, timeout: 3 * time.Second,
			calls: 2, minTook: time.Second, maxTook: 2500 * time.Millisecond},
		{name: "no Retry-After: 1 s, fits", faults: 1, timeout: 3 * time.Second,
			calls: 2, minTook: time.Second, maxTook: 2500 * time.Millisecond},
		{name: "Retry-After does not fit", retryAfter: 2 * time.Second, faults: 1, timeout: time.Second,
			wantErr: true, calls: 1, maxTook: 500 * time.Millisecond},
		{name: "429 twice: retried once only", retryAfter: time.Second, faults: 2, timeout: 5 * time.Second,
			wantErr: true, calls: 2, minTook: time.Second, maxTook: 2500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := foundry(t)
			cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
			if err := e.srv.SetFaults(kisisim.Faults{RateLimitRate: 1, MaxFaults: tt.faults, RetryAfter: tt.retryAfter}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			start := time.Now()
			err := e.client.Unlock(ctx, id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID))
			took := time.Since(start)
			if tt.wantErr {
				wantReason(t, err, access.ErrUnavailable, ReasonBusy, 429)
			} else if err != nil {
				t.Fatal(err)
			}
			if n := e.srv.Calls(kisisim.OpUnlock); n != tt.calls {
				t.Errorf("unlock sent %d times, want %d", n, tt.calls)
			}
			if took < tt.minTook || took > tt.maxTook {
				t.Errorf("took %v, want within [%v, %v]", took, tt.minTook, tt.maxTook)
			}
			if e.client.BreakerState() != "closed" {
				t.Errorf("a user's 429 opened the breaker")
			}
		})
	}
}

// Test401: a login Kisi no longer accepts is deleted from the store,
// re-created once with the organisation key, and the unlock sent again
// with the new one; if Kisi refuses that too, the unlock fails.
func Test401(t *testing.T) {
	t.Run("login revoked: re-created once", func(t *testing.T) {
		e := foundry(t)
		old := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
		e.revoke(t, old)
		if err := e.client.Unlock(context.Background(), id(kisisim.DemoHankID), old, id(kisisim.DemoBikeRoomID)); err != nil {
			t.Fatal(err)
		}
		u := e.srv.Unlocks()
		if len(u) != 1 || id(u[0].LoginID) == old || u[0].ByOrgKey {
			t.Fatalf("unlocks %+v, want one by a new login of hank", u)
		}
		if n := e.srv.Calls(kisisim.OpCreateLogin); n != 2 {
			t.Errorf("%d logins created, want 2", n)
		}
		if _, deletes := e.store.counts(); deletes != 1 {
			t.Errorf("%d logins deleted from the store, want 1", deletes)
		}
		l, ok, _ := e.store.Get(context.Background(), kisisim.DemoHankID)
		if !ok || l.ID != int64(u[0].LoginID) {
			t.Errorf("stored login %d (%v), want the new one %d", l.ID, ok, u[0].LoginID)
		}
		// The new login is used from then on.
		if cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail); cred != id(u[0].LoginID) {
			t.Errorf("EnsureCloudKey = %s, want the new login %d", cred, u[0].LoginID)
		}
	})
	t.Run("listing: re-created once", func(t *testing.T) {
		e := foundry(t)
		e.revoke(t, e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail))
		got, err := e.client.ListUserEntries(context.Background(), id(kisisim.DemoHankID))
		if err != nil || len(got) != 2 {
			t.Fatalf("got %+v, %v; want hank's two locks", got, err)
		}
		if n := e.srv.Calls(kisisim.OpCreateLogin); n != 2 {
			t.Errorf("%d logins created, want 2", n)
		}
	})
	t.Run("refused again: no loop", func(t *testing.T) {
		e := foundry(t)
		cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
		e.intercept = func(req *http.Request) *http.Response {
			if !strings.HasSuffix(req.URL.Path, "/unlock") {
				return nil
			}
			return jsonAnswer(req, 401, `{"error":"Unauthorized.","code":"000401"}`, nil)
		}
		err := e.client.Unlock(context.Background(), id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID))
		wantReason(t, err, access.ErrDenied, ReasonLoginRefused, 401)
		unlocks := 0
		for _, r := range e.sent() {
			if strings.HasSuffix(r.path, "/unlock") {
				unlocks++
			}
		}
		if unlocks != 2 {
			t.Errorf("unlock sent %d times, want 2", unlocks)
		}
		if n := e.srv.Calls(kisisim.OpCreateLogin); n != 2 {
			t.Errorf("%d logins created, want 2", n)
		}
	})
}

// TestUnlockNotRetriedWhenItMayHaveOpened: an unlock that timed out, or
// whose answer was lost, is never sent again.
func TestUnlockNotRetriedWhenItMayHaveOpened(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults kisisim.Faults
	}{
		{"slow answer", kisisim.Faults{OpLatency: map[kisisim.Op]time.Duration{kisisim.OpUnlock: time.Second}}},
		{"503 without a Kisi code", kisisim.Faults{ErrorRate: 1, MaxFaults: 1}},
		{"502", kisisim.Faults{ErrorRate: 1, ErrorStatus: 502, MaxFaults: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := foundry(t)
			cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
			if err := e.srv.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err := e.client.Unlock(ctx, id(kisisim.DemoHankID), cred, id(kisisim.DemoBikeRoomID))
			if !errors.Is(err, access.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want unavailable or a timeout", err)
			}
			if n := e.srv.Calls(kisisim.OpUnlock); n != 1 {
				t.Errorf("unlock sent %d times, want 1", n)
			}
		})
	}
}

// TestOrgKeyNeverUnlocks: whatever happens (a first unlock, refusals, a
// 429 retry, a 401 and a re-created login), no unlock request carries the
// organisation key.
func TestOrgKeyNeverUnlocks(t *testing.T) {
	e := foundry(t)
	ctx := context.Background()
	hank := id(kisisim.DemoHankID)
	cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	_ = e.client.Unlock(ctx, hank, cred, id(kisisim.DemoBikeRoomID))
	_ = e.client.Unlock(ctx, hank, cred, id(kisisim.DemoPoolID)) // another org's: 404
	if err := e.srv.SetFaults(kisisim.Faults{RateLimitRate: 1, MaxFaults: 1}); err != nil {
		t.Fatal(err)
	}
	_ = e.client.Unlock(ctx, hank, cred, id(kisisim.DemoFrontDoorID))
	e.revoke(t, cred)
	_ = e.client.Unlock(ctx, hank, cred, id(kisisim.DemoFrontDoorID))
	// A user without a login in memory: the client makes one (with the org
	// key) and unlocks with it.
	other, err := New(Config{BaseURL: e.srv.URL, APIKey: kisisim.DemoFoundryAPIKey, Logins: e.store, HTTPClient: e.client.http})
	if err != nil {
		t.Fatal(err)
	}
	_ = other.Unlock(ctx, hank, cred, id(kisisim.DemoBikeRoomID))

	unlocks := 0
	for _, r := range e.sent() {
		if strings.HasSuffix(r.path, "/unlock") {
			unlocks++
			if r.auth == "KISI-LOGIN "+kisisim.DemoFoundryAPIKey || !strings.HasPrefix(r.auth, "KISI-LOGIN ") {
				t.Errorf("unlock %s sent with %q, want a user's login", r.path, r.auth)
			}
		}
	}
	if unlocks < 6 {
		t.Errorf("%d unlocks sent, want at least 6", unlocks)
	}
	for _, u := range e.srv.Unlocks() {
		if u.ByOrgKey {
			t.Errorf("unlock %+v by the organisation key", u)
		}
	}
	if len(e.srv.Unlocks()) != 4 {
		t.Errorf("%d doors opened, want 4", len(e.srv.Unlocks()))
	}
}
