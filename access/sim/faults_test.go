package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// timed sends a GET with a token under a client timeout and returns the
// status (0 if the client gave up) and how long it took.
func timed(t *testing.T, url, token string, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
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
	f := newFixture(t, DemoSeed())
	token := login(t, f.raw)
	entries := f.raw + orgPath + "/entries"
	users := f.raw + orgPath + "/users"
	tests := []struct {
		name     string
		faults   Faults
		url      string
		min, max time.Duration
	}{
		{"none", Faults{}, entries, 0, 40 * time.Millisecond},
		{"fixed", Faults{Latency: 60 * time.Millisecond}, entries, 60 * time.Millisecond, 200 * time.Millisecond},
		{"jitter", Faults{Jitter: 30 * time.Millisecond}, entries, 0, 150 * time.Millisecond},
		{"per operation, that op", Faults{OpLatency: map[Op]time.Duration{OpListEntries: 60 * time.Millisecond}}, entries, 60 * time.Millisecond, 200 * time.Millisecond},
		{"per operation, another op", Faults{OpLatency: map[Op]time.Duration{OpListEntries: time.Second}}, users, 0, 40 * time.Millisecond},
		{"fixed plus per operation", Faults{Latency: 30 * time.Millisecond, OpLatency: map[Op]time.Duration{OpListEntries: 30 * time.Millisecond}}, entries, 60 * time.Millisecond, 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			status, took := timed(t, tt.url, token, 5*time.Second)
			if status != 200 || took < tt.min || took > tt.max {
				t.Errorf("status %d after %v; want 200 within [%v, %v]", status, took, tt.min, tt.max)
			}
		})
	}
}

// TestDelayHonoursClient checks that a delayed or hung request stops as
// soon as the client gives up, rather than sleeping on.
func TestDelayHonoursClient(t *testing.T) {
	for _, faults := range []Faults{{Latency: 10 * time.Second}, {Hang: true}} {
		t.Run(map[bool]string{true: "hang", false: "latency"}[faults.Hang], func(t *testing.T) {
			s, err := New(DemoSeed())
			if err != nil {
				t.Fatal(err)
			}
			var returned atomic.Int64 // when the handler returned, in Unix nanoseconds
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.Handler().ServeHTTP(w, r)
				returned.Store(time.Now().UnixNano())
			}))
			defer srv.Close()
			token := login(t, srv.URL)
			if err := s.SetFaults(faults); err != nil {
				t.Fatal(err)
			}
			status, took := timed(t, srv.URL+orgPath+"/entries", token, 100*time.Millisecond)
			if status != 0 || took > time.Second {
				t.Fatalf("status %d after %v; want the client to give up at 100ms", status, took)
			}
			gaveUp := time.Now()
			for returned.Load() == 0 && time.Since(gaveUp) < 2*time.Second {
				time.Sleep(5 * time.Millisecond)
			}
			if returned.Load() == 0 {
				t.Fatal("the handler still runs 2s after the client gave up")
			}
		})
	}
}

func TestHangReleasedByClose(t *testing.T) {
	s, err := New(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	token := login(t, srv.URL)
	if err := s.SetFaults(Faults{Hang: true}); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, s.Close)
	status, took := timed(t, srv.URL+orgPath+"/entries", token, 5*time.Second)
	if status != http.StatusServiceUnavailable || took > 2*time.Second {
		t.Fatalf("status %d after %v; want 503 once the simulator closed", status, took)
	}
	// Once closed, hangs end at once.
	if status, took := timed(t, srv.URL+orgPath+"/entries", token, 5*time.Second); status != 503 || took > time.Second {
		t.Errorf("after Close: status %d after %v", status, took)
	}
}

func TestErrorRate(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.raw)
	count503 := func(n int) int {
		failed := 0
		for range n {
			status, body := call(t, "GET", f.raw+orgPath+"/entries", token, "")
			switch status {
			case 200:
			case 503:
				if errorName(t, body) != "ServiceUnavailableError" {
					t.Fatalf("503 body %s", body)
				}
				failed++
			default:
				t.Fatalf("status %d: %s", status, body)
			}
		}
		return failed
	}
	for _, tt := range []struct {
		rate     float64
		n        int
		min, max int
	}{
		{0, 50, 0, 0},
		{1, 50, 50, 50},
		{0.5, 400, 120, 280}, // binomial, sd 10: far outside is a bug
	} {
		if err := f.sim.SetFaults(Faults{ErrorRate: tt.rate}); err != nil {
			t.Fatal(err)
		}
		if got := count503(tt.n); got < tt.min || got > tt.max {
			t.Errorf("rate %v: %d of %d failed, want %d..%d", tt.rate, got, tt.n, tt.min, tt.max)
		}
	}
}

func TestLoginExcludedFromFaults(t *testing.T) {
	f := newFixture(t, DemoSeed())
	if err := f.sim.SetFaults(Faults{ErrorRate: 1, Latency: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	token := login(t, f.raw) // neither fails nor waits
	if time.Since(start) > time.Second {
		t.Errorf("login took %v despite being excluded", time.Since(start))
	}
	if err := f.sim.SetFaults(Faults{ErrorRate: 1, IncludeLogin: true}); err != nil {
		t.Fatal(err)
	}
	status, _ := call(t, "POST", f.raw+"/auth/login", "", `{"email":"bot@cloudkey.local","password":"demo-password"}`)
	if status != 503 {
		t.Errorf("login with IncludeLogin: %d, want 503", status)
	}
	if status, _ := call(t, "POST", f.raw+"/auth/refreshLogin", token, ""); status != 503 {
		t.Errorf("refresh with IncludeLogin: %d, want 503", status)
	}
}

func TestSetFaultsValidates(t *testing.T) {
	s, err := New(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Faults{
		{Latency: -1},
		{Jitter: -1},
		{ErrorRate: 1.5},
		{ErrorRate: -0.1},
		{OpLatency: map[Op]time.Duration{OpUnlock: -time.Second}},
		{OpLatency: map[Op]time.Duration{numOps: time.Second}},
		{RateLimitRate: 1.01},
		{RateLimitRate: -1},
		{RetryAfter: -time.Second},
		{ErrorRate: 1, ErrorStatus: 404},
		{ErrorRate: 1, ErrorStatus: 200},
		{MaxFaults: -1},
	} {
		if err := s.SetFaults(f); err == nil {
			t.Errorf("SetFaults(%+v) accepted", f)
		}
	}
	want := Faults{Latency: time.Millisecond, OpLatency: map[Op]time.Duration{OpUnlock: time.Second}}
	if err := s.SetFaults(want); err != nil {
		t.Fatal(err)
	}
	want.OpLatency[OpUnlock] = 0 // the simulator kept its own copy
	if got := s.Faults(); got.Latency != time.Millisecond || got.OpLatency[OpUnlock] != time.Second {
		t.Errorf("Faults() = %+v", got)
	}
}

func TestParseOp(t *testing.T) {
	for _, op := range Ops() {
		got, err := ParseOp(strings.ToUpper(op.String()))
		if err != nil || got != op {
			t.Errorf("ParseOp(%s) = %v, %v", op, got, err)
		}
		text, _ := op.MarshalText()
		var back Op
		if err := back.UnmarshalText(text); err != nil || back != op {
			t.Errorf("text round trip of %s = %v, %v", op, back, err)
		}
	}
	if op, err := ParseOp("unlock"); err != nil || op != OpUnlock {
		t.Errorf("ParseOp(unlock) = %v, %v", op, err)
	}
	if _, err := ParseOp("nope"); err == nil {
		t.Error("ParseOp(nope) succeeded")
	}
	if Op(99).String() != "Op(99)" {
		t.Errorf("Op(99) = %s", Op(99))
	}
}

// TestStatusFaults: error and rate-limit faults answer the configured
// status with a Retry-After in whole seconds, and MaxFaults stops them after
// the first n answers.
func TestStatusFaults(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	type answer struct {
		status     int
		name       string
		retryAfter string
	}
	ok := answer{status: 200}
	tests := []struct {
		name   string
		faults Faults
		want   []answer
	}{
		{"500", Faults{ErrorRate: 1, ErrorStatus: 500}, []answer{{500, "InternalServerError", ""}}},
		{"502", Faults{ErrorRate: 1, ErrorStatus: 502, RetryAfter: time.Second}, []answer{{502, "BadGatewayError", ""}}},
		{"503 with retry-after rounded up", Faults{ErrorRate: 1, RetryAfter: 1500 * time.Millisecond}, []answer{{503, "ServiceUnavailableError", "2"}}},
		{"504", Faults{ErrorRate: 1, ErrorStatus: 504}, []answer{{504, "GatewayTimeoutError", ""}}},
		{"429 without retry-after", Faults{RateLimitRate: 1}, []answer{{429, "TooManyRequestsError", ""}}},
		{"429 with retry-after", Faults{RateLimitRate: 1, RetryAfter: 3 * time.Second}, []answer{{429, "TooManyRequestsError", "3"}}},
		{"first two only", Faults{RateLimitRate: 1, MaxFaults: 2}, []answer{
			{429, "TooManyRequestsError", ""}, {429, "TooManyRequestsError", ""}, ok, ok}},
		{"errors before rate limits", Faults{ErrorRate: 1, RateLimitRate: 1, MaxFaults: 1}, []answer{
			{503, "ServiceUnavailableError", ""}, ok}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.want {
				req, _ := http.NewRequest("GET", f.checked+orgPath+"/entries", nil)
				req.Header.Set("Authorization", token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got := answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
				if got.status != 200 {
					got.name = errorName(t, body)
				}
				if got != want {
					t.Errorf("request %d: got %+v, want %+v", i+1, got, want)
				}
			}
		})
	}
}

// TestFaultsJSON: faults travel as JSON (the shape a control client sends)
// with every field, and SetFaults validates what arrives.
func TestFaultsJSON(t *testing.T) {
	in := Faults{
		Latency: time.Millisecond, Jitter: 2 * time.Millisecond,
		OpLatency: map[Op]time.Duration{OpUnlock: time.Second},
		ErrorRate: 0.25, ErrorStatus: 502, RateLimitRate: 0.5, RetryAfter: 2 * time.Second,
		MaxFaults: 3, Hang: true, IncludeLogin: true,
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"errorStatus":502`, `"rateLimitRate":0.5`, `"retryAfter":2000000000`, `"maxFaults":3`, `"opLatency":{"cloudKeyEntryUnlock":1000000000}`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s lacks %s", b, key)
		}
	}
	var out Faults
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip: %+v, want %+v", out, in)
	}
	s, err := New(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	var bad Faults
	if err := json.Unmarshal([]byte(`{"rateLimitRate":2}`), &bad); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFaults(bad); err == nil {
		t.Error("SetFaults accepted a rate-limit rate of 2")
	}
}
