package loadtest

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is a whole run: settings, target, machine, and one
// ScenarioReport per measured scenario (the baseline first, when run).
type Report struct {
	Started   time.Time         `json:"started"`
	Settings  ReportSettings    `json:"settings"`
	Target    TargetInfo        `json:"target"`
	Env       Env               `json:"env"`
	Scenarios []*ScenarioReport `json:"scenarios"`
	// Ratios compare each scenario with the baseline of the same run;
	// empty without --baseline.
	Ratios []Ratio `json:"ratios_to_baseline,omitempty"`
	// RatiosToNoopHTTP compare each one-entry Unlock scenario with the
	// noop-http scenario of the same run (the no-op RPC plus one
	// loopback HTTP call): what cloudkey costs beyond the floor of a
	// call that reaches an access system. Empty unless noop-http ran.
	RatiosToNoopHTTP []Ratio `json:"ratios_to_noop_http,omitempty"`
	// RatiosToNoopRedis compare each ListEntries scenario with the
	// noop-redis scenario of the same run (the no-op RPC plus one
	// pipelined Redis read shaped as the cache's): the floor under a list
	// whose user is not in process memory. Empty unless noop-redis ran.
	RatiosToNoopRedis []Ratio `json:"ratios_to_noop_redis,omitempty"`
	// CrossVsMulti divides each unlock-cross scenario's throughput and p99
	// (one Openpath and one Kisi door per call) by those of unlock-multi
	// over the same transport in the same run (UnlockEntries Openpath
	// doors per call: compare with --unlock-entries 2). Empty unless both
	// ran.
	CrossVsMulti []Ratio `json:"ratios_unlock_cross_to_multi,omitempty"`
	// RESTvsGRPC divides each REST scenario's throughput by the same
	// scenario's over gRPC, when both were measured.
	RESTvsGRPC map[string]float64 `json:"rest_vs_grpc_throughput,omitempty"`
	Warnings   []string           `json:"warnings,omitempty"`
}

// ReportSettings echo the run's configuration.
type ReportSettings struct {
	Mode           string  `json:"mode"` // "open loop" or "closed loop"
	Rate           float64 `json:"rate_rps,omitempty"`
	Concurrency    int     `json:"concurrency,omitempty"`
	Duration       string  `json:"duration"`
	Rounds         int     `json:"rounds"`
	Warmup         string  `json:"warmup"`
	Requests       int64   `json:"requests_limit,omitempty"`
	Timeout        string  `json:"timeout"`
	MaxInflight    int     `json:"max_inflight,omitempty"`
	Workers        int     `json:"workers,omitempty"`
	Conns          int     `json:"grpc_conns"`
	Users          int     `json:"users"`
	EntriesPerUser int     `json:"entries_per_user"`
	UsersFrom      string  `json:"users_from"`
	Properties     int     `json:"properties,omitempty"`
	UnlockEntries  int     `json:"unlock_entries"`
	Prewarm        bool    `json:"prewarm"`
}

// TargetInfo describes what was measured.
type TargetInfo struct {
	// Kind is "in-process" (--self), "external", or "baseline only".
	Kind     string `json:"kind"`
	GRPCAddr string `json:"grpc_addr,omitempty"`
	HTTPAddr string `json:"http_addr,omitempty"`
	// Redis describes the in-process cloudkey's Redis.
	Redis            string `json:"redis,omitempty"`
	BaselineAddr     string `json:"baseline_addr,omitempty"`
	BaselineExternal bool   `json:"baseline_external,omitempty"`
	SimLatency       string `json:"sim_latency,omitempty"`
	// AccessURL is the simulator run apart (--access-url), if any.
	AccessURL string `json:"access_url,omitempty"`
	// KisiSimURL is the in-process cloudkey's embedded Kisi simulator
	// (unlock-cross), if any: the property's second connection.
	KisiSimURL string `json:"kisi_sim_url,omitempty"`
}

// ScenarioReport is one scenario's measured phase.
type ScenarioReport struct {
	Scenario    string    `json:"scenario"` // as on the command line: "list:rest"
	Kind        Kind      `json:"kind"`
	Transport   Transport `json:"transport"`
	Mode        string    `json:"mode"`
	TargetRate  float64   `json:"target_rps,omitempty"`
	Concurrency int       `json:"concurrency,omitempty"`
	Started     time.Time `json:"started"`
	// ElapsedSeconds runs from the first send to the last answer;
	// SendSeconds to the last send.
	ElapsedSeconds float64 `json:"elapsed_s"`
	SendSeconds    float64 `json:"send_s"`

	Sent      int64 `json:"sent"`
	Completed int64 `json:"completed"`
	OK        int64 `json:"ok"`
	Errors    int64 `json:"errors"`
	// Late sends started more than 1 ms after their intended start;
	// Dropped ones were never sent (--max-inflight outstanding).
	Late    int64 `json:"late"`
	Dropped int64 `json:"dropped"`
	// SendRate is Sent/SendSeconds; Throughput is OK/ElapsedSeconds.
	SendRate   float64 `json:"send_rps"`
	Throughput float64 `json:"throughput_rps"`

	Latency Latency `json:"latency_us"`
	// SendLag is, in open loop, how long after its intended start each
	// request was actually sent: the harness's own precision (and any
	// queueing in it when --workers limits the senders).
	SendLag *Latency `json:"send_lag_us,omitempty"`
	// Service is, in open loop, latency timed from each request's actual
	// start, as tools without coordinated-omission correction time it;
	// Latency minus Service is what the correction adds.
	Service *Latency `json:"service_latency_us,omitempty"`
	// Own is cloudkey's own latency, in-process target only: Latency
	// minus the simulator's injected delay (OwnFloorMicros, --sim-latency)
	// for each Unlock answered with an OK result, since the access system
	// held each of those at least that long; every other call counts in
	// full. With a zero-latency simulator it equals Latency. The
	// simulator's own handling time stays in it, so it bounds cloudkey's
	// share from above.
	Own            *Latency `json:"own_latency_us,omitempty"`
	OwnFloorMicros int64    `json:"own_floor_us,omitempty"`
	// UpstreamLatency is, in-process target only, the simulator's time per
	// request by operation, from its handler's start to its answer
	// (injected delay included), during the measured phase.
	UpstreamLatency map[string]Latency `json:"upstream_server_latency_us,omitempty"`
	Percentiles     []PercentilePoint  `json:"percentile_spectrum"`
	Methods         map[string]int64   `json:"requests_by_method"`
	ErrorCodes      []ErrorCount       `json:"errors_by_code,omitempty"`
	// UnlockOK and UnlockNotOK count the entries of Unlock answers.
	UnlockOK    int64 `json:"unlock_results_ok,omitempty"`
	UnlockNotOK int64 `json:"unlock_results_not_ok,omitempty"`
	// Upstream counts the simulator's calls per operation during the
	// measured phase (in-process target only).
	Upstream map[string]int64 `json:"upstream_calls,omitempty"`
	// CPUSeconds is this process's CPU time during the measured phase:
	// harness alone for an external target, harness and server for --self.
	CPUSeconds float64 `json:"process_cpu_s"`
}

// Latency is a summary in microseconds, from the HDR histogram (values
// are the top of their bucket: within 0.1%).
type Latency struct {
	Min  int64   `json:"min"`
	Mean float64 `json:"mean"`
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p99_9"`
	Max  int64   `json:"max"`
}

// PercentilePoint is one point of the latency-by-percentile curve.
type PercentilePoint struct {
	Percentile float64 `json:"percentile"`
	Micros     int64   `json:"latency_us"`
}

// ErrorCount is how many requests of a method failed with a code.
type ErrorCount struct {
	Method string `json:"method"`
	Code   string `json:"code"`
	Count  int64  `json:"count"`
}

// Ratio is a scenario's throughput and p99 divided by the baseline's.
type Ratio struct {
	Scenario   string  `json:"scenario"`
	Throughput float64 `json:"throughput"`
	P99        float64 `json:"p99"`
}

func newScenarioReport(s Settings, started time.Time, p phase, cpu time.Duration) *ScenarioReport {
	r := &ScenarioReport{
		Mode:           "open loop",
		TargetRate:     s.Rate,
		Started:        started,
		ElapsedSeconds: p.elapsed.Seconds(),
		SendSeconds:    p.sendElapsed.Seconds(),
		Sent:           p.sent,
		Completed:      p.ok + p.errs,
		OK:             p.ok,
		Errors:         p.errs,
		Late:           p.late,
		Dropped:        p.dropped,
		Latency:        summarize(p.hist),
		Percentiles:    spectrum(p.hist),
		Methods:        p.methods,
		UnlockOK:       p.unlockOK,
		UnlockNotOK:    p.unlockBad,
		CPUSeconds:     cpu.Seconds(),
	}
	if s.Concurrency > 0 {
		r.Mode, r.TargetRate, r.Concurrency = "closed loop", 0, s.Concurrency
	} else {
		lag, svc := summarize(p.lag), summarize(p.service)
		r.SendLag, r.Service = &lag, &svc
	}
	if r.SendSeconds > 0 {
		r.SendRate = float64(r.Sent) / r.SendSeconds
	}
	if r.ElapsedSeconds > 0 {
		r.Throughput = float64(r.OK) / r.ElapsedSeconds
	}
	for k, n := range p.errors {
		r.ErrorCodes = append(r.ErrorCodes, ErrorCount{Method: k.method, Code: k.code, Count: n})
	}
	sort.Slice(r.ErrorCodes, func(i, j int) bool {
		a, b := r.ErrorCodes[i], r.ErrorCodes[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Method+a.Code < b.Method+b.Code
	})
	return r
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Min: h.Min(), Mean: h.Mean(),
		P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), Max: h.Max(),
	}
}

// spectrum samples the latency at percentiles spaced evenly on the
// "nines" scale (ten per decade of 1/(1-p): 0, 20.6, 36.9 ... 90, 99,
// 99.9 ...), as HdrHistogram's plots do, up to where the sample still
// has data (1/(1-p) <= count), then the maximum.
func spectrum(h *hdrhistogram.Histogram) []PercentilePoint {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	var out []PercentilePoint
	for k := 0; k <= 70; k++ {
		inv := math.Pow(10, float64(k)/10) // 1/(1-p)
		if inv > float64(n) {
			break
		}
		p := 100 * (1 - 1/inv)
		out = append(out, PercentilePoint{Percentile: p, Micros: h.ValueAtQuantile(p)})
	}
	return append(out, PercentilePoint{Percentile: 100, Micros: h.Max()})
}

// computeRatios divides the figures of every scenario that want
// accepts (nil: all) by the baseline's.
func computeRatios(baseline *ScenarioReport, scenarios []*ScenarioReport, want func(*ScenarioReport) bool) []Ratio {
	var out []Ratio
	for _, s := range scenarios {
		if s == baseline || (want != nil && !want(s)) {
			continue
		}
		r := Ratio{Scenario: s.Scenario}
		if baseline.Throughput > 0 {
			r.Throughput = s.Throughput / baseline.Throughput
		}
		if baseline.Latency.P99 > 0 {
			r.P99 = float64(s.Latency.P99) / float64(baseline.Latency.P99)
		}
		out = append(out, r)
	}
	return out
}

// crossVsMulti pairs each unlock-cross scenario with unlock-multi over
// the same transport.
func crossVsMulti(scenarios []*ScenarioReport) []Ratio {
	multi := map[Transport]*ScenarioReport{}
	for _, s := range scenarios {
		if s.Kind == KindUnlockMulti {
			multi[s.Transport] = s
		}
	}
	var out []Ratio
	for _, s := range scenarios {
		if m := multi[s.Transport]; s.Kind == KindUnlockCross && m != nil {
			out = append(out, computeRatios(m, []*ScenarioReport{s}, nil)...)
		}
	}
	return out
}

// restVsGRPC pairs each REST scenario with its gRPC twin.
func restVsGRPC(scenarios []*ScenarioReport) map[string]float64 {
	grpcs := map[Kind]*ScenarioReport{}
	for _, s := range scenarios {
		if s.Transport == GRPC {
			grpcs[s.Kind] = s
		}
	}
	var out map[string]float64
	for _, s := range scenarios {
		if g := grpcs[s.Kind]; s.Transport == REST && g != nil && g.Throughput > 0 {
			if out == nil {
				out = map[string]float64{}
			}
			out[s.Scenario] = s.Throughput / g.Throughput
		}
	}
	return out
}

// WriteJSON writes the report, indented, to path.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("loadtest: encode report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("loadtest: write report: %w", err)
	}
	return nil
}

// ReadReport loads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loadtest: read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("loadtest: read report %s: %w", path, err)
	}
	return &r, nil
}

// fmtMicros prints a latency in milliseconds with three significant-ish
// digits: 0.412ms, 12.3ms, 1234ms.
func fmtMicros(us int64) string {
	ms := float64(us) / 1000
	switch {
	case ms < 10:
		return fmt.Sprintf("%.3fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}
