// Package setup wires a whole cloudkey from configuration: token
// verifier, Redis (or the embedded one), the access system (or the
// embedded simulator), cache, unlock engine and service, and server.
// `cloudkey serve` and the load-test harness both start cloudkey this way.
// It is the one place that may import every layer (adapters, Redis,
// generated code); no package imports it but the binaries and loadtest.
package setup

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/building"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/connlimit"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/server"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/visitor"
)

// Config is cloudkey's configuration. Empty RedisURL, AccessURL and
// TokenSecret select the embedded defaults.
type Config struct {
	GRPCAddr, HTTPAddr string
	RedisURL           string
	AccessURL          string
	AccessEmail        string
	AccessPassword     string
	AccessOrg          string
	TokenSecret        string
	UnlockTimeout      time.Duration
	// AuditSpool keeps the unlock audit records Redis could not take at
	// shutdown (unlock.AuditConfig.Spool); empty: they are logged.
	AuditSpool string
	AccountTTL time.Duration
	EntriesTTL time.Duration
	// LocalTTL is the in-process cache layer's TTL (cache.Config.LocalTTL).
	LocalTTL time.Duration
	// PublicURL is where guests open their links (BaseURL + "/g/" +
	// token); empty means http:// + the bound HTTP address.
	PublicURL string
	// EnvoySecret verifies Envoy webhooks; empty means the development
	// secret (DevelopmentEnvoySecret).
	EnvoySecret string
	// SMTP sends guest links by email when SMTP.Addr is set; otherwise
	// links are logged (development).
	SMTP notify.SMTPConfig
	// Notifier, when set, delivers guest links instead (tests).
	Notifier notify.Notifier
	// AccessMaxInFlight bounds the requests in flight to the access
	// system (openpath.Config.MaxInFlight: 0 default, negative no bound).
	AccessMaxInFlight int
	// AccessBreakerOpen is how long the access system's circuit breaker
	// stays open before a probe (openpath.Config.BreakerOpenTimeout).
	AccessBreakerOpen time.Duration
	// SimSeed is the embedded simulator's organisation; nil: the demo one.
	SimSeed *sim.Seed

	// JWKSURL, when set, verifies app tokens as RS256/ES256 against the
	// identity provider's keys (TokenIssuer and TokenAudience required);
	// HS256 is then refused. TokenLeeway is the clock skew tolerated.
	JWKSURL       string
	TokenIssuer   string
	TokenAudience string
	TokenLeeway   time.Duration

	// RateLimits limit unlocks per user, guest link and client IP, and
	// visitor registrations per contact and building, shared by replicas
	// through Redis; the zero value is no limits (`cloudkey serve` sets
	// ratelimit.Defaults unless told otherwise).
	RateLimits ratelimit.Config
	// TrustedProxies may name the client in X-Forwarded-For; none: the
	// connection's address is the client's.
	TrustedProxies []netip.Prefix
	// CORSOrigins, TileFrameAncestors, TLSCertFile and TLSKeyFile are
	// server.Config's (browser access and TLS of both listeners).
	CORSOrigins             []string
	TileFrameAncestors      string
	TLSCertFile, TLSKeyFile string
	// GRPCConns and HTTPConns are server.Config's connection caps (zero
	// fields: derived from the descriptor limit).
	GRPCConns, HTTPConns connlimit.Limits
	// Logger is wrapped with telemetry.LogHandler: request ids in, full
	// emails and tokens out.
	Logger *slog.Logger
	// Tracing says where spans go (CLOUDKEY_OTLP_ENDPOINT or the standard
	// OTEL_EXPORTER_OTLP_* variables); unset: no tracing.
	Tracing telemetry.TracingConfig
}

// accessSystem names the one access system in metrics, traces and unlock
// targets.
const accessSystem = "openpath"

// DevelopmentEnvoySecret verifies Envoy webhooks when CLOUDKEY_ENVOY_SECRET
// is unset. Never use it in production.
const DevelopmentEnvoySecret = "cloudkey-development-envoy-secret"

// App is a started cloudkey: listeners bound, dependencies up.
type App struct {
	Server *server.Server
	// Sim is the embedded simulator, nil when AccessURL is set.
	Sim    *sim.Server
	Tokens *identity.HS256 // development (HS256) tokens; nil with a JWKS
	Redis  redis.UniversalClient
	// EmbeddedRedis reports whether Redis is the in-process one.
	EmbeddedRedis bool
	// Org is the access-system organisation this cloudkey serves; admin
	// keys of other organisations are refused.
	Org string
	// DevAdminKey is an admin key made at start when Redis is embedded
	// (nobody else can reach that Redis to make one); empty otherwise.
	DevAdminKey string

	// Visitors is the guest-pass service.
	Visitors *visitor.Service
	// EnvoySecret is the secret Envoy webhooks are verified with.
	EnvoySecret string
	// Metrics are served on /metrics.
	Metrics *telemetry.Metrics
	// Tracing is nil when tracing is off.
	Tracing *telemetry.Tracing

	audit   *unlock.StreamAuditor
	log     *slog.Logger
	closers []func()
}

// Start builds cloudkey from cfg and binds its listeners. Call Serve, or
// Close when Serve is not called.
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = slog.New(telemetry.LogHandler(log.Handler()))
	a = &App{log: log, Metrics: telemetry.NewMetrics()}
	built := a // the error returns set a to nil; what was started must still close
	defer func() {
		if err != nil {
			built.Close()
		}
	}()
	tokens, err := a.tokenVerifier(cfg, log)
	if err != nil {
		return nil, err
	}

	redisURL := cfg.RedisURL
	if redisURL == "" {
		emb, err := cache.StartEmbedded()
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, emb.Close)
		redisURL, a.EmbeddedRedis = emb.URL(), true
		log.Warn("CLOUDKEY_REDIS_URL is unset: using an embedded in-memory Redis; its data is lost on exit; not for production; it takes only this process's commands (a random password)", "addr", emb.Addr())
	}
	if a.Redis, err = cache.Dial(redisURL); err != nil {
		return nil, err
	}
	cache.Guard(a.Redis, func(from, to string) {
		log.Warn("redis circuit breaker changed state", "from", from, "to", to)
	})
	rdb := a.Redis
	a.closers = append(a.closers, func() { rdb.Close() })
	if a.Tracing, err = telemetry.NewTracing(ctx, cfg.Tracing); err != nil {
		return nil, err
	}
	if err := a.Tracing.InstrumentRedis(rdb); err != nil {
		return nil, err
	}

	a.Org = cfg.AccessOrg
	opCfg := openpath.Config{BaseURL: cfg.AccessURL, Email: cfg.AccessEmail, Password: cfg.AccessPassword, OrgID: cfg.AccessOrg}
	if cfg.AccessURL == "" {
		seed := sim.DemoSeed()
		if cfg.SimSeed != nil {
			seed = *cfg.SimSeed
		}
		if a.Sim, err = sim.Start(seed); err != nil {
			return nil, fmt.Errorf("embedded simulator: %w", err)
		}
		s := a.Sim
		a.closers = append(a.closers, func() { s.Close() })
		opCfg = openpath.Config{BaseURL: s.URL, Email: seed.ServiceAccount.Email, Password: seed.ServiceAccount.Password}
		if a.Org == "" {
			a.Org = strconv.Itoa(seed.Org.ID)
		}
		log.Warn("CLOUDKEY_ACCESS_URL is unset: using the embedded access-system simulator", "url", s.URL)
	}
	admins := adminkey.NewStore(rdb, cache.DefaultPrefix)
	if a.EmbeddedRedis && a.Org != "" {
		if a.DevAdminKey, _, err = admins.Create(ctx, a.Org, "development key (embedded Redis)"); err != nil {
			return nil, err
		}
	}
	opCfg.MaxInFlight, opCfg.BreakerOpenTimeout = cfg.AccessMaxInFlight, cfg.AccessBreakerOpen
	opCfg.Name = accessSystem
	opCfg.WrapTransport = telemetry.WrapTransport(a.Metrics, a.Tracing, accessSystem)
	opCfg.OnBreakerChange = func(system, from, to string) {
		a.Metrics.SetBreakerState(system, to)
		log.Warn("access system circuit breaker changed state", "system", system, "from", from, "to", to)
	}
	accessSys, err := openpath.New(opCfg)
	if err != nil {
		return nil, err
	}
	a.Metrics.SetBreakerState(accessSystem, accessSys.BreakerState()) // the gauge starts known
	// Closed before the simulator: its graceful shutdown would otherwise
	// wait for these idle keep-alive connections.
	a.closers = append(a.closers, accessSys.CloseIdleConnections)

	store := cache.New(rdb, cache.Config{AccountTTL: cfg.AccountTTL, EntriesTTL: cfg.EntriesTTL, LocalTTL: cfg.LocalTTL, Logger: log,
		Observe: a.Metrics.ObserveCache})
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); store.Run(runCtx) }()
	a.closers = append(a.closers, func() { stopRun(); <-ran })
	a.audit = unlock.NewStreamAuditor(rdb, unlock.AuditConfig{Logger: log, Spool: cfg.AuditSpool})
	audit := a.Metrics.Auditor(a.audit) // counts unlock results by code
	unlockTimeout := cfg.UnlockTimeout
	if unlockTimeout <= 0 {
		unlockTimeout = 3 * time.Second
	}
	svc := unlock.NewService(accessSys, accessSystem, store, unlock.NewEngine(unlockTimeout, audit), log)

	a.EnvoySecret = cfg.EnvoySecret
	if a.EnvoySecret == "" {
		log.Warn("CLOUDKEY_ENVOY_SECRET is unset: Envoy webhooks are verified with the development secret; not for production")
		a.EnvoySecret = DevelopmentEnvoySecret
	}
	var notifier notify.Notifier = notify.NewLog(log, true)
	switch {
	case cfg.Notifier != nil:
		notifier = cfg.Notifier
	case cfg.SMTP.Addr != "":
		if notifier, err = notify.NewSMTP(cfg.SMTP); err != nil {
			return nil, err
		}
	default:
		log.Warn("CLOUDKEY_SMTP_ADDR is unset: guest links are written to this log instead of sent")
	}
	// Bind HTTP now: guest links need its address when no public URL is set.
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("HTTP listen on %s: %w", cfg.HTTPAddr, err)
	}
	a.closers = append(a.closers, func() { httpLis.Close() })
	publicURL := strings.TrimRight(cfg.PublicURL, "/")
	if publicURL == "" {
		scheme := "http://"
		if cfg.TLSCertFile != "" {
			scheme = "https://"
		}
		publicURL = scheme + httpLis.Addr().String()
	}
	a.Visitors, err = visitor.New(visitor.Config{
		Redis: rdb, Access: accessSys, Notifier: notifier, BaseURL: publicURL,
		Audit: audit, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	schedCtx, stopSched := context.WithCancel(context.Background())
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		if err := a.Visitors.RunScheduler(schedCtx); err != nil && schedCtx.Err() == nil {
			log.Error("visitor scheduler stopped", "err", err)
		}
	}()
	a.closers = append(a.closers, func() { stopSched(); <-schedDone })

	var limiter server.RateLimiter // a nil *ratelimit.Limiter would not be a nil interface
	if cfg.RateLimits.Enabled() {
		rl := cfg.RateLimits
		rl.Logger = log
		limiter = ratelimit.New(rdb, rl)
	}
	a.Server, err = server.New(ctx, server.Config{
		GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr, HTTPListener: httpLis,
		Tokens: identity.NewCachedVerifier(tokens, 100_000, 10*time.Minute), Resident: svc, Logger: log,
		Admins: admins, Org: a.Org,
		Cache: store, Audit: unlock.NewAuditLog(rdb, ""),
		Contacts:  tenant.NewStore(rdb, cache.DefaultPrefix),
		Buildings: building.NewStore(rdb, cache.DefaultPrefix),
		Visitors:  a.Visitors, EnvoySecret: []byte(a.EnvoySecret),
		Limiter: limiter, TrustedProxies: cfg.TrustedProxies,
		CORSOrigins: cfg.CORSOrigins, TileFrameAncestors: cfg.TileFrameAncestors,
		TLSCertFile: cfg.TLSCertFile, TLSKeyFile: cfg.TLSKeyFile,
		GRPCConns: cfg.GRPCConns, HTTPConns: cfg.HTTPConns,
		Ready: func(ctx context.Context) map[string]error {
			return map[string]error{"redis": rdb.Ping(ctx).Err()}
		},
		Metrics: a.Metrics, Tracing: a.Tracing,
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// tokenVerifier is the JWKS verifier when a JWKS URL is set (HS256 is
// then refused altogether), else HS256 with the configured or the
// development secret.
func (a *App) tokenVerifier(cfg Config, log *slog.Logger) (identity.Verifier, error) {
	if cfg.JWKSURL != "" {
		if cfg.TokenSecret != "" {
			return nil, fmt.Errorf("CLOUDKEY_TOKEN_SECRET and CLOUDKEY_JWKS_URL are both set: HS256 tokens are for development only and are refused when a JWKS is configured; unset one")
		}
		j, err := identity.NewJWKS(identity.JWKSConfig{
			URL: cfg.JWKSURL, Issuer: cfg.TokenIssuer, Audience: cfg.TokenAudience, Leeway: cfg.TokenLeeway, Logger: log,
		})
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, j.Close)
		return j, nil
	}
	if cfg.TokenIssuer != "" || cfg.TokenAudience != "" {
		return nil, fmt.Errorf("CLOUDKEY_TOKEN_ISSUER and CLOUDKEY_TOKEN_AUDIENCE apply to JWKS tokens: set CLOUDKEY_JWKS_URL too")
	}
	secret := cfg.TokenSecret
	if secret == "" {
		log.Warn("CLOUDKEY_TOKEN_SECRET is unset: using the development token key; not for production")
		secret = identity.DevelopmentSecret
	} else {
		log.Warn("app tokens are HS256 with a shared secret: for development only; set CLOUDKEY_JWKS_URL in production")
	}
	var err error
	if a.Tokens, err = identity.NewHS256(secret); err != nil {
		return nil, err
	}
	return a.Tokens, nil
}

// Serve serves until ctx ends, drains in-flight calls, writes the queued
// audit records and releases everything.
func (a *App) Serve(ctx context.Context) error {
	err := a.Server.Serve(ctx)
	a.Close()
	return err
}

// Close writes queued audit records (for up to 5 s), releases the
// embedded dependencies and flushes queued spans (for up to 5 s). It is
// idempotent.
func (a *App) Close() {
	if a.audit != nil {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.audit.Close(actx); err != nil {
			written, dropped := a.audit.Stats()
			a.log.Error("audit records not all written", "written", written, "dropped", dropped, "err", err)
		}
		cancel()
		a.audit = nil
	}
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
	if a.Tracing != nil {
		tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.Tracing.Shutdown(tctx); err != nil {
			a.log.Error("spans not all exported", "err", err)
		}
		cancel()
		a.Tracing = nil
	}
}
