package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/redisproc"
)

// TargetConfig is what Config.StartTarget starts an in-process cloudkey
// with.
type TargetConfig struct {
	// RedisURL is the Redis the target uses; empty: its embedded one.
	RedisURL string
	// TokenSecret is the HS256 key the target verifies app tokens with;
	// the harness signs its tokens with it.
	TokenSecret string
	// Seed is the organisation of the target's embedded simulator.
	Seed sim.Seed
	// KisiSeed, when set, adds an embedded Kisi simulator with these
	// organisations as the property's second connection (unlock-cross).
	KisiSeed *kisisim.Seed
	// PropertiesFile, when set, is the properties file the target serves
	// (a portfolio run, --properties): its simulators are the harness's,
	// and Seed is not served.
	PropertiesFile string
	// AccessURL, when set, is a simulator run apart that the target
	// calls instead of starting its own; it serves the demo service
	// account (cloudkey sim does, whatever it seeds).
	AccessURL string
	// AccountTTL and EntriesTTL are the target's cache TTLs; zero keeps
	// its defaults.
	AccountTTL, EntriesTTL time.Duration
	// Logger receives the target's logs; nil: slog.Default.
	Logger *slog.Logger
}

// Target is an in-process cloudkey started by Config.StartTarget.
type Target struct {
	// GRPCAddr and HTTPAddr are its bound listeners.
	GRPCAddr, HTTPAddr string
	// Sim is its embedded access-system simulator; nil when it calls one
	// run apart (TargetConfig.AccessURL). The harness sets its faults
	// (--sim-latency) and reads its call counts and timings.
	Sim *sim.Server
	// KisiSim is its embedded Kisi simulator; nil without
	// TargetConfig.KisiSeed. The harness reads its call counts.
	KisiSim *kisisim.Server
	// Close stops it and waits (boundedly) for it to stop.
	Close func()
}

// A TargetStarter starts an in-process cloudkey (Config.Self). The
// harness is a client of cloudkey's public API and does not build
// cloudkey itself: the command hands it internal/selftarget.Start.
type TargetStarter func(ctx context.Context, tc TargetConfig) (*Target, error)

// target is the cloudkey under test: started in process, or running.
type target struct {
	info               TargetInfo
	grpcAddr, httpAddr string
	// redisURL is the in-process cloudkey's Redis; empty when embedded.
	redisURL string
	tokens   *identity.HS256
	// sim is the in-process cloudkey's simulator; nil for an external one.
	sim *sim.Server
	// extraSims are a portfolio run's simulators of the properties after
	// the first (whose is sim): their calls count, their timings are not
	// recorded (histograms per simulator would cost gigabytes).
	extraSims []*sim.Server
	// kisi is the in-process cloudkey's Kisi simulator, or nil.
	kisi     *kisisim.Server
	warnings []string
	closers  []func()
}

// close stops what startTarget started, last first.
func (t *target) close() {
	for i := len(t.closers) - 1; i >= 0; i-- {
		t.closers[i]()
	}
	t.closers = nil
}

// embeddedRedisWarning is printed when no real Redis could be had.
const embeddedRedisWarning = "no redis-server on PATH and no --redis-url: the in-process cloudkey uses the embedded in-memory Redis (miniredis); these figures are NOT meaningful for Redis-backed paths. Install redis-server (make test does) or pass --redis-url."

func startTarget(ctx context.Context, cfg Config, seed sim.Seed, kisiSeed *kisisim.Seed) (*target, error) {
	if !cfg.Self {
		return externalTarget(cfg)
	}
	if cfg.StartTarget == nil {
		return nil, errors.New("loadtest: an in-process target (Self) needs Config.StartTarget")
	}
	t := &target{info: TargetInfo{Kind: "in-process"}}
	ok := false
	defer func() {
		if !ok {
			t.close()
		}
	}()
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}

	redisURL := cfg.RedisURL
	switch {
	case redisURL != "":
		t.info.Redis = "given " + redactedURL(redisURL)
	case redisproc.Available():
		rs, err := redisproc.Start(ctx)
		if err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
		t.closers = append(t.closers, rs.Close)
		redisURL = rs.URL()
		t.info.Redis = fmt.Sprintf("redis-server %s on %s, started by the harness", rs.Version, rs.Addr)
	default:
		t.info.Redis = "embedded (miniredis)"
		t.warnings = append(t.warnings, embeddedRedisWarning)
		log.Warn("LOAD-TEST FIGURES NOT MEANINGFUL: " + embeddedRedisWarning)
	}

	// The in-process target only needs the harness and itself to agree
	// on the key: a random one keeps the development key out of it.
	secret := cfg.TokenSecret
	if secret == "" {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		secret = hex.EncodeToString(b)
	}
	t.redisURL = redisURL
	tc := TargetConfig{
		RedisURL: redisURL, TokenSecret: secret, Seed: seed, KisiSeed: kisiSeed,
		AccountTTL: cfg.AccountTTL, EntriesTTL: cfg.EntriesTTL, Logger: log,
	}
	if cfg.AccessURL != "" {
		tc.AccessURL = cfg.AccessURL
		t.info.AccessURL = cfg.AccessURL
	}
	var pf *portfolio
	if cfg.Properties > 1 {
		var err error
		if pf, err = startPortfolio(seed, cfg.Properties); err != nil {
			return nil, err
		}
		t.closers = append(t.closers, pf.close)
		tc.PropertiesFile = pf.file
	}
	tgt, err := cfg.StartTarget(ctx, tc)
	if err != nil {
		return nil, fmt.Errorf("loadtest: start cloudkey: %w", err)
	}
	t.closers = append(t.closers, tgt.Close)
	if pf != nil {
		tgt.Sim, t.extraSims = pf.sims[0], pf.sims[1:]
		for _, s := range t.extraSims {
			if err := s.SetFaults(sim.Faults{Latency: cfg.SimLatency}); err != nil {
				return nil, fmt.Errorf("loadtest: --sim-latency: %w", err)
			}
		}
	}
	if t.tokens, err = identity.NewHS256(secret); err != nil {
		return nil, err
	}
	if cfg.SimLatency > 0 {
		if err := tgt.Sim.SetFaults(sim.Faults{Latency: cfg.SimLatency}); err != nil {
			return nil, fmt.Errorf("loadtest: --sim-latency: %w", err)
		}
		if tgt.KisiSim != nil {
			if err := tgt.KisiSim.SetFaults(kisisim.Faults{Latency: cfg.SimLatency}); err != nil {
				return nil, fmt.Errorf("loadtest: --sim-latency (Kisi): %w", err)
			}
		}
		t.info.SimLatency = cfg.SimLatency.String()
	}
	// The simulator's time per request tells its share of each call's
	// latency from cloudkey's own (ScenarioReport.UpstreamLatency).
	if tgt.Sim != nil {
		tgt.Sim.RecordTimings(true)
	}
	t.sim, t.kisi = tgt.Sim, tgt.KisiSim
	if tgt.KisiSim != nil {
		t.info.KisiSimURL = tgt.KisiSim.URL
	}
	t.grpcAddr, t.httpAddr = tgt.GRPCAddr, tgt.HTTPAddr
	t.info.GRPCAddr, t.info.HTTPAddr = t.grpcAddr, t.httpAddr
	ok = true
	return t, nil
}

func externalTarget(cfg Config) (*target, error) {
	secret := cfg.TokenSecret
	if secret == "" {
		secret = identity.DevelopmentSecret
	}
	tokens, err := identity.NewHS256(secret)
	if err != nil {
		return nil, fmt.Errorf("loadtest: --token-secret: %w", err)
	}
	return &target{
		info:     TargetInfo{Kind: "external", GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr},
		grpcAddr: cfg.GRPCAddr, httpAddr: cfg.HTTPAddr, tokens: tokens,
	}, nil
}

// kisiOpPrefix starts the Kisi simulator's operations in upstream call
// counts ("kisi.unlockLock"); the Openpath simulator's are bare.
const kisiOpPrefix = "kisi."

// upstreamCalls reads the simulators' call counters: Openpath's, and
// Kisi's (prefixed with kisiOpPrefix) when k is not nil.
func upstreamCalls(s *sim.Server, k *kisisim.Server) map[string]int64 {
	m := make(map[string]int64, len(sim.Ops())+len(kisisim.Ops()))
	for _, op := range sim.Ops() {
		m[op.String()] = s.Calls(op)
	}
	if k != nil {
		for _, op := range kisisim.Ops() {
			m[kisiOpPrefix+op.String()] = k.Calls(op)
		}
	}
	return m
}

// takeTimings reads (and resets) the simulator's time per request, by
// operation name.
func takeTimings(s *sim.Server) map[string]*hdrhistogram.Histogram {
	ts := s.TakeTimings()
	if len(ts) == 0 {
		return nil
	}
	out := make(map[string]*hdrhistogram.Histogram, len(ts))
	for op, h := range ts {
		out[op.String()] = h
	}
	return out
}

// delta is after minus before, per operation.
func delta(before, after map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(after))
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// redactedURL is u with its password replaced by "xxxxx": the report is
// printed and saved, and must not carry a production Redis password.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(a URL that does not parse; not shown)"
	}
	return p.Redacted()
}
