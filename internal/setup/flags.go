package setup

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/connlimit"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/server"
)

// DefaultUnlockTimeout caps one Unlock call when Config.UnlockTimeout is
// not positive, and is --unlock-timeout's default.
const DefaultUnlockTimeout = 3 * time.Second

// A Setting is one of `cloudkey serve`'s settings, declared once: its
// flag, the environment variable read as its default, its default and
// its doc, and the Config field it fills. Exactly one of Str, Dur, Int
// and Parse is set.
type Setting struct {
	// Flag is the flag's name, without dashes. Empty: the setting is read
	// from Env alone (string settings only), listed after the flags in
	// the help, without its value.
	Flag string
	// Env, when set, is the environment variable whose non-empty value
	// replaces Default (string settings only: Str or Parse).
	Env string
	// Default is the value when neither the flag nor Env is given, as
	// written on the command line ("3s", "256", "30/1m,burst=10").
	Default string
	// Doc is the help text. With Env, "(env NAME)" follows it, or
	// "(env NAME; Note)" when Note is set.
	Doc, Note string
	// Positive rejects a duration that is not positive.
	Positive bool
	// Secret marks a credential, whose value is never shown: the help of
	// its flag does not show the environment's value as the default.
	Secret bool

	// Str is the string field the value is stored in as given.
	Str func(*Config) *string
	// Dur and Int are the duration and int fields of the setting.
	Dur func(*Config) *time.Duration
	Int func(*Config) *int
	// Parse stores a string value after fs.Parse, in table order; its
	// error is reported after "--flag: ".
	Parse func(*Config, string) error
}

// usage is the help line flag.PrintDefaults shows.
func (s Setting) usage() string {
	switch {
	case s.Env == "":
		return s.Doc
	case s.Note == "":
		return fmt.Sprintf("%s (env %s)", s.Doc, s.Env)
	}
	return fmt.Sprintf("%s (env %s; %s)", s.Doc, s.Env, s.Note)
}

// name is the flag ("--flag") or, for an environment-only setting, the
// variable, for errors.
func (s Setting) name() string {
	if s.Flag == "" {
		return s.Env
	}
	return "--" + s.Flag
}

// Settings is `cloudkey serve`'s settings table, in the order their
// values are checked. The connection caps' help names the caps derived
// from this process's descriptor limit.
func Settings() []Setting {
	rl := ratelimit.Defaults()
	grpcDef, httpDef := defaultConnLimits()
	limit := func(flag, env string, def ratelimit.Limit, doc string, field func(*ratelimit.Config) *ratelimit.Limit) Setting {
		return Setting{Flag: flag, Env: env, Default: ratelimit.FormatLimit(def), Doc: doc,
			Parse: func(c *Config, v string) error {
				l, err := ratelimit.ParseLimit(v)
				*field(&c.RateLimits) = l
				return err
			}}
	}
	conns := func(flag, env, doc string, def int, field func(*Config) *int) Setting {
		return Setting{Flag: flag, Env: env, Default: "0", Doc: doc,
			Note: fmt.Sprintf("0: derived from the descriptor limit, here %d; negative: no cap", def),
			Parse: func(c *Config, v string) error {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					return fmt.Errorf("want a number of connections, got %q", v)
				}
				*field(c) = n
				return nil
			}}
	}
	return []Setting{
		{Flag: "grpc-addr", Env: "CLOUDKEY_GRPC_ADDR", Default: "127.0.0.1:9090",
			Doc: "gRPC listen address", Str: func(c *Config) *string { return &c.GRPCAddr }},
		{Flag: "http-addr", Env: "CLOUDKEY_HTTP_ADDR", Default: "127.0.0.1:8080",
			Doc: "HTTP listen address: REST gateway and /healthz", Str: func(c *Config) *string { return &c.HTTPAddr }},
		{Flag: "redis-url", Env: "CLOUDKEY_REDIS_URL",
			Doc:  "Redis URL: redis[s]://host:port/db, redis[s]-sentinel://h1:26379,h2:26379/db?master=NAME or redis[s]-cluster://h1:7000,h2:7001",
			Note: "empty: embedded in-memory Redis, not for production", Str: func(c *Config) *string { return &c.RedisURL }},
		{Flag: "access-url", Env: "CLOUDKEY_ACCESS_URL",
			Doc:  "access system base URL, e.g. https://api.openpath.com",
			Note: "empty: embedded simulator with the demo organisation", Str: func(c *Config) *string { return &c.AccessURL }},
		{Flag: "properties", Env: "CLOUDKEY_PROPERTIES",
			Doc:  "properties file (YAML): the property, its access-system connections (openpath, kisi) and where their secrets are",
			Note: "empty: the CLOUDKEY_ACCESS_* settings describe one Openpath connection", Str: func(c *Config) *string { return &c.PropertiesFile }},
		{Flag: "access-email", Env: "CLOUDKEY_ACCESS_EMAIL",
			Doc: "access-system service account email", Str: func(c *Config) *string { return &c.AccessEmail }},
		{Flag: "access-password", Env: "CLOUDKEY_ACCESS_PASSWORD",
			Doc: "access-system service account password", Secret: true, Str: func(c *Config) *string { return &c.AccessPassword }},
		{Flag: "access-org", Env: "CLOUDKEY_ACCESS_ORG",
			Doc: "access-system organisation id", Note: "empty: the login's first org", Str: func(c *Config) *string { return &c.AccessOrg }},
		{Flag: "token-secret", Env: "CLOUDKEY_TOKEN_SECRET",
			Doc:  "HS256 key app tokens are verified with",
			Note: "empty: the development key `cloudkey token` also uses", Secret: true, Str: func(c *Config) *string { return &c.TokenSecret }},
		{Env: "CLOUDKEY_SECRETS_KEY", Secret: true,
			Doc:  "keys stored credentials (Kisi logins) are encrypted with: comma-separated id:base64key entries of 32-byte keys; the first encrypts, all decrypt (`cloudkey secrets new-key` makes one)",
			Note: "empty: the public development key", Str: func(c *Config) *string { return &c.SecretsKey }},
		{Flag: "jwks-url", Env: "CLOUDKEY_JWKS_URL",
			Doc:  "identity provider's JWKS URL: app tokens are RS256/ES256 verified against it, HS256 is refused",
			Note: "needs --token-issuer and --token-audience", Str: func(c *Config) *string { return &c.JWKSURL }},
		{Flag: "token-issuer", Env: "CLOUDKEY_TOKEN_ISSUER",
			Doc: "the only accepted `iss` of JWKS tokens", Str: func(c *Config) *string { return &c.TokenIssuer }},
		{Flag: "token-audience", Env: "CLOUDKEY_TOKEN_AUDIENCE",
			Doc: "the `aud` JWKS tokens must carry", Str: func(c *Config) *string { return &c.TokenAudience }},
		{Flag: "token-leeway", Default: identity.DefaultLeeway.String(),
			Doc: "clock skew tolerated on JWKS tokens' exp, nbf and iat (at most 5m)", Dur: func(c *Config) *time.Duration { return &c.TokenLeeway }},
		limit("rate-limit-user", "CLOUDKEY_RATE_LIMIT_USER", rl.UnlockUser,
			"resident unlocks per user: RATE/PERIOD[,burst=N] or off", func(r *ratelimit.Config) *ratelimit.Limit { return &r.UnlockUser }),
		limit("rate-limit-ip", "CLOUDKEY_RATE_LIMIT_IP", rl.UnlockIP,
			"resident unlocks per client IP", func(r *ratelimit.Config) *ratelimit.Limit { return &r.UnlockIP }),
		limit("rate-limit-guest-link", "CLOUDKEY_RATE_LIMIT_GUEST_LINK", rl.GuestLink,
			"guest unlocks per guest link", func(r *ratelimit.Config) *ratelimit.Limit { return &r.GuestLink }),
		limit("rate-limit-guest-ip", "CLOUDKEY_RATE_LIMIT_GUEST_IP", rl.GuestIP,
			"guest unlocks per client IP", func(r *ratelimit.Config) *ratelimit.Limit { return &r.GuestIP }),
		limit("rate-limit-registration-contact", "CLOUDKEY_RATE_LIMIT_REGISTRATION_CONTACT", rl.RegisterContact,
			"tenant-tile visitor registrations per contact", func(r *ratelimit.Config) *ratelimit.Limit { return &r.RegisterContact }),
		limit("rate-limit-registration-building", "CLOUDKEY_RATE_LIMIT_REGISTRATION_BUILDING", rl.RegisterBuilding,
			"tenant-tile visitor registrations per building, all contacts together", func(r *ratelimit.Config) *ratelimit.Limit { return &r.RegisterBuilding }),
		{Flag: "trusted-proxies", Env: "CLOUDKEY_TRUSTED_PROXIES",
			Doc:   "comma-separated CIDRs of proxies whose X-Forwarded-For names the client for rate limits",
			Note:  "empty: trust none",
			Parse: parseTrustedProxies},
		{Flag: "audit-spool", Env: "CLOUDKEY_AUDIT_SPOOL",
			Doc:  "local file keeping unlock audit records that Redis could not take at shutdown; written to Redis at the next start",
			Note: "empty: <user cache dir>/cloudkey/audit.spool with an external Redis; one file per replica",
			Str:  func(c *Config) *string { return &c.AuditSpool }},
		{Flag: "unlock-timeout", Default: DefaultUnlockTimeout.String(), Positive: true,
			Doc: "server cap on one Unlock call; the caller's deadline applies when sooner", Dur: func(c *Config) *time.Duration { return &c.UnlockTimeout }},
		{Flag: "account-ttl", Default: "30s", Positive: true,
			Doc: "how long a cached access-system user (and its status) is trusted: the move-out bound", Dur: func(c *Config) *time.Duration { return &c.AccountTTL }},
		{Flag: "entries-ttl", Default: "1m0s", Positive: true,
			Doc: "how long a cached entry list is used", Dur: func(c *Config) *time.Duration { return &c.EntriesTTL }},
		{Flag: "local-ttl", Default: "30s",
			Doc: "how long a cache hit is served from process memory, never past the Redis copy's own expiry (invalidations still reach it at once); negative disables",
			Dur: func(c *Config) *time.Duration { return &c.LocalTTL }},
		{Flag: "cache-memory", Env: "CLOUDKEY_CACHE_MEMORY", Default: DefaultCacheMemory,
			Doc: "process memory for cached users (a size: 64MiB, 512MB, 1GiB), half for their views, half for their encoded entry lists; the users read least lately go first and are read from Redis when they come back",
			Parse: func(c *Config, v string) error {
				n, err := ParseBytes(v)
				if err != nil {
					return err
				}
				if n < 1<<20 {
					return fmt.Errorf("want at least 1MiB, got %q", v)
				}
				c.CacheMemory = n
				return nil
			}},
		{Flag: "access-max-inflight", Default: "256",
			Doc: "most requests in flight to the access system; more wait for a slot within their deadline (negative: no bound)",
			Int: func(c *Config) *int { return &c.AccessMaxInFlight }},
		{Flag: "access-breaker-open", Default: "5s", Positive: true,
			Doc: "how long the access system's circuit breaker, once open, fails calls at once before a probe",
			Dur: func(c *Config) *time.Duration { return &c.AccessBreakerOpen }},
		{Flag: "schedule-poll", Default: "15s", Positive: true,
			Doc: "how often each replica looks for scheduled jobs due (the roster pulls of the properties' pms blocks); each runs once across replicas",
			Dur: func(c *Config) *time.Duration { return &c.SchedulePoll }},
		{Flag: "demo-pms", Default: "true",
			Doc: "with the embedded demo (no properties configured): pull the demo properties' rosters from an embedded Buildium simulator, hourly and at start",
			Parse: func(c *Config, v string) error {
				b, err := strconv.ParseBool(v)
				c.DemoPMS = b
				return err
			}},
		{Flag: "public-url", Env: "CLOUDKEY_PUBLIC_URL",
			Doc:  "base URL of guest links, e.g. https://cloudkey.example.com",
			Note: "empty: this server's HTTP address", Str: func(c *Config) *string { return &c.PublicURL }},
		{Flag: "envoy-secret", Env: "CLOUDKEY_ENVOY_SECRET",
			Doc: "secret Envoy webhooks are signed with", Note: "empty: a development secret", Secret: true, Str: func(c *Config) *string { return &c.EnvoySecret }},
		{Flag: "smtp-addr", Env: "CLOUDKEY_SMTP_ADDR",
			Doc: "SMTP relay host:port for guest links", Note: "empty: links are logged", Str: func(c *Config) *string { return &c.SMTP.Addr }},
		{Flag: "smtp-from", Env: "CLOUDKEY_SMTP_FROM", Default: "cloudkey <noreply@localhost>",
			Doc: "sender of guest-link emails", Str: func(c *Config) *string { return &c.SMTP.From }},
		{Flag: "smtp-username", Env: "CLOUDKEY_SMTP_USERNAME",
			Doc: "SMTP user", Str: func(c *Config) *string { return &c.SMTP.Username }},
		{Flag: "smtp-password", Env: "CLOUDKEY_SMTP_PASSWORD",
			Doc: "SMTP password", Secret: true, Str: func(c *Config) *string { return &c.SMTP.Password }},
		{Flag: "twilio-account-sid", Env: "CLOUDKEY_TWILIO_ACCOUNT_SID",
			Doc: "Twilio account SID (AC…) texting guest links to visitors' phones", Note: "empty: no SMS (links to phones are logged when SMTP is unset too)",
			Str: func(c *Config) *string { return &c.Twilio.AccountSID }},
		{Flag: "twilio-auth-token", Env: "CLOUDKEY_TWILIO_AUTH_TOKEN",
			Doc: "Twilio auth token (or --twilio-auth-token-file)", Secret: true, Str: func(c *Config) *string { return &c.Twilio.AuthToken }},
		{Flag: "twilio-auth-token-file", Env: "CLOUDKEY_TWILIO_AUTH_TOKEN_FILE",
			Doc: "file holding the Twilio auth token", Str: func(c *Config) *string { return &c.TwilioAuthTokenFile }},
		{Flag: "twilio-from", Env: "CLOUDKEY_TWILIO_FROM",
			Doc: "sender of guest-link texts: a Twilio number of the account (E.164)", Note: "or --twilio-messaging-service",
			Str: func(c *Config) *string { return &c.Twilio.From }},
		{Flag: "twilio-messaging-service", Env: "CLOUDKEY_TWILIO_MESSAGING_SERVICE_SID",
			Doc: "Twilio Messaging Service SID (MG…) choosing the sender, instead of --twilio-from", Str: func(c *Config) *string { return &c.Twilio.MessagingServiceSID }},
		{Flag: "twilio-url", Env: "CLOUDKEY_TWILIO_URL",
			Doc: "Twilio API base URL", Note: "empty: https://api.twilio.com", Str: func(c *Config) *string { return &c.Twilio.BaseURL }},
		{Flag: "cors-origins", Env: "CLOUDKEY_CORS_ORIGINS",
			Doc:   "comma-separated exact origins (https://app.example.com) whose pages may call the REST gateway",
			Note:  "empty: no cross-origin access",
			Parse: func(c *Config, v string) error { c.CORSOrigins = splitList(v); return nil }},
		{Flag: "tile-frame-ancestors", Env: "CLOUDKEY_TILE_FRAME_ANCESTORS",
			Doc:  "CSP frame-ancestors sources allowed to frame /tile, e.g. https://*.hqo.com",
			Note: "empty: 'none'", Str: func(c *Config) *string { return &c.TileFrameAncestors }},
		{Flag: "tls-cert", Env: "CLOUDKEY_TLS_CERT",
			Doc: "PEM certificate (chain) file: both listeners serve TLS only; reloaded when it changes", Str: func(c *Config) *string { return &c.TLSCertFile }},
		{Flag: "tls-key", Env: "CLOUDKEY_TLS_KEY",
			Doc: "PEM private key file of --tls-cert", Str: func(c *Config) *string { return &c.TLSKeyFile }},
		{Flag: "otlp-endpoint", Env: "CLOUDKEY_OTLP_ENDPOINT",
			Doc:  "OTLP/gRPC collector URL for traces, e.g. http://localhost:4317",
			Note: "empty: OTEL_EXPORTER_OTLP_ENDPOINT if set, else no tracing", Str: func(c *Config) *string { return &c.Tracing.Endpoint }},
		conns("grpc-max-conns", "CLOUDKEY_GRPC_MAX_CONNS", "most connections open at once on the gRPC port",
			grpcDef.Max, func(c *Config) *int { return &c.GRPCConns.Max }),
		conns("grpc-max-conns-per-ip", "CLOUDKEY_GRPC_MAX_CONNS_PER_IP", "most connections open at once on the gRPC port from one client IP (IPv6: one /64); residents behind one NAT share it",
			grpcDef.PerAddr, func(c *Config) *int { return &c.GRPCConns.PerAddr }),
		conns("http-max-conns", "CLOUDKEY_HTTP_MAX_CONNS", "most connections open at once on the HTTP port",
			httpDef.Max, func(c *Config) *int { return &c.HTTPConns.Max }),
		conns("http-max-conns-per-ip", "CLOUDKEY_HTTP_MAX_CONNS_PER_IP", "most connections open at once on the HTTP port from one client IP (IPv6: one /64; --trusted-proxies are exempt)",
			httpDef.PerAddr, func(c *Config) *int { return &c.HTTPConns.PerAddr }),
	}
}

// Flags registers every setting of Settings on fs, a string setting
// defaulting to its environment variable (read with getenv) when that is
// not empty. A Secret setting's environment value applies when its flag
// is not given, without showing in the help; an environment-only one (no
// Flag) is read from getenv alone and listed by name and doc after the
// flags in fs.Usage. After fs.Parse, the returned function gives the Config: the
// durations checked, the parsed settings parsed in table order, and the
// audit spool defaulted (spoolPath). Logger and the test hooks are left
// to the caller.
func Flags(fs *flag.FlagSet, getenv func(string) string) func() (Config, error) {
	c := new(Config)
	settings := Settings()
	raw := make([]*string, len(settings))
	envValue := make([]string, len(settings)) // a Secret or env-only setting's value from Env
	var envOnly []Setting
	for i, s := range settings {
		def := s.Default
		if s.Env != "" {
			if s.Str == nil && s.Parse == nil {
				panic("setup: " + s.name() + ": Env on a setting that is not a string")
			}
			if v := getenv(s.Env); v != "" {
				def = v
			}
		}
		if s.Secret && s.Str == nil && s.Parse == nil {
			panic("setup: " + s.name() + ": Secret on a setting that is not a string")
		}
		if s.Flag == "" || s.Secret {
			envValue[i], def = def, s.Default // the help shows no secret
		}
		switch {
		case s.Flag == "" && s.Env == "":
			panic("setup: a setting has neither Flag nor Env")
		case s.Flag == "":
			envOnly = append(envOnly, s)
			if s.Parse != nil {
				raw[i] = new(string)
			}
		case s.Str != nil:
			fs.StringVar(s.Str(c), s.Flag, def, s.usage())
		case s.Parse != nil:
			raw[i] = fs.String(s.Flag, def, s.usage())
		case s.Dur != nil:
			d, err := time.ParseDuration(def)
			if err != nil {
				panic("setup: " + s.name() + ": default: " + err.Error())
			}
			fs.DurationVar(s.Dur(c), s.Flag, d, s.usage())
		case s.Int != nil:
			n, err := strconv.Atoi(def)
			if err != nil {
				panic("setup: " + s.name() + ": default: " + err.Error())
			}
			fs.IntVar(s.Int(c), s.Flag, n, s.usage())
		default:
			panic("setup: " + s.name() + ": no field")
		}
	}
	if len(envOnly) > 0 {
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
			fmt.Fprintln(fs.Output(), "Environment only:")
			for _, s := range envOnly {
				fmt.Fprintf(fs.Output(), "  %s\n    \t%s", s.Env, s.Doc)
				if s.Note != "" {
					fmt.Fprintf(fs.Output(), " (%s)", s.Note)
				}
				fmt.Fprintln(fs.Output())
			}
		}
	}
	return func() (Config, error) {
		onCommandLine := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
		for i, s := range settings {
			if (s.Flag == "" || s.Secret) && !onCommandLine[s.Flag] {
				if s.Str != nil {
					*s.Str(c) = envValue[i]
				} else {
					*raw[i] = envValue[i]
				}
			}
		}
		for _, s := range settings {
			if s.Positive && *s.Dur(c) <= 0 {
				return Config{}, fmt.Errorf("%s must be positive, got %v", s.name(), *s.Dur(c))
			}
		}
		for i, s := range settings {
			if s.Parse == nil {
				continue
			}
			if err := s.Parse(c, *raw[i]); err != nil {
				return Config{}, fmt.Errorf("%s: %w", s.name(), err)
			}
		}
		out := *c
		out.AuditSpool = spoolPath(out.AuditSpool, out.RedisURL)
		return out, nil
	}
}

// defaultConnLimits are the connection caps this process gets by default.
func defaultConnLimits() (grpcLim, httpLim connlimit.Limits) {
	nofile, err := connlimit.DescriptorLimit()
	if err != nil {
		return
	}
	return server.DefaultConnLimits(nofile)
}

// DefaultCacheMemory is --cache-memory's default. At about 0.9 KB a user
// for the view and 0.4 KB for the encoded answer (five doors), it keeps
// some 35,000 users' views per replica in process memory, several
// buildings' residents coming back within the views' 30 s; the rest cost
// a Redis round trip. With serve's soft memory limit (cmd/cloudkey,
// --cache-memory + 160 MiB) a replica stays near 230 MB resident however
// many users the property has.
const DefaultCacheMemory = "64MiB"

// ParseBytes parses a size: a number of bytes with an optional unit, KB,
// MB, GB (powers of 1000) or KiB, MiB, GiB (of 1024), e.g. "64MiB".
func ParseBytes(v string) (int64, error) {
	s := strings.TrimSpace(v)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a size such as 64MiB or 512MB, got %q", v)
	}
	return n * mult, nil
}

// parseTrustedProxies parses --trusted-proxies: CIDRs or bare addresses.
func parseTrustedProxies(c *Config, v string) error {
	c.TrustedProxies = nil
	for _, s := range splitList(v) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fmt.Errorf("%q is not a CIDR or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// spoolPath is --audit-spool, or with an external Redis (whose audit
// stream outlives this process) a file in the user's cache directory.
// The embedded Redis dies with the process, so it gets no spool.
func spoolPath(spool, redisURL string) string {
	if spool != "" || redisURL == "" {
		return spool
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "cloudkey", "audit.spool")
}
