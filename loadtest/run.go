package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/redisproc"
)

// ErrInterrupted is returned, with the partial report, when the run's
// context ends before every scenario was measured.
var ErrInterrupted = errors.New("loadtest: interrupted")

// tokenTTL outlives any run; tokens are minted for the harness only.
const tokenTTL = 24 * time.Hour

// Run measures cfg's scenarios, one after the other with the same
// settings, and returns the report. It starts (and stops) whatever cfg
// asks for: the in-process cloudkey, a redis-server, the baseline. It
// always ends on its own: each scenario is bounded by Warmup + Duration
// plus the drain of requests in flight (each bounded by Timeout).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rep: &Report{Started: time.Now(), Settings: cfg.reportSettings(), Env: currentEnv()}}
	defer r.close()
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	scenarios := r.scenarios()
	acc := make([]*measured, len(scenarios))
	upstream := make([]map[string]int64, len(scenarios))
	upTimes := make([]map[string]*hdrhistogram.Histogram, len(scenarios))
	var err error
rounds:
	for round := range cfg.Rounds {
		for i, sc := range scenarios {
			var m measured
			var up upstreamPhase
			if m, up, err = r.measure(ctx, sc, round); err != nil {
				break rounds
			}
			if acc[i] == nil {
				acc[i] = &m
			} else {
				acc[i].add(m)
			}
			upstream[i] = addCounts(upstream[i], up.calls)
			upTimes[i] = addTimings(upTimes[i], up.timings)
			if ctx.Err() != nil {
				break rounds
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		return nil, err
	}
	s := cfg.settings()
	for i, sc := range scenarios {
		if acc[i] == nil {
			continue
		}
		sr := acc[i].report(s)
		sr.Scenario, sr.Kind, sr.Transport, sr.Upstream = sc.String(), sc.Kind, sc.Transport, upstream[i]
		if r.tgt != nil && r.tgt.sim != nil && !sc.Kind.baseline() {
			// Only the in-process target's simulator delay is known.
			own := summarize(acc[i].own)
			sr.Own, sr.OwnFloorMicros = &own, cfg.SimLatency.Microseconds()
			for op, h := range upTimes[i] {
				if sr.UpstreamLatency == nil {
					sr.UpstreamLatency = map[string]Latency{}
				}
				sr.UpstreamLatency[op] = summarize(h)
			}
		}
		r.rep.Scenarios = append(r.rep.Scenarios, sr)
	}
	r.finish()
	if ctx.Err() != nil {
		r.rep.Warnings = append(r.rep.Warnings, "interrupted: the report covers what was measured before")
		return r.rep, ErrInterrupted
	}
	return r.rep, nil
}

// addCounts adds b into a (either may be nil).
func addCounts(a, b map[string]int64) map[string]int64 {
	if b == nil {
		return a
	}
	if a == nil {
		a = make(map[string]int64, len(b))
	}
	for k, n := range b {
		a[k] += n
	}
	return a
}

// addTimings merges b's histograms into a's (either may be nil).
func addTimings(a, b map[string]*hdrhistogram.Histogram) map[string]*hdrhistogram.Histogram {
	if a == nil {
		return b
	}
	for k, h := range b {
		if a[k] == nil {
			a[k] = h
		} else {
			a[k].Merge(h)
		}
	}
	return a
}

// runner holds one run's connections and servers.
type runner struct {
	cfg      Config
	rep      *Report
	tgt      *target
	base     *BaselineServer
	users    *users
	conns    []*grpc.ClientConn // to cloudkey
	noop     []*grpc.ClientConn // to the baseline
	http     *http.Client
	closers  []func()
	closeMux sync.Once
	// prewarmWarned: checkPrewarm's warning is in the report.
	prewarmWarned bool
}

func (r *runner) close() {
	r.closeMux.Do(func() {
		for i := len(r.closers) - 1; i >= 0; i-- {
			r.closers[i]()
		}
	})
}

// scenarios are cfg's, with noop first when the baseline is asked for.
func (r *runner) scenarios() []Scenario {
	out := r.cfg.Scenarios
	if r.cfg.Baseline && !r.cfg.measures(KindNoop) {
		out = append([]Scenario{{Kind: KindNoop, Transport: GRPC}}, out...)
	}
	return out
}

func (r *runner) start(ctx context.Context) error {
	cfg := r.cfg
	seed := seedFor(cfg)
	tokens, err := identity.NewHS256(identity.DevelopmentSecret)
	if err != nil {
		return err
	}
	r.rep.Target.Kind = "baseline only"
	if cfg.needsCloudkey() {
		// unlock-cross opens a Kisi door too: the in-process cloudkey gets
		// a Kisi simulator that knows the same users.
		var kisiSeed *kisisim.Seed
		if cfg.measures(KindUnlockCross) {
			ks := kisisim.GenerateSeed(cfg.Users, max(cfg.EntriesPerUser, 1))
			kisiSeed = &ks
		}
		if r.tgt, err = startTarget(ctx, cfg, seed, kisiSeed); err != nil {
			return err
		}
		r.closers = append(r.closers, r.tgt.close)
		r.rep.Target = r.tgt.info
		r.rep.Warnings = append(r.rep.Warnings, r.tgt.warnings...)
		tokens = r.tgt.tokens
	}
	// The no-op baseline ignores tokens; any key will do for it.
	if r.users, err = newUsers(seed, tokens, tokenTTL, cfg.UnlockEntries, cfg.Properties); err != nil {
		return err
	}
	if r.cfg.Baseline || cfg.measures(KindNoop) || cfg.measures(KindNoopHTTP) || cfg.measures(KindNoopRedis) {
		addr := cfg.BaselineAddr
		if addr == "" {
			var redisURL string
			if cfg.measures(KindNoopRedis) {
				if redisURL, err = r.floorRedis(ctx); err != nil {
					return err
				}
			}
			if r.base, err = StartBaseline("127.0.0.1:0", cfg.NoopUpstream, redisURL); err != nil {
				return err
			}
			r.closers = append(r.closers, r.base.Close)
			addr = r.base.Addr()
		}
		r.rep.Target.BaselineAddr, r.rep.Target.BaselineExternal = addr, cfg.BaselineAddr != ""
		if r.noop, err = dialConns(ctx, addr, cfg.Conns); err != nil {
			return err
		}
		r.closers = append(r.closers, closeConns(r.noop))
	}
	r.rep.Settings.Users = r.users.len()
	// Prewarm goes over gRPC when there is a gRPC address.
	if cfg.needsCloudkey() && r.tgt.grpcAddr != "" && (cfg.usesTransport(GRPC) || cfg.Prewarm) {
		if r.conns, err = dialConns(ctx, r.tgt.grpcAddr, cfg.Conns); err != nil {
			return err
		}
		r.closers = append(r.closers, closeConns(r.conns))
	}
	if cfg.usesTransport(REST) {
		conns := cfg.MaxInflight
		if cfg.ClosedLoop() {
			conns = cfg.Concurrency
		}
		r.http = newHTTPClient(conns)
		r.closers = append(r.closers, r.http.CloseIdleConnections)
	}
	return r.preflight(ctx)
}

func closeConns(conns []*grpc.ClientConn) func() {
	return func() {
		for _, c := range conns {
			c.Close()
		}
	}
}

// preflight sends one ListEntries per transport in use, so that a wrong
// address or token secret fails with one clear error before any load.
func (r *runner) preflight(ctx context.Context) error {
	for _, tr := range []Transport{GRPC, REST} {
		if !r.cfg.usesTransport(tr) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		o := r.caller(Scenario{Kind: KindList, Transport: tr}).Call(cctx, 0)
		cancel()
		if !o.OK() {
			return fmt.Errorf("loadtest: the target answered a first ListEntries over %s with %s (check the address, --token-secret and --users-from)", tr, o.Err)
		}
	}
	return nil
}

func (r *runner) caller(sc Scenario) userCaller {
	switch {
	case sc.Kind.baseline():
		return newGRPCCaller(sc.Kind, r.noop, r.users)
	case sc.Transport == REST:
		return newRESTCaller(sc.Kind, r.http, r.tgt.httpAddr, r.users)
	default:
		return newGRPCCaller(sc.Kind, r.conns, r.users)
	}
}

// upstreamPhase is what the in-process simulator saw during one measured
// slice: its calls per operation and its time per request.
type upstreamPhase struct {
	calls   map[string]int64
	timings map[string]*hdrhistogram.Histogram
}

// measure runs one round of a scenario: in the first round, prewarm and
// warm-up first; then a measured slice of Duration/Rounds. It returns
// what the simulator saw during the slice (zero for an external target).
func (r *runner) measure(ctx context.Context, sc Scenario, round int) (measured, upstreamPhase, error) {
	if round == 0 && r.cfg.Prewarm && !sc.Kind.baseline() {
		start := time.Now()
		if err := r.prewarm(ctx); err != nil {
			return measured{}, upstreamPhase{}, err
		}
		r.checkPrewarm(time.Since(start))
	}
	s := r.cfg.settings()
	s.Label = fmt.Sprintf("%-12s", sc.String())
	if r.cfg.Rounds > 1 {
		s.Label = fmt.Sprintf("%-12s %d/%d", sc.String(), round+1, r.cfg.Rounds)
		s.Duration = r.cfg.Duration / time.Duration(r.cfg.Rounds)
		if s.Requests > 0 {
			s.Requests = (s.Requests + int64(r.cfg.Rounds) - 1) / int64(r.cfg.Rounds)
		}
		if round > 0 {
			s.Warmup = 0
		}
	}
	var before, after map[string]int64
	var up upstreamPhase
	if r.tgt != nil && r.tgt.sim != nil && !sc.Kind.baseline() {
		s.OwnFloor = r.cfg.SimLatency
		tgt, sm := r.tgt, r.tgt.sim
		s.BeforeMeasure = func() {
			before = tgt.upstreamCalls()
			sm.TakeTimings() // drop the warm-up's and earlier scenarios'
		}
		s.AfterMeasure = func() {
			after = tgt.upstreamCalls()
			up.timings = takeTimings(sm)
		}
	}
	m := measurePhase(ctx, r.caller(sc), s)
	if after == nil {
		return m, upstreamPhase{}, nil
	}
	up.calls = delta(before, after)
	return m, up, nil
}

// prewarm calls ListEntries once for every user (64 at a time) so that
// the in-process or external cloudkey has them all cached; when
// unlock-cross is measured, it records each user's unlock-cross request
// from the answer (learnCross). It stops at
// the first failure: a target that cannot serve one user will not serve
// the load.
func (r *runner) prewarm(ctx context.Context) error {
	const parallel = 64
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	tr := GRPC
	if r.conns == nil {
		tr = REST
	}
	caller := r.caller(Scenario{Kind: KindList, Transport: tr})
	// unlock-cross learns each user's entry ids from this ListEntries.
	cross := r.cfg.measures(KindUnlockCross)
	for w := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= r.users.len() {
					return
				}
				u, err := r.users.get(i)
				o := Outcome{Err: errHarness}
				if err == nil {
					if cross {
						o = Outcome{}
						if err := r.learnCross(ctx, w, u); err != nil {
							o.Err = err.Error()
						}
					} else if r.cfg.Properties > 1 {
						// A portfolio's door ids are learnt (portfolio.go).
						o = Outcome{}
						if err := r.learnEntries(ctx, w, i, u); err != nil {
							o.Err = err.Error()
						}
					} else {
						cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
						o = caller.callUser(cctx, w, u)
						cancel()
					}
				}
				if !o.OK() {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("loadtest: prewarm: ListEntries for %s: %s", r.users.seed[i].Email, o.Err)
					}
					mu.Unlock()
					next.Store(int64(r.users.len())) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// checkPrewarm adds prewarmWarning's warning to the report, once.
func (r *runner) checkPrewarm(took time.Duration) {
	if w := prewarmWarning(r.cfg, took, r.users.len()); w != "" && !r.prewarmWarned {
		r.prewarmWarned = true
		r.rep.Warnings = append(r.rep.Warnings, w)
	}
}

// prewarmWarning is a warning when prewarming the in-process cloudkey
// took longer than its account TTL: the first users' accounts expired
// before the measurement, which then sees misses (and upstream calls)
// instead of the cache hits it was meant to measure.
func prewarmWarning(c Config, took time.Duration, users int) string {
	ttl := c.AccountTTL
	if ttl <= 0 {
		ttl = cache.DefaultAccountTTL
	}
	if !c.Self || took <= ttl {
		return ""
	}
	return fmt.Sprintf("prewarming %d users took %s, longer than the account TTL (%s): the first accounts expired before the measurement, which sees cache misses; pass --account-ttl and --entries-ttl longer than the whole run",
		users, took.Round(time.Second), ttl)
}

// floorRedis is the Redis noop-redis reads: the in-process cloudkey's,
// else --redis-url, else a redis-server of its own.
func (r *runner) floorRedis(ctx context.Context) (string, error) {
	switch {
	case r.tgt != nil && r.tgt.redisURL != "":
		return r.tgt.redisURL, nil
	case r.cfg.RedisURL != "":
		return r.cfg.RedisURL, nil
	case redisproc.Available():
		rs, err := redisproc.Start(ctx)
		if err != nil {
			return "", fmt.Errorf("loadtest: noop-redis: %w", err)
		}
		r.closers = append(r.closers, rs.Close)
		return rs.URL(), nil
	}
	return "", errors.New("loadtest: noop-redis needs a redis-server on PATH or --redis-url")
}

// finish computes the ratios and the warnings that apply to the whole run.
func (r *runner) finish() {
	var baseline, noopHTTP, noopRedis *ScenarioReport
	for _, sc := range r.rep.Scenarios {
		switch sc.Kind {
		case KindNoop:
			baseline = sc
		case KindNoopHTTP:
			noopHTTP = sc
		case KindNoopRedis:
			noopRedis = sc
		}
		if w := kisiUserRateWarning(sc, r.rep.Settings.Users); w != "" {
			r.rep.Warnings = append(r.rep.Warnings, w)
		}
		if sc.Errors > 0 {
			r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf("%s: %d of %d requests failed; see errors by code", sc.Scenario, sc.Errors, sc.Completed))
		}
		// A few late sends are the machine's noise (the scheduler shares
		// the CPUs); over 1% the schedule itself was not held.
		if sc.Late*100 > sc.Sent || sc.Dropped > 0 {
			r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf(
				"%s: %d sends late and %d dropped: the harness or the machine could not hold %s rps (latency still counts from the intended starts)",
				sc.Scenario, sc.Late, sc.Dropped, formatRate(r.cfg.Rate)))
		}
	}
	if baseline != nil && r.cfg.Baseline {
		r.rep.Ratios = computeRatios(baseline, r.rep.Scenarios, nil)
	}
	if noopHTTP != nil {
		r.rep.RatiosToNoopHTTP = computeRatios(noopHTTP, r.rep.Scenarios,
			func(s *ScenarioReport) bool { return s.Kind == KindUnlock })
	}
	if noopRedis != nil {
		r.rep.RatiosToNoopRedis = computeRatios(noopRedis, r.rep.Scenarios,
			func(s *ScenarioReport) bool { return s.Kind == KindList })
	}
	r.rep.CrossVsMulti = crossVsMulti(r.rep.Scenarios)
	if r.cfg.ClosedLoop() { // in open loop both just hold the rate
		r.rep.RESTvsGRPC = restVsGRPC(r.rep.Scenarios)
	}
}

// kisiUserLimit is Kisi's limit of requests per second per user, which
// cloudkey's Kisi client keeps (kisi.UserRate) by waiting.
const kisiUserLimit = 5

// kisiUserRateWarning warns when an unlock-cross scenario sent each user
// more than one Kisi unlock per second on average: the users drawn more
// often than Kisi allows then wait in cloudkey's Kisi client, and the
// figures measure that pacing rather than cloudkey.
func kisiUserRateWarning(sc *ScenarioReport, users int) string {
	if sc.Kind != KindUnlockCross || users <= 0 {
		return ""
	}
	perUser := sc.Throughput / float64(users)
	if perUser <= 1 {
		return ""
	}
	return fmt.Sprintf("%s: %.1f unlocks per second per user on average; Kisi allows %d per user and cloudkey's Kisi client waits beyond that, so bursts are paced: pass more --users",
		sc.Scenario, perUser, kisiUserLimit)
}

func (c Config) reportSettings() ReportSettings {
	s := ReportSettings{
		Mode: "open loop", Rate: c.Rate, Duration: c.Duration.String(), Rounds: c.Rounds, Warmup: c.Warmup.String(),
		Requests: c.Requests, Timeout: c.Timeout.String(), MaxInflight: c.MaxInflight, Workers: c.Workers,
		Conns: c.Conns, Users: c.Users, EntriesPerUser: c.EntriesPerUser, UsersFrom: c.UsersFrom,
		UnlockEntries: c.UnlockEntries, Prewarm: c.Prewarm, Properties: c.Properties,
	}
	if c.ClosedLoop() {
		s.Mode, s.Rate, s.Concurrency, s.MaxInflight, s.Workers = "closed loop", 0, c.Concurrency, 0, 0
	}
	if c.UsersFrom == UsersDemo {
		s.EntriesPerUser = 0 // the demo users' own
	}
	return s
}
