package loadtest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSpectrumFollowsTheNinesAndEndsAtTheMax(t *testing.T) {
	h := newHistogram()
	for v := int64(1); v <= 10_000; v++ {
		_ = h.RecordValue(v)
	}
	pts := spectrum(h)
	last := pts[len(pts)-1]
	if last.Percentile != 100 || last.Micros != h.Max() {
		t.Errorf("last point %+v, want the maximum at 100%%", last)
	}
	decades := 0
	for i, p := range pts {
		if i > 0 && (p.Percentile <= pts[i-1].Percentile || p.Micros < pts[i-1].Micros) {
			t.Errorf("point %d %+v does not follow %+v", i, p, pts[i-1])
		}
		for _, want := range []float64{0, 90, 99, 99.9, 99.99} {
			if d := p.Percentile - want; d > -1e-9 && d < 1e-9 {
				decades++
			}
		}
	}
	// 10,000 values reach 1/(1-p) = 10^4: 0%, 90%, 99%, 99.9%, 99.99%.
	if decades != 5 {
		t.Errorf("%d decade points (0%%, 90%%, 99%% ...), want 5", decades)
	}
	if got := spectrum(newHistogram()); got != nil {
		t.Errorf("empty histogram: %v", got)
	}
}

func TestNinesLabel(t *testing.T) {
	for k, want := range []string{"0%", "90%", "99%", "99.9%", "99.99%"} {
		if got := ninesLabel(k); got != want {
			t.Errorf("ninesLabel(%d) = %q, want %q", k, got, want)
		}
	}
}

func TestRESTErrorsMapBackToGRPCCodes(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{http.StatusNotFound, `{"code":5,"message":"user not found","details":[]}`, "NotFound"},
		{http.StatusForbidden, `{"code":7}`, "PermissionDenied"},
		{http.StatusServiceUnavailable, `upstream connect error`, "Unavailable"},
		{http.StatusGatewayTimeout, ``, "DeadlineExceeded"},
		{http.StatusUnauthorized, `{}`, "Unauthenticated"},
		{http.StatusTeapot, ``, "HTTP I'm a teapot"},
	}
	for _, tt := range tests {
		if got := restErrCode(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("restErrCode(%d, %q) = %q, want %q", tt.status, tt.body, got, tt.want)
		}
	}
}

func TestRatios(t *testing.T) {
	base := &ScenarioReport{Scenario: "noop", Kind: KindNoop, Transport: GRPC, Throughput: 1000, Latency: Latency{P99: 100}}
	list := &ScenarioReport{Scenario: "list", Kind: KindList, Transport: GRPC, Throughput: 400, Latency: Latency{P99: 300}}
	rest := &ScenarioReport{Scenario: "list:rest", Kind: KindList, Transport: REST, Throughput: 200, Latency: Latency{P99: 500}}
	all := []*ScenarioReport{base, list, rest}
	r := computeRatios(base, all, nil)
	if len(r) != 2 || r[0] != (Ratio{"list", 0.4, 3}) || r[1] != (Ratio{"list:rest", 0.2, 5}) {
		t.Errorf("ratios = %+v", r)
	}
	floor := &ScenarioReport{Scenario: "noop-http", Kind: KindNoopHTTP, Transport: GRPC, Throughput: 500, Latency: Latency{P99: 200}}
	unlock := &ScenarioReport{Scenario: "unlock", Kind: KindUnlock, Transport: GRPC, Throughput: 250, Latency: Latency{P99: 400}}
	withFloor := []*ScenarioReport{base, floor, list, unlock}
	if r := computeRatios(floor, withFloor, func(s *ScenarioReport) bool { return s.Kind == KindUnlock }); len(r) != 1 || r[0] != (Ratio{"unlock", 0.5, 2}) {
		t.Errorf("ratios to noop-http = %+v, want unlock only", r)
	}
	redisFloor := &ScenarioReport{Scenario: "noop-redis", Kind: KindNoopRedis, Transport: GRPC, Throughput: 800, Latency: Latency{P99: 100}}
	if r := computeRatios(redisFloor, []*ScenarioReport{base, redisFloor, list, unlock}, func(s *ScenarioReport) bool { return s.Kind == KindList }); len(r) != 1 || r[0] != (Ratio{"list", 0.5, 3}) {
		t.Errorf("ratios to noop-redis = %+v, want list only", r)
	}
	if got := restVsGRPC(all); len(got) != 1 || got["list:rest"] != 0.5 {
		t.Errorf("REST vs gRPC = %v, want list:rest 0.5", got)
	}
}

func TestCrossVsMultiPairsByTransport(t *testing.T) {
	multi := &ScenarioReport{Scenario: "unlock-multi", Kind: KindUnlockMulti, Transport: GRPC, Throughput: 1000, Latency: Latency{P99: 100}}
	cross := &ScenarioReport{Scenario: "unlock-cross", Kind: KindUnlockCross, Transport: GRPC, Throughput: 800, Latency: Latency{P99: 150}}
	crossREST := &ScenarioReport{Scenario: "unlock-cross:rest", Kind: KindUnlockCross, Transport: REST, Throughput: 500, Latency: Latency{P99: 200}}
	list := &ScenarioReport{Scenario: "list", Kind: KindList, Transport: GRPC, Throughput: 5000, Latency: Latency{P99: 50}}
	// No unlock-multi over REST: unlock-cross:rest has nothing to pair with.
	got := crossVsMulti([]*ScenarioReport{list, multi, cross, crossREST})
	if len(got) != 1 || got[0] != (Ratio{"unlock-cross", 0.8, 1.5}) {
		t.Errorf("cross vs multi = %+v, want unlock-cross 0.8 1.5", got)
	}
	if got := crossVsMulti([]*ScenarioReport{cross, crossREST}); got != nil {
		t.Errorf("without unlock-multi: %+v, want none", got)
	}
	rep := &Report{Settings: ReportSettings{UnlockEntries: 2}, Scenarios: []*ScenarioReport{multi, cross}, CrossVsMulti: []Ratio{{"unlock-cross", 0.8, 1.5}}}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"unlock-cross / unlock-multi", "vs 2 Openpath doors", "80.0%", "1.50x"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

func TestKisiUserRateWarning(t *testing.T) {
	cross := &ScenarioReport{Scenario: "unlock-cross", Kind: KindUnlockCross, Throughput: 3000}
	if w := kisiUserRateWarning(cross, 10_000); w != "" {
		t.Errorf("0.3 per user per second: warned %q", w)
	}
	if w := kisiUserRateWarning(cross, 200); !strings.Contains(w, "15.0 unlocks per second per user") || !strings.Contains(w, "--users") {
		t.Errorf("15 per user per second: warning %q", w)
	}
	multi := &ScenarioReport{Scenario: "unlock-multi", Kind: KindUnlockMulti, Throughput: 3000}
	if w := kisiUserRateWarning(multi, 200); w != "" {
		t.Errorf("unlock-multi (no Kisi door): warned %q", w)
	}
}

func TestOwnLatencySubtractsTheFloorFromOKUnlocksOnly(t *testing.T) {
	const floor = 20 * time.Millisecond
	tests := []struct {
		name    string
		latency time.Duration
		o       Outcome
		want    int64 // µs
	}{
		{"unlock OK", 20_500 * time.Microsecond, Outcome{Method: MethodUnlock, UnlockOK: 1}, 500},
		{"unlock OK, part of five", 21 * time.Millisecond, Outcome{Method: MethodUnlock, UnlockOK: 2, UnlockNotOK: 3}, 1000},
		{"unlock not OK: charged in full", 21 * time.Millisecond, Outcome{Method: MethodUnlock, UnlockNotOK: 1, Err: "unlock result X"}, 21000},
		{"list: charged in full", 300 * time.Microsecond, Outcome{Method: MethodListEntries}, 300},
		{"below the floor clamps to 1 µs", 10 * time.Millisecond, Outcome{Method: MethodUnlock, UnlockOK: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(floor)
			rec.record(0, tt.latency, -1, tt.o)
			p := rec.result()
			if got := p.own.Max(); p.own.TotalCount() != 1 || !p.own.ValuesAreEquivalent(got, tt.want) {
				t.Errorf("own = %d µs (%d values), want %d", got, p.own.TotalCount(), tt.want)
			}
			if got := p.hist.Max(); !p.hist.ValuesAreEquivalent(got, tt.latency.Microseconds()) {
				t.Errorf("total = %d µs, want %d", got, tt.latency.Microseconds())
			}
		})
	}
}

func TestPrewarmWarning(t *testing.T) {
	self, external := Defaults(), Defaults()
	external.Self = false
	long := Defaults()
	long.AccountTTL = 10 * time.Minute
	tests := []struct {
		name string
		cfg  Config
		took time.Duration
		warn bool
	}{
		{"quick prewarm", self, 5 * time.Second, false},
		{"longer than the default account TTL", self, 56 * time.Second, true},
		{"shorter than the account TTL given", long, 56 * time.Second, false},
		{"longer than the account TTL given", long, 11 * time.Minute, true},
		{"an external target's TTL is unknown", external, time.Hour, false},
	}
	for _, tt := range tests {
		w := prewarmWarning(tt.cfg, tt.took, 100000)
		if (w != "") != tt.warn {
			t.Errorf("%s: warning %q, want one: %v", tt.name, w, tt.warn)
		}
		if tt.warn && !strings.Contains(w, "--account-ttl") {
			t.Errorf("%s: warning %q does not say what to do", tt.name, w)
		}
	}
}

func TestRedactedURLHidesPassword(t *testing.T) {
	for _, u := range []string{
		"redis://:s3cret@10.0.0.1:6379/0",
		"rediss://user:s3cret@redis.example.com:6380/1",
		"redis-cluster://:s3cret@h1:7000,h2:7001",
		"redis://%zz:s3cret@h/0",
	} {
		if got := redactedURL(u); strings.Contains(got, "s3cret") {
			t.Errorf("redactedURL(%q) = %q: shows the password", u, got)
		}
	}
}
