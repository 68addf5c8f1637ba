package loadtest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/selftarget"
	"github.com/cloudkey/cloudkey/loadtest"
)

// The smoke tests run the in-process target the command runs
// (selftarget.Start): they are an external test package, as selftarget
// imports loadtest.

// smokeConfig is a short, low-rate run against an in-process cloudkey
// with a small generated organisation and a real redis-server.
func smokeConfig(t *testing.T, scenarios string) loadtest.Config {
	t.Helper()
	cfg := loadtest.Defaults()
	var err error
	if cfg.Scenarios, err = loadtest.ParseScenarios(scenarios, loadtest.GRPC); err != nil {
		t.Fatal(err)
	}
	cfg.RedisURL = redistest.Start(t).URL()
	cfg.Rate = 200
	cfg.Duration = time.Second
	cfg.Warmup = 200 * time.Millisecond
	cfg.Users, cfg.EntriesPerUser, cfg.UnlockEntries = 40, 3, 3
	cfg.Conns = 2
	dir := t.TempDir()
	cfg.JSONPath = filepath.Join(dir, "report.json")
	cfg.PlotPath = filepath.Join(dir, "latency.png")
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.StartTarget = selftarget.Start // as the command does
	return cfg
}

// Every scenario, over gRPC and REST: one run per transport, as a run
// measures its scenarios one after the other against one cloudkey.
func TestSmokeEveryScenarioOpenLoop(t *testing.T) {
	for _, tr := range []loadtest.Transport{loadtest.GRPC, loadtest.REST} {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			cfg := smokeConfig(t, "me,list,unlock,unlock-multi,mix")
			for i := range cfg.Scenarios {
				cfg.Scenarios[i].Transport = tr
			}
			if tr == loadtest.REST {
				cfg.PlotPath = filepath.Join(t.TempDir(), "latency.svg") // the other format
			}
			rep := runAndWrite(t, cfg)
			if len(rep.Scenarios) != 5 {
				t.Fatalf("%d scenario reports, want 5", len(rep.Scenarios))
			}
			for _, s := range rep.Scenarios {
				checkSane(t, s)
				checkOpenLoop(t, s, cfg)
			}
		})
	}
}

// checkOpenLoop checks an open-loop smoke scenario against the in-process
// simulator's counts.
func checkOpenLoop(t *testing.T, s *loadtest.ScenarioReport, cfg loadtest.Config) {
	t.Helper()
	// Open loop at 200 rps for 1 s schedules exactly 200 sends.
	if want := int64(cfg.Rate * cfg.Duration.Seconds()); s.Sent+s.Dropped != want {
		t.Errorf("%s: sent %d + dropped %d, want %d scheduled", s.Scenario, s.Sent, s.Dropped, want)
	}
	if s.SendLag == nil {
		t.Errorf("%s: open loop without send lag figures", s.Scenario)
	}
	if s.Upstream == nil {
		t.Fatalf("%s: no upstream call counts from the in-process simulator", s.Scenario)
	}
	if got := s.Upstream["cloudKeyEntryUnlock"] + s.Upstream["kisi.unlockLock"]; got != s.UnlockOK {
		t.Errorf("%s: simulator unlock calls = %d, successful unlock results = %d; want equal", s.Scenario, got, s.UnlockOK)
	}
	switch s.Kind {
	case loadtest.KindUnlock, loadtest.KindMix:
		if s.Kind == loadtest.KindUnlock && s.UnlockOK != s.OK {
			t.Errorf("%s: %d entries opened by %d calls, want 1 per call", s.Scenario, s.UnlockOK, s.OK)
		}
		if s.UnlockOK == 0 {
			t.Errorf("%s: unlocked nothing", s.Scenario)
		}
	case loadtest.KindUnlockMulti:
		if s.UnlockOK != int64(cfg.UnlockEntries)*s.OK {
			t.Errorf("%s: %d entries opened by %d calls, want %d per call", s.Scenario, s.UnlockOK, s.OK, cfg.UnlockEntries)
		}
		if n := s.Upstream["kisi.unlockLock"]; n != 0 {
			t.Errorf("%s: %d Kisi unlocks, want none (its doors are on Openpath)", s.Scenario, n)
		}
	case loadtest.KindUnlockCross:
		// One Openpath door and one Kisi door per call.
		if s.UnlockOK != 2*s.OK {
			t.Errorf("%s: %d entries opened by %d calls, want 2 per call", s.Scenario, s.UnlockOK, s.OK)
		}
		if op, k := s.Upstream["cloudKeyEntryUnlock"], s.Upstream["kisi.unlockLock"]; op != s.OK || k != s.OK {
			t.Errorf("%s: %d calls opened %d Openpath and %d Kisi doors, want one of each per call", s.Scenario, s.OK, op, k)
		}
	default:
		if s.UnlockOK != 0 {
			t.Errorf("%s: %d unlock results", s.Scenario, s.UnlockOK)
		}
	}
	// The simulator injects no delay here: own latency is the total.
	if s.Own == nil || *s.Own != s.Latency {
		t.Errorf("%s: own latency %+v, want the total %+v (no simulated delay)", s.Scenario, s.Own, s.Latency)
	}
	if s.Kind != loadtest.KindMe && s.Kind != loadtest.KindList && s.UpstreamLatency["cloudKeyEntryUnlock"].P50 <= 0 {
		t.Errorf("%s: no simulator time for the unlocks: %+v", s.Scenario, s.UpstreamLatency)
	}
	if s.Kind == loadtest.KindMix && len(s.Methods) < 2 {
		t.Errorf("mix: requests by method %v, want a mix", s.Methods)
	}
}

// unlock-cross opens one Openpath and one Kisi door per call, over gRPC
// and REST, against the in-process cloudkey and its Kisi simulator; its
// throughput is compared with unlock-multi's (two Openpath doors).
func TestSmokeUnlockCross(t *testing.T) {
	for _, tr := range []loadtest.Transport{loadtest.GRPC, loadtest.REST} {
		// Not parallel: each run starts cloudkey and two simulators, and a
		// cold prewarm of both systems at once, under the race detector
		// beside the other packages' tests, could trip their breakers.
		t.Run(string(tr), func(t *testing.T) {
			cfg := smokeConfig(t, "unlock-multi,unlock-cross")
			for i := range cfg.Scenarios {
				cfg.Scenarios[i].Transport = tr
			}
			// Enough users that none nears Kisi's 5 requests per second
			// per user (cloudkey's Kisi client keeps it): 20 rps over 30.
			cfg.Users, cfg.UnlockEntries, cfg.Rate = 30, 2, 20
			// Each user's first listing creates its Kisi login: under the
			// race detector on a loaded machine, 64 of them at once in the
			// prewarm can take longer than the default 5 s.
			cfg.Timeout = 20 * time.Second
			var kisi *kisisim.Server
			cfg.StartTarget = func(ctx context.Context, tc loadtest.TargetConfig) (*loadtest.Target, error) {
				if tc.KisiSeed == nil {
					return nil, errors.New("unlock-cross without a Kisi seed")
				}
				tgt, err := selftarget.Start(ctx, tc)
				if err == nil {
					kisi = tgt.KisiSim
				}
				return tgt, err
			}
			rep := runAndWrite(t, cfg)
			if kisi == nil {
				t.Fatal("the target has no Kisi simulator")
			}
			if len(rep.Scenarios) != 2 {
				t.Fatalf("%d scenario reports, want 2", len(rep.Scenarios))
			}
			for _, s := range rep.Scenarios {
				checkSane(t, s)
				checkOpenLoop(t, s, cfg)
			}
			cross := rep.Scenarios[1]
			if cross.Kind != loadtest.KindUnlockCross || rep.Target.KisiSimURL != kisi.URL {
				t.Fatalf("second scenario %s, Kisi simulator %q; want unlock-cross on %s", cross.Scenario, rep.Target.KisiSimURL, kisi.URL)
			}
			if len(rep.CrossVsMulti) != 1 || rep.CrossVsMulti[0].Scenario != cross.Scenario || !(rep.CrossVsMulti[0].Throughput > 0) {
				t.Errorf("cross vs multi = %+v, want one positive ratio for %s", rep.CrossVsMulti, cross.Scenario)
			}
			checkKisiUnlocks(t, kisi, cross, cfg)
			var text strings.Builder
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"unlock-cross / unlock-multi", "kisi.unlockLock", "Kisi: the simulator at " + kisi.URL} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("text report lacks %q:\n%s", want, text.String())
				}
			}
		})
	}
}

// checkKisiUnlocks checks the Kisi simulator's record: every unlock-cross
// call (warm-up included) opened, with the resident's own login, a door
// of that resident's.
func checkKisiUnlocks(t *testing.T, kisi *kisisim.Server, cross *loadtest.ScenarioReport, cfg loadtest.Config) {
	t.Helper()
	unlocks := kisi.Unlocks()
	if n := kisi.Calls(kisisim.OpUnlock); int64(len(unlocks)) != n || n < cross.OK {
		t.Errorf("Kisi: %d unlocks recorded, %d unlock calls; want all of them OK and at least the %d measured calls", len(unlocks), n, cross.OK)
	}
	seed := kisisim.GenerateSeed(cfg.Users, cfg.EntriesPerUser) // what the harness gave the target
	may := map[string]map[int]bool{}
	for _, u := range seed.Orgs[0].Users {
		may[u.Email] = map[int]bool{}
		for _, a := range u.Access {
			may[u.Email][a.LockID] = true
		}
	}
	users := map[string]bool{}
	for _, u := range unlocks {
		if u.ByOrgKey || !may[u.Email][u.LockID] {
			t.Fatalf("Kisi unlock %+v: want a door of the user's, opened with the user's own login", u)
		}
		users[u.Email] = true
	}
	if len(users) < 2 {
		t.Errorf("Kisi unlocks by %d users, want the load spread over many", len(users))
	}
}

func TestSmokeClosedLoopWithBaseline(t *testing.T) {
	cfg := smokeConfig(t, "list,unlock")
	cfg.Baseline = true
	cfg.Concurrency = 4
	cfg.Requests = 300 // bound the work: closed loop runs flat out
	cfg.Rounds = 2     // interleaved: noop, list, unlock, noop, list, unlock
	rep := runAndWrite(t, cfg)
	var names []string
	for _, s := range rep.Scenarios {
		names = append(names, s.Scenario)
		checkSane(t, s)
		if s.Mode != "closed loop" || s.Concurrency != 4 {
			t.Errorf("%s: mode %q concurrency %d", s.Scenario, s.Mode, s.Concurrency)
		}
		if s.Completed > 300 {
			t.Errorf("%s: %d requests, over --requests 300", s.Scenario, s.Completed)
		}
	}
	if got := strings.Join(names, ","); got != "noop,list,unlock" {
		t.Fatalf("scenarios = %s, want the baseline first: noop,list,unlock", got)
	}
	if rep.Scenarios[0].Upstream != nil {
		t.Error("the baseline has upstream call counts")
	}
	if len(rep.Ratios) != 2 {
		t.Fatalf("ratios = %+v, want list and unlock", rep.Ratios)
	}
	for _, r := range rep.Ratios {
		if !(r.Throughput > 0) || !(r.P99 > 0) {
			t.Errorf("ratio %+v is not positive", r)
		}
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"in 2 interleaved rounds", "ratio to the no-op gRPC baseline", "upstream (simulator) calls", "google.golang.org/grpc"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

// With a simulated upstream delay, each unlock's own latency is its total
// minus the delay, and the simulator's time covers the delay.
func TestSmokeOwnLatencyWithSimLatency(t *testing.T) {
	const delay = 20 * time.Millisecond
	cfg := smokeConfig(t, "unlock")
	cfg.SimLatency = delay
	cfg.Rate, cfg.Duration = 50, 500*time.Millisecond
	rep := runAndWrite(t, cfg)
	s := rep.Scenarios[0]
	checkSane(t, s)
	if s.Own == nil || s.OwnFloorMicros != delay.Microseconds() {
		t.Fatalf("own latency %+v floor %d µs, want a report with the %v floor", s.Own, s.OwnFloorMicros, delay)
	}
	// Every call was an OK unlock, so every value moved down by the
	// delay, within the histograms' buckets (3 significant digits: up to
	// 1/1024 of the value each, for the total and for the own latency).
	for _, p := range []struct {
		name       string
		own, total int64
	}{{"p50", s.Own.P50, s.Latency.P50}, {"max", s.Own.Max, s.Latency.Max}} {
		tol := p.total/500 + 2
		if diff := p.total - delay.Microseconds() - p.own; diff < -tol || diff > tol {
			t.Errorf("own %s = %d µs, total %d µs: want total minus %d µs", p.name, p.own, p.total, delay.Microseconds())
		}
	}
	if u := s.UpstreamLatency["cloudKeyEntryUnlock"]; u.Min < delay.Microseconds() {
		t.Errorf("simulator time per unlock %+v: want at least the %v delay", u, delay)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "cloudkey's own latency") {
		t.Errorf("text report lacks the own latency:\n%s", text.String())
	}
}

func TestBaselineAlone(t *testing.T) {
	cfg := loadtest.Defaults()
	cfg.Scenarios = []loadtest.Scenario{{Kind: loadtest.KindNoop, Transport: loadtest.GRPC}, {Kind: loadtest.KindNoopHTTP, Transport: loadtest.GRPC},
		{Kind: loadtest.KindNoopRedis, Transport: loadtest.GRPC}}
	cfg.Self = false                        // nothing but the baseline is started
	cfg.RedisURL = redistest.Start(t).URL() // noop-redis reads it
	cfg.Rate, cfg.Duration, cfg.Warmup = 200, 500*time.Millisecond, 0
	rep, err := loadtest.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Target.Kind != "baseline only" || rep.Target.BaselineAddr == "" {
		t.Errorf("target = %+v", rep.Target)
	}
	if len(rep.Scenarios) != 3 {
		t.Fatalf("%d scenarios, want noop, noop-http and noop-redis", len(rep.Scenarios))
	}
	for _, sc := range rep.Scenarios {
		checkSane(t, sc)
	}
	if m := rep.Scenarios[1].Methods; len(m) != 1 || m[loadtest.MethodNoopHTTP] == 0 {
		t.Errorf("noop-http methods = %+v, want NoopHTTP only", m)
	}
	if m := rep.Scenarios[2].Methods; len(m) != 1 || m[loadtest.MethodNoopRedis] == 0 || rep.Scenarios[2].Errors != 0 {
		t.Errorf("noop-redis methods = %+v, %d errors; want NoopRedis only, no error", m, rep.Scenarios[2].Errors)
	}
}

// runAndWrite runs cfg and writes its JSON and plot as the command does.
func runAndWrite(t *testing.T, cfg loadtest.Config) *loadtest.Report {
	t.Helper()
	rep, err := loadtest.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(cfg.JSONPath); err != nil {
		t.Fatal(err)
	}
	if err := rep.WritePlot(cfg.PlotPath); err != nil {
		t.Fatal(err)
	}
	back, err := loadtest.ReadReport(cfg.JSONPath)
	if err != nil {
		t.Fatalf("the JSON report does not parse: %v", err)
	}
	if len(back.Scenarios) != len(rep.Scenarios) || back.Env.GoVersion == "" {
		t.Errorf("the JSON report lost data: %d scenarios, go %q", len(back.Scenarios), back.Env.GoVersion)
	}
	if fi, err := os.Stat(cfg.PlotPath); err != nil || fi.Size() == 0 {
		t.Errorf("plot %s not written: %v", cfg.PlotPath, err)
	}
	return rep
}

// checkSane checks what every measured scenario must satisfy.
func checkSane(t *testing.T, s *loadtest.ScenarioReport) {
	t.Helper()
	if s.Errors != 0 {
		t.Errorf("%s: %d errors: %+v", s.Scenario, s.Errors, s.ErrorCodes)
	}
	if s.OK <= 0 || s.Completed != s.OK+s.Errors || s.Sent < s.Completed {
		t.Errorf("%s: sent %d completed %d ok %d errors %d", s.Scenario, s.Sent, s.Completed, s.OK, s.Errors)
	}
	l := s.Latency
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s: percentiles not monotone: %+v", s.Scenario, l)
	}
	for i := 1; i < len(s.Percentiles); i++ {
		if s.Percentiles[i].Micros < s.Percentiles[i-1].Micros {
			t.Errorf("%s: percentile spectrum decreases at %v", s.Scenario, s.Percentiles[i])
		}
	}
	if !(s.Throughput > 0) {
		t.Errorf("%s: throughput %v", s.Scenario, s.Throughput)
	}
}

// TestSmokeSimulatorApart runs against a simulator the harness did not
// start (--access-url): the unlocks reach it, and the report says so.
func TestSmokeSimulatorApart(t *testing.T) {
	cfg := smokeConfig(t, "list,unlock")
	srv, err := sim.Start(sim.GenerateSeed(cfg.Users, cfg.EntriesPerUser))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg.AccessURL = srv.URL
	rep := runAndWrite(t, cfg)
	if rep.Target.AccessURL != srv.URL {
		t.Errorf("target access URL = %q, want %q", rep.Target.AccessURL, srv.URL)
	}
	var unlocked int64
	for _, s := range rep.Scenarios {
		checkSane(t, s)
		unlocked += s.UnlockOK
	}
	if got := srv.Sim.Calls(sim.OpUnlock); got < unlocked || unlocked == 0 {
		t.Errorf("the simulator apart saw %d unlocks; the report has %d successful", got, unlocked)
	}
}
