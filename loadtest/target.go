package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/redisproc"
	"github.com/cloudkey/cloudkey/internal/setup"
)

// target is the cloudkey under test: started in process, or running.
type target struct {
	info               TargetInfo
	grpcAddr, httpAddr string
	tokens             *identity.HS256
	// sim is the in-process cloudkey's simulator; nil for an external one.
	sim      *sim.Server
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

func startTarget(ctx context.Context, cfg Config, seed sim.Seed) (*target, error) {
	if !cfg.Self {
		return externalTarget(cfg)
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
	sc := setup.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		RedisURL: redisURL, TokenSecret: secret, SimSeed: &seed,
		AccountTTL: cfg.AccountTTL, EntriesTTL: cfg.EntriesTTL, Logger: log,
	}
	if cfg.AccessURL != "" {
		// cloudkey sim serves the demo service account whatever it seeds.
		sc.AccessURL, sc.AccessEmail, sc.AccessPassword = cfg.AccessURL, sim.DemoServiceEmail, sim.DemoServicePassword
		t.info.AccessURL = cfg.AccessURL
	}
	app, err := setup.Start(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("loadtest: start cloudkey: %w", err)
	}
	if cfg.SimLatency > 0 {
		if err := app.Sim.SetFaults(sim.Faults{Latency: cfg.SimLatency}); err != nil {
			app.Close()
			return nil, fmt.Errorf("loadtest: --sim-latency: %w", err)
		}
		t.info.SimLatency = cfg.SimLatency.String()
	}
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- app.Serve(serveCtx) }()
	t.closers = append(t.closers, func() {
		stop()
		select {
		case err := <-served:
			if err != nil {
				log.Warn("in-process cloudkey stopped with an error", "err", err)
			}
		case <-time.After(15 * time.Second):
			log.Warn("in-process cloudkey did not stop in 15s")
		}
	})
	// The simulator's time per request tells its share of each call's
	// latency from cloudkey's own (ScenarioReport.UpstreamLatency).
	if app.Sim != nil {
		app.Sim.RecordTimings(true)
	}
	t.tokens, t.sim = app.Tokens, app.Sim
	t.grpcAddr, t.httpAddr = app.Server.GRPCAddr(), app.Server.HTTPAddr()
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

// upstreamCalls reads the simulator's call counters.
func upstreamCalls(s *sim.Server) map[string]int64 {
	m := make(map[string]int64, len(sim.Ops()))
	for _, op := range sim.Ops() {
		m[op.String()] = s.Calls(op)
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
