package loadtest

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
)

// WriteText prints the report for a person: settings, one row per
// scenario, the ratios to the baseline, errors, upstream calls, versions
// and warnings.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	s := r.Settings
	if s.Mode == "closed loop" {
		ew.printf("cloudkey loadtest: closed loop, %d workers", s.Concurrency)
	} else {
		ew.printf("cloudkey loadtest: open loop at %s rps (latency from intended start)", formatRate(s.Rate))
	}
	ew.printf("; %s measured after %s warm-up per scenario", s.Duration, s.Warmup)
	if s.Rounds > 1 {
		ew.printf(", in %d interleaved rounds", s.Rounds)
	}
	if s.Requests > 0 {
		ew.printf(" (at most %d requests)", s.Requests)
	}
	ew.printf("; %d gRPC conns; timeout %s\n", s.Conns, s.Timeout)
	ew.printf("target: %s\n", r.Target.describe())
	if s.UsersFrom == UsersDemo {
		ew.printf("users: the demo organisation's %d active users with entries", s.Users)
	} else {
		ew.printf("users: %d generated, %d entries each", s.Users, s.EntriesPerUser)
		if s.Properties > 1 {
			ew.printf(", spread over %d properties (one Openpath simulator each; upstream calls summed over them, simulator timings of the first only)", s.Properties)
		}
	}
	ew.printf("; unlock-multi opens %d; prewarm %v\n", s.UnlockEntries, s.Prewarm)
	ew.printf("machine: %d CPUs (%s), GOMAXPROCS %d, %s %s/%s\n\n",
		r.Env.NumCPU, r.Env.CPUModel, r.Env.GOMAXPROCS, r.Env.GoVersion, r.Env.OS, r.Env.Arch)

	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tsent\tok\terrors\tlate\tdropped\tsent/s\tok/s\tp50\tp90\tp99\tp99.9\tmax\tcpu\t")
	for _, sc := range r.Scenarios {
		l := sc.Latency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.1fs\t\n",
			sc.Scenario, sc.Sent, sc.OK, sc.Errors, sc.Late, sc.Dropped, sc.SendRate, sc.Throughput,
			fmtMicros(l.P50), fmtMicros(l.P90), fmtMicros(l.P99), fmtMicros(l.P999), fmtMicros(l.Max), sc.CPUSeconds)
	}
	tw.Flush()

	ratioTable(ew, "ratio to the no-op gRPC baseline of this run (throughput: higher is better; p99: lower is better)", r.Ratios)
	ratioTable(ew, "ratio to noop-http, the no-op RPC plus one loopback HTTP call (the floor under an unlock; what cloudkey adds beyond it)", r.RatiosToNoopHTTP)
	ratioTable(ew, "ratio to noop-redis, the no-op RPC plus one pipelined Redis read (GET, GET, SMEMBERS, PTTL, PTTL: the floor under a list read from Redis)", r.RatiosToNoopRedis)
	ratioTable(ew, fmt.Sprintf("unlock-cross / unlock-multi of this run: 1 Openpath + 1 Kisi door per call vs %d Openpath doors per call (throughput: higher is better; p99: lower is better)", s.UnlockEntries), r.CrossVsMulti)

	if len(r.RESTvsGRPC) > 0 {
		names := make([]string, 0, len(r.RESTvsGRPC))
		for n := range r.RESTvsGRPC {
			names = append(names, n)
		}
		sort.Strings(names)
		ew.printf("\nREST through the gateway vs the same scenario over gRPC (throughput):")
		for _, n := range names {
			ew.printf("  %s %.1f%%", n, 100*r.RESTvsGRPC[n])
		}
		ew.printf("\n")
	}
	r.writeSendLag(ew)
	r.writeOwn(ew)
	r.writeErrors(ew)
	r.writeUnlocks(ew)
	r.writeUpstream(ew)

	mods := make([]string, 0, len(r.Env.Modules))
	for m, v := range r.Env.Modules {
		mods = append(mods, m+" "+v)
	}
	sort.Strings(mods)
	ew.printf("\nversions: %s; %s\n", r.Env.GoVersion, strings.Join(mods, "; "))
	for _, warn := range r.Warnings {
		ew.printf("WARNING: %s\n", warn)
	}
	return ew.err
}

// writeSendLag shows, in open loop, the harness's own timing precision
// and latency timed from the actual send, for comparison with tools that
// time it so.
func (r *Report) writeSendLag(ew *errWriter) {
	for i, sc := range r.Scenarios {
		if sc.SendLag == nil || sc.Service == nil {
			continue
		}
		if i == 0 {
			ew.printf("\nsend lag (actual minus intended start) and latency from the actual send:\n")
		}
		l, v := sc.SendLag, sc.Service
		ew.printf("  %-16s lag p50 %s p99 %s max %s   from send: p50 %s p99 %s max %s\n", sc.Scenario,
			fmtMicros(l.P50), fmtMicros(l.P99), fmtMicros(l.Max), fmtMicros(v.P50), fmtMicros(v.P99), fmtMicros(v.Max))
	}
}

// writeOwn shows cloudkey's own latency (total minus the simulator's
// injected delay) and the simulator's time per request, in-process only.
func (r *Report) writeOwn(ew *errWriter) {
	printed := false
	for _, sc := range r.Scenarios {
		if sc.Own == nil {
			continue
		}
		if !printed {
			if sc.OwnFloorMicros > 0 {
				ew.printf("\ncloudkey's own latency: total minus the simulator's injected delay (%s) for each unlock answered OK; all else counts in full\n",
					fmtMicros(sc.OwnFloorMicros))
			} else {
				ew.printf("\ncloudkey's own latency: the simulator injects no delay, so own = total\n")
			}
			printed = true
		}
		o := sc.Own
		ew.printf("  %-16s own p50 %s p90 %s p99 %s p99.9 %s max %s\n", sc.Scenario,
			fmtMicros(o.P50), fmtMicros(o.P90), fmtMicros(o.P99), fmtMicros(o.P999), fmtMicros(o.Max))
		ops := make([]string, 0, len(sc.UpstreamLatency))
		for op := range sc.UpstreamLatency {
			ops = append(ops, op)
		}
		sort.Strings(ops)
		for _, op := range ops {
			u := sc.UpstreamLatency[op]
			ew.printf("  %-16s   simulator %s: p50 %s p99 %s max %s (its handler, delay included)\n", "",
				op, fmtMicros(u.P50), fmtMicros(u.P99), fmtMicros(u.Max))
		}
	}
}

func (r *Report) writeErrors(ew *errWriter) {
	printed := false
	for _, sc := range r.Scenarios {
		for _, e := range sc.ErrorCodes {
			if !printed {
				ew.printf("\nerrors by method and code:\n")
				printed = true
			}
			ew.printf("  %-16s %-12s %-28s %d\n", sc.Scenario, e.Method, e.Code, e.Count)
		}
	}
}

func (r *Report) writeUnlocks(ew *errWriter) {
	for _, sc := range r.Scenarios {
		if sc.UnlockOK+sc.UnlockNotOK > 0 {
			ew.printf("unlock results, %s: %d OK, %d not OK\n", sc.Scenario, sc.UnlockOK, sc.UnlockNotOK)
		}
	}
}

// writeUpstream prints the simulator's calls per scenario, for the
// operations any scenario called.
func (r *Report) writeUpstream(ew *errWriter) {
	var ops []string
	names := make([]string, 0, len(sim.Ops())+len(kisisim.Ops()))
	for _, op := range sim.Ops() {
		names = append(names, op.String())
	}
	for _, op := range kisisim.Ops() {
		names = append(names, kisiOpPrefix+op.String())
	}
	for _, op := range names {
		for _, sc := range r.Scenarios {
			if sc.Upstream[op] > 0 {
				ops = append(ops, op)
				break
			}
		}
	}
	has := false
	for _, sc := range r.Scenarios {
		has = has || sc.Upstream != nil
	}
	if !has {
		return
	}
	ew.printf("\nupstream (simulator) calls during each measured phase")
	if len(ops) == 0 {
		ew.printf(": none\n")
		return
	}
	ew.printf(":\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\t%s\t\n", strings.Join(ops, "\t"))
	for _, sc := range r.Scenarios {
		if sc.Upstream == nil {
			continue
		}
		fmt.Fprint(tw, sc.Scenario)
		for _, op := range ops {
			fmt.Fprintf(tw, "\t%d", sc.Upstream[op])
		}
		fmt.Fprint(tw, "\t\n")
	}
	tw.Flush()
}

func (t TargetInfo) describe() string {
	var b strings.Builder
	b.WriteString(t.Kind)
	if t.GRPCAddr != "" {
		b.WriteString(" cloudkey, gRPC " + t.GRPCAddr)
	}
	if t.HTTPAddr != "" {
		b.WriteString(", HTTP " + t.HTTPAddr)
	}
	if t.Redis != "" {
		b.WriteString("; Redis: " + t.Redis)
	}
	if t.SimLatency != "" {
		b.WriteString("; simulator latency " + t.SimLatency)
	}
	if t.AccessURL != "" {
		b.WriteString("; access system: the simulator at " + t.AccessURL + " (another process)")
	}
	if t.KisiSimURL != "" {
		b.WriteString("; Kisi: the simulator at " + t.KisiSimURL + " (in process, no rate limit; the Kisi client's organisation-key pace raised to match)")
	}
	if t.BaselineAddr != "" {
		b.WriteString("; no-op baseline on " + t.BaselineAddr)
		if t.BaselineExternal {
			b.WriteString(" (another process)")
		}
	}
	return b.String()
}

// errWriter keeps the first write error so the printing code stays flat.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// ratioTable prints ratios under title; nothing when there are none.
func ratioTable(ew *errWriter, title string, ratios []Ratio) {
	if len(ratios) == 0 {
		return
	}
	ew.printf("\n%s\n", title)
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tthroughput\tp99\t")
	for _, ra := range ratios {
		fmt.Fprintf(tw, "%s\t%.1f%%\t%.2fx\t\n", ra.Scenario, 100*ra.Throughput, ra.P99)
	}
	tw.Flush()
}
