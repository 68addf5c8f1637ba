package kisisim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// timed sends GET path with secret under a client timeout, through the
// spec-checking client, and returns the status (0 if the client gave up)
// and how long it took.
func (f *fixture) timed(t *testing.T, path, secret string, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+path, nil)
	req.Header.Set("Authorization", "KISI-LOGIN "+secret)
	start := time.Now()
	resp, err := f.checked.Do(req)
	elapsed := time.Since(start)
	if err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("unexpected error: %v", err)
		}
		return 0, elapsed
	}
	resp.Body.Close()
	return resp.StatusCode, elapsed
}

func TestLatencyFaults(t *testing.T) {
	f := demo(t)
	// The bounds are wide: every answer is validated against the spec, under
	// the race detector, while other packages' tests run. A slow answer
	// is one held back by at least its latency; a fast one takes well under
	// the latency the other cases add.
	const slow = 400 * time.Millisecond
	tests := []struct {
		name     string
		faults   Faults
		path     string
		min, max time.Duration
	}{
		{"none", Faults{}, "/locks", 0, slow / 2},
		{"fixed", Faults{Latency: slow}, "/locks", slow, 3 * slow},
		{"jitter", Faults{Jitter: 30 * time.Millisecond}, "/locks", 0, slow},
		{"per operation, that op", Faults{OpLatency: map[Op]time.Duration{OpFetchLocks: slow}}, "/locks", slow, 3 * slow},
		{"per operation, another op", Faults{OpLatency: map[Op]time.Duration{OpFetchLocks: 10 * time.Second}}, "/places", 0, slow},
		{"fixed plus per operation", Faults{Latency: slow / 2, OpLatency: map[Op]time.Duration{OpFetchLocks: slow / 2}}, "/locks", slow, 3 * slow},
	}
	// Warm up: the first validation of each operation compiles its schemas.
	f.timed(t, "/locks", DemoHarborAPIKey, 5*time.Second)
	f.timed(t, "/places", DemoHarborAPIKey, 5*time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, f.srv.SetFaults(tt.faults))
			status, took := f.timed(t, tt.path, DemoHarborAPIKey, 5*time.Second)
			if status != 200 || took < tt.min || took > tt.max {
				t.Errorf("status %d after %v; want 200 within [%v, %v]", status, took, tt.min, tt.max)
			}
		})
	}
}

func TestHangFault(t *testing.T) {
	f := demo(t)
	must(t, f.srv.SetFaults(Faults{Hang: true}))
	status, took := f.timed(t, "/locks", DemoHarborAPIKey, 100*time.Millisecond)
	if status != 0 || took > 2*time.Second {
		t.Fatalf("hang: status %d after %v", status, took)
	}
	// Closing the simulator releases hung requests with 503.
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest("GET", f.srv.URL+"/places", nil)
		req.Header.Set("Authorization", "KISI-LOGIN "+DemoHarborAPIKey)
		resp, err := f.checked.Do(req)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	time.Sleep(50 * time.Millisecond)
	f.srv.Sim.Close()
	select {
	case got := <-done:
		if got != http.StatusServiceUnavailable {
			t.Fatalf("released hang: %d, want 503", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hung request not released by Close")
	}
}

func TestErrorFaults(t *testing.T) {
	tests := []struct {
		name        string
		faults      Faults
		status      int
		code        string
		retryAfter  string
		failedCalls int // of 4
	}{
		{"error default 503", Faults{ErrorRate: 1}, 503, "000503", "", 4},
		{"error 500", Faults{ErrorRate: 1, ErrorStatus: 500}, 500, "ffffff", "", 4},
		{"error 502", Faults{ErrorRate: 1, ErrorStatus: 502}, 502, "000502", "", 4},
		{"503 with retry-after", Faults{ErrorRate: 1, RetryAfter: 1500 * time.Millisecond}, 503, "000503", "2", 4},
		{"rate limit", Faults{RateLimitRate: 1, RetryAfter: time.Second}, 429, "000429", "1", 4},
		{"rate limit without retry-after", Faults{RateLimitRate: 1}, 429, "000429", "", 4},
		{"max faults", Faults{ErrorRate: 1, MaxFaults: 2}, 503, "000503", "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := demo(t)
			gina, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
			must(t, f.srv.SetFaults(tt.faults))
			failed := 0
			for range 4 {
				a := f.do(t, "POST", unlockPath(DemoPoolID), gina, "")
				if a.status == 200 {
					continue
				}
				failed++
				if a.status != tt.status || a.header.Get("Retry-After") != tt.retryAfter {
					t.Fatalf("status %d Retry-After %q; want %d %q", a.status, a.header.Get("Retry-After"), tt.status, tt.retryAfter)
				}
				if e := a.apiErr(t); e.Code != tt.code {
					t.Fatalf("code %q, want %q", e.Code, tt.code)
				}
			}
			if failed != tt.failedCalls {
				t.Fatalf("%d of 4 failed, want %d", failed, tt.failedCalls)
			}
			if got := f.srv.Calls(OpUnlock); got != 4 {
				t.Fatalf("Calls(OpUnlock) = %d, want 4 (faults count)", got)
			}
			if n := len(f.srv.Unlocks()); n != 4-tt.failedCalls {
				t.Fatalf("%d unlocks recorded, want %d", n, 4-tt.failedCalls)
			}
		})
	}
}

func TestFaultsSpareLoginUnlessIncluded(t *testing.T) {
	f := demo(t)
	must(t, f.srv.SetFaults(Faults{ErrorRate: 1}))
	f.login(t, DemoHarborAPIKey, DemoGinaEmail) // spared
	must(t, f.srv.SetFaults(Faults{ErrorRate: 1, IncludeLogin: true}))
	if a := f.do(t, "POST", "/logins", DemoHarborAPIKey, loginBody(DemoGinaEmail)); a.status != 503 {
		t.Fatalf("login with IncludeLogin: %d", a.status)
	}
}

func TestFaultsValidate(t *testing.T) {
	bad := []Faults{
		{Latency: -1}, {ErrorRate: 1.5}, {RateLimitRate: -0.1}, {ErrorStatus: 404}, {MaxFaults: -1},
		{OpLatency: map[Op]time.Duration{numOps: time.Second}},
	}
	s, err := New(DemoSeed())
	must(t, err)
	for _, f := range bad {
		if err := s.SetFaults(f); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	in := Faults{Latency: time.Second, OpLatency: map[Op]time.Duration{OpUnlock: time.Second}, ErrorRate: 0.5, IncludeLogin: true}
	must(t, s.SetFaults(in))
	out := s.Faults()
	b1, _ := json.Marshal(in)
	b2, _ := json.Marshal(out)
	if string(b1) != string(b2) {
		t.Fatalf("Faults() = %s, want %s", b2, b1)
	}
}

func TestCallsAndReset(t *testing.T) {
	f := demo(t)
	gina, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	f.do(t, "GET", "/locks", gina, "")
	f.do(t, "GET", "/locks", "nope", "") // 401 counts too
	f.do(t, "POST", unlockPath(DemoPoolID), gina, "")
	want := map[Op]int64{OpCreateLogin: 1, OpFetchLocks: 2, OpUnlock: 1}
	for _, op := range Ops() {
		if got := f.srv.Calls(op); got != want[op] {
			t.Errorf("Calls(%v) = %d, want %d", op, got, want[op])
		}
	}
	f.srv.Reset()
	for _, op := range Ops() {
		if got := f.srv.Calls(op); got != 0 {
			t.Errorf("after Reset, Calls(%v) = %d", op, got)
		}
	}
	if len(f.srv.Unlocks()) != 0 {
		t.Error("Reset kept the unlocks")
	}
	if a := f.do(t, "GET", "/login", gina, ""); a.status != 200 {
		t.Errorf("Reset dropped the login: %d", a.status)
	}
}

func TestOpNames(t *testing.T) {
	for _, op := range Ops() {
		got, err := ParseOp(op.String())
		if err != nil || got != op {
			t.Errorf("ParseOp(%q) = %v, %v", op.String(), got, err)
		}
	}
	if op, err := ParseOp("unlock"); err != nil || op != OpUnlock {
		t.Errorf("ParseOp(unlock) = %v, %v", op, err)
	}
	if _, err := ParseOp("nope"); err == nil {
		t.Error("ParseOp(nope) succeeded")
	}
}

// TestFaultsOnUpdateUser: a PATCH /users/{id} a fault answers changes
// nothing, so that a client's retry (or the next move-out run) is what
// suspends the user.
func TestFaultsOnUpdateUser(t *testing.T) {
	f := demo(t)
	must(t, f.srv.SetFaults(Faults{ErrorRate: 1, MaxFaults: 1}))
	path := "/users/" + strconv.Itoa(DemoGinaID)
	if a := f.do(t, "PATCH", path, DemoHarborAPIKey, `{"user":{"access_enabled":false}}`); a.status != 503 {
		t.Fatalf("faulted PATCH: %d %s, want 503", a.status, a.body)
	}
	if u, _ := f.srv.User(DemoHarborOrgID, DemoGinaEmail); u.AccessDisabled {
		t.Fatal("a faulted PATCH suspended the user")
	}
	if a := f.do(t, "PATCH", path, DemoHarborAPIKey, `{"user":{"access_enabled":false}}`); a.status != 204 {
		t.Fatalf("PATCH after the fault: %d %s", a.status, a.body)
	}
	if u, _ := f.srv.User(DemoHarborOrgID, DemoGinaEmail); !u.AccessDisabled {
		t.Fatal("the PATCH after the fault did not suspend the user")
	}
	if got := f.srv.Calls(OpUpdateUser); got != 2 {
		t.Fatalf("Calls(OpUpdateUser) = %d, want 2", got)
	}
}
