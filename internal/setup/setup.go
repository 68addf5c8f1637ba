// Package setup wires a whole cloudkey from configuration: token
// verifier, Redis (or the embedded one), the access system (or the
// embedded simulator), cache, unlock engine and audit, resident service,
// visitors and server. It owns cloudkey's one configuration: Config, and
// Settings, the table declaring each `cloudkey serve` setting's flag,
// environment variable, default and doc once (Flags registers it on a
// flag.FlagSet). server.Config, the transport's narrow configuration, is
// filled from Config in one function (serverConfig).
//
// Start builds each dependency in a function of its own (startRedis,
// startAccess, newStores, startCache, newUnlock, newResident,
// newNotifier, startVisitors, newLimiter, serverConfig) returning what it
// built and its closer.
//
// setup is wiring: it may import every package of cloudkey, and only
// commands (cmd/...) and the in-process load-test target
// (internal/selftarget) may import it. Domain packages (unlock, visitor,
// tenant, access, ...) and loadtest must not (internal/layout checks
// loadtest).
package setup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/connlimit"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/notify/twilio"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
	"github.com/cloudkey/cloudkey/server"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/tenant/tenantredis"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/unlock/auditredis"
	"github.com/cloudkey/cloudkey/visitor"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
	"github.com/cloudkey/cloudkey/visitor/visitorredis"
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
	// SecretsKey is CLOUDKEY_SECRETS_KEY (environment only): the keys
	// stored credentials are sealed with, a secrets.Parse spec; empty:
	// the development key (secretsKeyring). A credential: never logged.
	SecretsKey    string
	UnlockTimeout time.Duration
	// AuditSpool keeps the unlock audit records Redis could not take at
	// shutdown (auditredis.AuditConfig.Spool); empty: they are logged.
	AuditSpool string
	AccountTTL time.Duration
	EntriesTTL time.Duration
	// LocalTTL is the in-process cache layer's TTL (cache.Config.LocalTTL).
	LocalTTL time.Duration
	// CacheMemory bounds, in bytes, what process memory keeps of the
	// users' cached data: half for the cache's in-process layer
	// (cache.Config.LocalMaxBytes), half for the encoded ListEntries
	// answers beside it (server.Config.AnswerMemory).
	CacheMemory int64
	// PublicURL is where guests open their links (BaseURL + "/g/" +
	// token); empty means http:// + the bound HTTP address.
	PublicURL string
	// EnvoySecret verifies Envoy webhooks; empty means the development
	// secret (DevelopmentEnvoySecret).
	EnvoySecret string
	// SMTP sends guest links by email when SMTP.Addr is set; otherwise
	// links are logged (development).
	SMTP notify.SMTPConfig
	// Twilio texts guest links to phone numbers when Twilio.AccountSID is
	// set; its status callback is the public URL + SMSStatusPath.
	// Without it, links to phones are logged when SMTP is unset too
	// (development), and not sent otherwise.
	Twilio twilio.Config
	// TwilioAuthTokenFile, when set, holds the Twilio auth token (instead
	// of Twilio.AuthToken).
	TwilioAuthTokenFile string
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
	// DemoWithoutEnvoy leaves the demo without its embedded Envoy
	// simulator, so that tile registrations issue passes themselves as
	// at a location without an Envoy connection (tests of that path).
	DemoWithoutEnvoy bool
	// KisiSimSeed, when set, adds an embedded Kisi simulator with these
	// organisations, and a Kisi connection to the first one's API key, to
	// the embedded property. Nil: the demo's Kisi organisations when
	// SimSeed is nil too (the demo), else no Kisi connection.
	KisiSimSeed *kisisim.Seed
	// KisiOrgRate is the Kisi clients' pace for the organisation key
	// (kisi.Config.OrgRate: user look-ups and login creations); 0 is
	// Kisi's own limit of 5 per second. The load test raises it against
	// its embedded simulator, which has no rate limit: prewarming
	// thousands of residents at 5 per second would take hours.
	KisiOrgRate float64
	// SchedulePoll is how often each replica looks for scheduled jobs
	// due (the roster pulls); 0: schedule.DefaultPoll.
	SchedulePoll time.Duration
	// DemoPMS gives the embedded demo's properties a pms block on an
	// embedded Buildium simulator (`cloudkey serve` sets it; off, the
	// demo has no scheduled pull, and its simulators see no reconciliation
	// traffic).
	DemoPMS bool
	// MoveOutSweep is how often the move-out policies are looked at
	// (a run is made where one is due); 0: DefaultMoveOutSweep.
	MoveOutSweep time.Duration
	// PropertiesFile names the properties file (PRODUCT.md); empty: the
	// CLOUDKEY_ACCESS_* settings describe one property with one Openpath
	// connection, and without those the demo property is served.
	PropertiesFile string

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

// DevelopmentEnvoySecret verifies Envoy webhooks when CLOUDKEY_ENVOY_SECRET
// is unset. Never use it in production.
const DevelopmentEnvoySecret = "cloudkey-development-envoy-secret"

// App is a started cloudkey: listeners bound, dependencies up.
type App struct {
	Server *server.Server
	// Sim is the embedded simulator, nil when AccessURL is set.
	Sim *sim.Server
	// KisiSim is the embedded Kisi simulator; nil when none is embedded.
	KisiSim *kisisim.Server
	// EnvoySim is the demo's embedded Envoy simulator; nil otherwise.
	EnvoySim *envoysim.Server
	Tokens   *identity.HS256 // development (HS256) tokens; nil with a JWKS
	Redis    redis.UniversalClient
	// EmbeddedRedis reports whether Redis is the in-process one.
	EmbeddedRedis bool
	// Org is the access-system organisation this cloudkey serves; admin
	// keys of other organisations are refused.
	Org string
	// Properties are the properties served when Start returned, the
	// default first: those stored in Redis, after the properties file (or
	// the CLOUDKEY_ACCESS_* shorthand, or the demo) was applied.
	// ServedProperties is the set served now.
	Properties []property.Property
	// DevAdminKey is an admin key made at start when Redis is embedded
	// (nobody else can reach that Redis to make one); empty otherwise.
	DevAdminKey string

	// BuildiumSim is the embedded Buildium simulator the demo's rosters
	// are pulled from; nil outside the demo.
	BuildiumSim *buildiumsim.Server

	// Visitors is the guest-pass service.
	Visitors *visitor.Service
	// EnvoySecret is the secret Envoy webhooks are verified with.
	EnvoySecret string
	// Metrics are served on /metrics.
	Metrics *telemetry.Metrics
	// Tracing is nil when tracing is off.
	Tracing *telemetry.Tracing
	// MoveOuts runs each property's move-out policy: the admin API's
	// calls and a run after each roster import use it; a scheduler calls
	// MoveOuts.Run(ctx, property, false) after each roster pull and at
	// each property's cut-off time.
	MoveOuts *moveout.Runner

	audit    *auditredis.StreamAuditor
	registry *registry
	log      *slog.Logger
	closers  []func()
	// stopJobs stops the scheduled jobs; Close calls it first.
	stopJobs func()
}

// Start builds cloudkey from cfg and binds its listeners. Call Serve, or
// Close when Serve is not called. Each dependency is built by a function
// of its own that returns what it built and its closer; Start keeps the
// closers, run last first by Close.
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

	rdb, embedded, closeRedis, err := startRedis(cfg, log)
	a.add(closeRedis)
	if err != nil {
		return nil, err
	}
	a.Redis, a.EmbeddedRedis = rdb, embedded
	if a.Tracing, err = telemetry.NewTracing(ctx, cfg.Tracing); err != nil {
		return nil, err
	}
	if err := a.Tracing.InstrumentRedis(rdb); err != nil {
		return nil, err
	}

	acc, err := startAccess(cfg, log)
	a.add(acc.close)
	if err != nil {
		return nil, err
	}
	a.Sim, a.KisiSim, a.BuildiumSim = acc.sim, acc.kisiSim, acc.buildiumSim
	keys, err := secretsKeyring(cfg, log)
	if err != nil {
		return nil, err
	}
	// The properties live in Redis, shared by every replica: what the
	// configuration names is applied, then every property stored is
	// served and followed.
	props := propertyredis.New(rdb, keys)
	if err := applyFile(ctx, props, acc.file, log); err != nil {
		return nil, err
	}

	store, closeCache := startCache(rdb, cfg, log, a.Metrics)
	a.add(closeCache)
	un := newUnlock(rdb, cfg, log, a.Metrics)
	a.audit = un.auditor
	reg, err := startRegistry(ctx, props, &builder{cfg: cfg, rdb: rdb, keys: keys, shared: acc.shared, log: log, metrics: a.Metrics,
		tracing: a.Tracing, cache: store, engine: un.engine}, unlockTimeout(cfg)+time.Second, log)
	if err != nil {
		return nil, err
	}
	a.add(reg.close)
	a.registry, a.Properties = reg, reg.properties()
	pulls, closePMS, err := startPMS(rdb, reg, cfg, log, a.Metrics)
	if err != nil {
		return nil, err
	}
	// The scheduled jobs (pulls, move-out runs) write audit records: they
	// stop before the auditor closes (Close), and again harmlessly here.
	a.stopJobs = sync.OnceFunc(closePMS)
	a.add(a.stopJobs)
	svc := reg.portfolio
	// Legacy admin keys stay the default property's first Openpath
	// connection's organisation, as the start found it.
	for i, c := range reg.lookup(reg.defID).conns {
		if c.openpath != nil {
			a.Org = a.Properties[0].Access[i].Org
			break
		}
	}
	st := newStores(rdb)
	if a.DevAdminKey, err = devAdminKey(ctx, st.admins, a.EmbeddedRedis); err != nil {
		return nil, err
	}

	a.EnvoySecret = envoySecret(cfg, log)
	// Bind HTTP now: guest links and the SMS status callback need its
	// address when no public URL is set.
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("HTTP listen on %s: %w", cfg.HTTPAddr, err)
	}
	a.add(func() { httpLis.Close() })
	base := publicURL(cfg, httpLis.Addr())
	if a.EnvoySim = acc.envoySim; a.EnvoySim != nil {
		// The demo's Envoy sends its webhooks here, directly.
		a.EnvoySim.SetWebhookURL(loopbackURL(httpLis.Addr()) + "/webhooks/envoy")
	}
	notifier, sms, err := newNotifier(cfg, base, log)
	if err != nil {
		return nil, err
	}
	visitors, closeVisitors, err := startVisitors(rdb, visitor.Config{
		Access: reg.guestAccess, Envoy: reg.envoyFor, DefaultProperty: reg.defID, PropertyName: reg.propertyName,
		Notifier: notifier, BaseURL: base, Audit: un.audit, Logger: log,
	})
	a.add(closeVisitors)
	if err != nil {
		return nil, err
	}
	a.Visitors = visitors
	reg.endPasses = func(ctx context.Context, property string) (int, error) {
		return visitors.EndPropertyPasses(ctx, property, "cloudkey:property-removed")
	}
	var smsStatus http.Handler
	if sms != nil {
		smsStatus = sms.CallbackHandler(func(ctx context.Context, u twilio.StatusUpdate) error {
			return visitors.UpdateDelivery(ctx, u.MessageSID, string(u.Status), u.ErrorCode, u.Reason())
		})
	}

	cacheAdmin := residentCache{store: store, svc: svc, def: reg.defID}
	rosters := rosterredis.New(rdb)
	if a.MoveOuts, err = moveout.New(moveout.Config{
		Store: moveout.NewStore(rdb), Rosters: rosters, Audit: un.auditor, Logger: log,
		Systems: func(property string) (string, []moveout.Connection, bool) {
			tz, conns, ok := reg.Directories(property)
			return tz, moveout.Connections(conns), ok
		},
		Invalidate: cacheAdmin.Invalidate,
	}); err != nil {
		return nil, err
	}
	pulls.moveouts.Store(a.MoveOuts)
	a.Server, err = server.New(ctx, serverConfig(cfg, serverDeps{
		httpListener: httpLis, tokens: tokens, resident: svc, log: log,
		stores: st, org: a.Org, property: a.Properties[0].ID, properties: reg, editor: reg, checker: reg, directories: reg, cache: cacheAdmin, rdb: rdb,
		rosters: rosters, moveouts: a.MoveOuts,
		visitors: a.Visitors, envoySecret: a.EnvoySecret, smsStatus: smsStatus,
		limiter: newLimiter(rdb, cfg, log), metrics: a.Metrics, tracing: a.Tracing, auditor: un.auditor,
	}))
	if err != nil {
		return nil, err
	}
	return a, nil
}

// ServedProperties are the properties served now, the default first:
// every replica follows the changes made in Redis (by the admin API).
func (a *App) ServedProperties() []property.Property { return a.registry.properties() }

// add keeps a closer for Close; nil is skipped.
func (a *App) add(closer func()) {
	if closer != nil {
		a.closers = append(a.closers, closer)
	}
}

// startRedis dials cfg.RedisURL, or starts the embedded Redis when it is
// empty, and guards the client with the circuit breaker. The closer
// closes the client, then the embedded Redis; it is set (maybe partial)
// with an error too.
func startRedis(cfg Config, log *slog.Logger) (rdb redis.UniversalClient, embedded bool, closer func(), err error) {
	var closers []func()
	closer = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	redisURL := cfg.RedisURL
	if redisURL == "" {
		emb, err := redisconn.StartEmbedded()
		if err != nil {
			return nil, false, closer, err
		}
		closers = append(closers, emb.Close)
		redisURL, embedded = emb.URL(), true
		log.Warn("CLOUDKEY_REDIS_URL is unset: using an embedded in-memory Redis; its data is lost on exit; not for production; it takes only this process's commands (a random password)", "addr", emb.Addr())
	}
	if rdb, err = redisconn.Dial(redisURL); err != nil {
		return nil, embedded, closer, err
	}
	redisconn.Guard(rdb, func(from, to string) {
		log.Warn("redis circuit breaker changed state", "from", from, "to", to)
	})
	closers = append(closers, func() { rdb.Close() })
	return rdb, embedded, closer, nil
}

// stores are the Redis-backed stores the server reads and writes
// directly (admin keys, the audit log, tenant contacts, buildings).
type stores struct {
	admins    *adminkey.Store
	auditLog  *auditredis.AuditLog
	contacts  *tenant.Store
	buildings *tenant.Buildings
}

// newStores makes the stores on rdb, under cache.DefaultPrefix.
func newStores(rdb redis.UniversalClient) stores {
	return stores{
		admins:    adminkey.NewStore(rdb, cache.DefaultPrefix),
		auditLog:  auditredis.NewAuditLog(rdb, ""),
		contacts:  tenant.NewStore(tenantredis.NewContacts(rdb, cache.DefaultPrefix)),
		buildings: tenant.NewBuildings(tenantredis.NewBuildings(rdb, cache.DefaultPrefix)),
	}
}

// devAdminKey makes a portfolio admin key when Redis is embedded (nobody
// else can reach that Redis to make one, and the demo's properties are
// onboarded, changed and removed with it); "" otherwise.
func devAdminKey(ctx context.Context, admins *adminkey.Store, embeddedRedis bool) (string, error) {
	if !embeddedRedis {
		return "", nil
	}
	key, _, err := admins.CreateScoped(ctx, adminkey.Scope{Portfolio: true}, "development key (embedded Redis)")
	return key, err
}

// startCache is the access-system cache in front of Redis, with its
// invalidation listener running until the closer.
func startCache(rdb redis.UniversalClient, cfg Config, log *slog.Logger, metrics *telemetry.Metrics) (*cache.Store, func()) {
	store := cache.New(rdb, cache.Config{AccountTTL: cfg.AccountTTL, EntriesTTL: cfg.EntriesTTL, LocalTTL: cfg.LocalTTL, Logger: log,
		LocalMaxBytes: cfg.CacheMemory - cfg.CacheMemory/2, Observe: metrics.ObserveCache})
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); store.Run(runCtx) }()
	return store, func() { stopRun(); <-ran }
}

// unlocking is the unlock engine and its audit trail.
type unlocking struct {
	// auditor writes the audit records to the Redis stream; App.Close
	// drains it.
	auditor *auditredis.StreamAuditor
	// audit is the auditor counting unlock results by code (metrics).
	audit  unlock.Auditor
	engine *unlock.Engine
}

// newUnlock builds the unlock engine (capped at cfg.UnlockTimeout) and
// its audit stream.
func newUnlock(rdb redis.UniversalClient, cfg Config, log *slog.Logger, metrics *telemetry.Metrics) unlocking {
	auditor := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{Logger: log, Spool: cfg.AuditSpool})
	audit := metrics.Auditor(auditor) // counts unlock results by code
	return unlocking{auditor: auditor, audit: audit, engine: unlock.NewEngine(unlockTimeout(cfg), audit)}
}

// unlockTimeout is the server's cap on one Unlock.
func unlockTimeout(cfg Config) time.Duration {
	if cfg.UnlockTimeout <= 0 {
		return DefaultUnlockTimeout
	}
	return cfg.UnlockTimeout
}

// residentCache is the admin API's cache, per property: a user's
// invalidation drops their view in every connection of the property (the
// resident service knows each connection's key); all of a property's
// users, its connections' views.
type residentCache struct {
	store *cache.Store
	svc   *unlock.Portfolio
	def   string // the default property
}

// Invalidate drops email's views in every connection of property.
func (c residentCache) Invalidate(ctx context.Context, property, email string) error {
	return c.svc.InvalidateProperty(ctx, property, email)
}

// InvalidateAll drops every user's views in property's connections. The
// default property's first connection keeps bare cache keys, which no
// prefix tells apart: for it the whole cache is dropped, as before
// properties.
func (c residentCache) InvalidateAll(ctx context.Context, property string) (int64, error) {
	conns, ok := c.svc.Connections(property)
	if !ok {
		return 0, &unlock.UnknownPropertyError{Property: property}
	}
	if property == c.def {
		return c.store.InvalidateAll(ctx)
	}
	var n int64
	for _, cn := range conns {
		m, err := c.store.DropConnection(ctx, cn.ID)
		if err != nil {
			return n, fmt.Errorf("connection %s: %w", cn.ID, err)
		}
		n += m
	}
	return n, nil
}

// envoySecret is cfg.EnvoySecret, or the development one (with a
// warning).
func envoySecret(cfg Config, log *slog.Logger) string {
	if cfg.EnvoySecret == "" {
		log.Warn("CLOUDKEY_ENVOY_SECRET is unset: Envoy webhooks are verified with the development secret; not for production")
	}
	return envoySecretOf(cfg)
}

// envoySecretOf is cfg.EnvoySecret, or the development one.
func envoySecretOf(cfg Config) string {
	if cfg.EnvoySecret != "" {
		return cfg.EnvoySecret
	}
	return DevelopmentEnvoySecret
}

// secretsKeyring is the keyring of cfg.SecretsKey, or, when it is unset,
// the development one, with a warning.
func secretsKeyring(cfg Config, log *slog.Logger) (*secrets.Keyring, error) {
	if cfg.SecretsKey == "" {
		log.Warn("CLOUDKEY_SECRETS_KEY is not set: secrets are encrypted with the development key; set it in production")
		return secrets.Development(), nil
	}
	keys, err := secrets.Parse(cfg.SecretsKey)
	if err != nil {
		return nil, fmt.Errorf("CLOUDKEY_SECRETS_KEY: %w", err)
	}
	if keys.Development() {
		log.Warn("CLOUDKEY_SECRETS_KEY's first key is the public development key: set a key of your own in production", "keys", keys)
	}
	return keys, nil
}

// SMSStatusPath is where Twilio posts the delivery statuses of guest-link
// texts, on the HTTP listener (under the public URL).
const SMSStatusPath = server.SMSStatusPath

// newNotifier delivers guest links: cfg.Notifier (tests); else emails by
// SMTP when cfg.SMTP.Addr is set and texts by Twilio when
// cfg.Twilio.AccountSID is set, with the development log notifier for
// what is not configured when SMTP is not (the log shows links and
// recipients: development only). sms is the Twilio client, for the status
// callbacks; nil without Twilio.
func newNotifier(cfg Config, baseURL string, log *slog.Logger) (n notify.Notifier, sms *twilio.Client, err error) {
	if cfg.Notifier != nil {
		return cfg.Notifier, nil, nil
	}
	var r notify.Router
	if cfg.Twilio.AccountSID != "" {
		tc := cfg.Twilio
		if cfg.TwilioAuthTokenFile != "" {
			if tc.AuthToken != "" {
				return nil, nil, errors.New("CLOUDKEY_TWILIO_AUTH_TOKEN and CLOUDKEY_TWILIO_AUTH_TOKEN_FILE are both set: set one")
			}
			b, err := os.ReadFile(cfg.TwilioAuthTokenFile)
			if err != nil {
				return nil, nil, fmt.Errorf("Twilio auth token file: %w", err)
			}
			tc.AuthToken = strings.TrimSpace(string(b))
		}
		tc.StatusCallback = baseURL + SMSStatusPath
		tc.Logger = log
		if sms, err = twilio.New(tc); err != nil {
			return nil, nil, err
		}
		r.Phone = twilio.NewNotifier(sms, nil)
		log.Info("guest links to phones are texted through Twilio", "twilio", tc)
	}
	if cfg.SMTP.Addr != "" {
		if r.Email, err = notify.NewSMTP(cfg.SMTP); err != nil {
			return nil, nil, err
		}
		return r, sms, nil
	}
	dev := notify.NewLog(log, true)
	r.Email = dev
	if r.Phone == nil {
		r.Phone = dev
		log.Warn("CLOUDKEY_SMTP_ADDR and CLOUDKEY_TWILIO_ACCOUNT_SID are unset: guest links are written to this log instead of sent")
	} else {
		log.Warn("CLOUDKEY_SMTP_ADDR is unset: guest links to emails are written to this log instead of sent")
	}
	return r, sms, nil
}

// publicURL is where guests open their links: cfg.PublicURL, or this
// server's bound HTTP address.
func publicURL(cfg Config, httpAddr net.Addr) string {
	u := strings.TrimRight(cfg.PublicURL, "/")
	if u != "" {
		return u
	}
	scheme := "http://"
	if cfg.TLSCertFile != "" {
		scheme = "https://"
	}
	return scheme + httpAddr.String()
}

// startVisitors is the guest-pass service, its scheduler running until
// the closer.
// Each property's passes go through its own Openpath connection, looked
// up at each use (guestAccess).
func startVisitors(rdb redis.UniversalClient, vc visitor.Config) (*visitor.Service, func(), error) {
	log := vc.Logger
	vc.Store = visitorredis.New(rdb, "")
	visitors, err := visitor.New(vc)
	if err != nil {
		return nil, nil, err
	}
	schedCtx, stopSched := context.WithCancel(context.Background())
	schedDone := make(chan struct{})
	go func() {
		defer close(schedDone)
		if err := visitors.RunScheduler(schedCtx); err != nil && schedCtx.Err() == nil {
			log.Error("visitor scheduler stopped", "err", err)
		}
	}()
	return visitors, func() { stopSched(); <-schedDone }, nil
}

// newLimiter is the Redis rate limiter of cfg.RateLimits; nil (no
// limits) when none is enabled.
func newLimiter(rdb redis.UniversalClient, cfg Config, log *slog.Logger) server.RateLimiter {
	if !cfg.RateLimits.Enabled() {
		return nil // a nil *ratelimit.Limiter would not be a nil interface
	}
	rl := cfg.RateLimits
	rl.Logger = log
	return ratelimit.New(rdb, rl)
}

// serverDeps is what Start built for the server.
type serverDeps struct {
	httpListener net.Listener
	tokens       identity.Verifier
	resident     *unlock.Portfolio
	log          *slog.Logger
	stores       stores
	org          string
	cache        server.CacheAdmin
	rdb          redis.UniversalClient
	visitors     *visitor.Service
	envoySecret  string
	smsStatus    http.Handler
	limiter      server.RateLimiter
	metrics      *telemetry.Metrics
	tracing      *telemetry.Tracing
	property     string // the default property
	properties   server.PropertyDirectory
	editor       server.PropertyEditor
	checker      server.ConnectionChecker
	directories  server.RosterDirectories
	rosters      *rosterredis.Store
	moveouts     *moveout.Runner
	auditor      unlock.Auditor // the audit stream's writer, for admin changes
}

// serverConfig is the server's own configuration, filled from cfg and
// what Start built: the one place server.Config is written.
func serverConfig(cfg Config, d serverDeps) server.Config {
	rdb := d.rdb
	return server.Config{
		GRPCAddr: cfg.GRPCAddr, HTTPAddr: cfg.HTTPAddr, HTTPListener: d.httpListener,
		Tokens: identity.NewCachedVerifier(d.tokens, 100_000, 10*time.Minute), Resident: d.resident, Logger: d.log,
		Admins: d.stores.admins, Org: d.org, Property: d.property, Properties: d.properties,
		PropertyEditor: d.editor, ConnectionChecker: d.checker,
		Rosters: d.rosters, Directories: d.directories, MoveOuts: d.moveouts,
		Cache: d.cache, Audit: d.stores.auditLog, AdminAudit: d.auditor,
		Contacts:  d.stores.contacts,
		Buildings: d.stores.buildings,
		Visitors:  d.visitors, EnvoySecret: []byte(d.envoySecret), SMSStatus: d.smsStatus,
		Limiter: d.limiter, TrustedProxies: cfg.TrustedProxies,
		CORSOrigins: cfg.CORSOrigins, TileFrameAncestors: cfg.TileFrameAncestors,
		TLSCertFile: cfg.TLSCertFile, TLSKeyFile: cfg.TLSKeyFile,
		GRPCConns: cfg.GRPCConns, HTTPConns: cfg.HTTPConns,
		AnswerMemory: cfg.CacheMemory / 2,
		Ready: func(ctx context.Context) map[string]error {
			return map[string]error{"redis": rdb.Ping(ctx).Err()}
		},
		Metrics: d.metrics, Tracing: d.tracing,
	}
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
	if a.stopJobs != nil {
		a.stopJobs()
	}
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
