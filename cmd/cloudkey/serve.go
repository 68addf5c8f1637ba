package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/connlimit"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/internal/setup"
	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/server"
)

type serveConfig struct {
	grpcAddr, httpAddr string
	redisURL           string
	auditSpool         string
	accessURL          string
	accessEmail        string
	accessPassword     string
	accessOrg          string
	tokenSecret        string
	jwksURL            string
	tokenIssuer        string
	tokenAudience      string
	tokenLeeway        time.Duration
	limits             [6]string // unlock per user, per IP; guest per link, per IP; registration per contact, per building
	trustedProxies     string
	unlockTimeout      time.Duration
	accountTTL         time.Duration
	entriesTTL         time.Duration
	localTTL           time.Duration
	accessMaxInFlight  int
	accessBreakerOpen  time.Duration
	publicURL          string
	envoySecret        string
	smtp               notify.SMTPConfig
	corsOrigins        string
	tileAncestors      string
	tlsCert, tlsKey    string
	otlpEndpoint       string
	conns              [4]string // gRPC max, per IP; HTTP max, per IP
}

func serveFlags(fs *flag.FlagSet) *serveConfig {
	c := &serveConfig{}
	fs.StringVar(&c.grpcAddr, "grpc-addr", envOr("CLOUDKEY_GRPC_ADDR", "127.0.0.1:9090"), "gRPC listen address (env CLOUDKEY_GRPC_ADDR)")
	fs.StringVar(&c.httpAddr, "http-addr", envOr("CLOUDKEY_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address: REST gateway and /healthz (env CLOUDKEY_HTTP_ADDR)")
	fs.StringVar(&c.redisURL, "redis-url", envOr("CLOUDKEY_REDIS_URL", ""), "Redis URL: redis[s]://host:port/db, redis[s]-sentinel://h1:26379,h2:26379/db?master=NAME or redis[s]-cluster://h1:7000,h2:7001 (env CLOUDKEY_REDIS_URL; empty: embedded in-memory Redis, not for production)")
	fs.StringVar(&c.accessURL, "access-url", envOr("CLOUDKEY_ACCESS_URL", ""), "access system base URL, e.g. https://api.openpath.com (env CLOUDKEY_ACCESS_URL; empty: embedded simulator with the demo organisation)")
	fs.StringVar(&c.accessEmail, "access-email", envOr("CLOUDKEY_ACCESS_EMAIL", ""), "access-system service account email (env CLOUDKEY_ACCESS_EMAIL)")
	fs.StringVar(&c.accessPassword, "access-password", envOr("CLOUDKEY_ACCESS_PASSWORD", ""), "access-system service account password (env CLOUDKEY_ACCESS_PASSWORD)")
	fs.StringVar(&c.accessOrg, "access-org", envOr("CLOUDKEY_ACCESS_ORG", ""), "access-system organisation id (env CLOUDKEY_ACCESS_ORG; empty: the login's first org)")
	fs.StringVar(&c.tokenSecret, "token-secret", envOr("CLOUDKEY_TOKEN_SECRET", ""), "HS256 key app tokens are verified with (env CLOUDKEY_TOKEN_SECRET; empty: the development key `cloudkey token` also uses)")
	fs.StringVar(&c.jwksURL, "jwks-url", envOr("CLOUDKEY_JWKS_URL", ""), "identity provider's JWKS URL: app tokens are RS256/ES256 verified against it, HS256 is refused (env CLOUDKEY_JWKS_URL; needs --token-issuer and --token-audience)")
	fs.StringVar(&c.tokenIssuer, "token-issuer", envOr("CLOUDKEY_TOKEN_ISSUER", ""), "the only accepted `iss` of JWKS tokens (env CLOUDKEY_TOKEN_ISSUER)")
	fs.StringVar(&c.tokenAudience, "token-audience", envOr("CLOUDKEY_TOKEN_AUDIENCE", ""), "the `aud` JWKS tokens must carry (env CLOUDKEY_TOKEN_AUDIENCE)")
	fs.DurationVar(&c.tokenLeeway, "token-leeway", identity.DefaultLeeway, "clock skew tolerated on JWKS tokens' exp, nbf and iat (at most 5m)")
	def := ratelimit.Defaults()
	fs.StringVar(&c.limits[0], "rate-limit-user", envOr("CLOUDKEY_RATE_LIMIT_USER", ratelimit.FormatLimit(def.UnlockUser)), "resident unlocks per user: RATE/PERIOD[,burst=N] or off (env CLOUDKEY_RATE_LIMIT_USER)")
	fs.StringVar(&c.limits[1], "rate-limit-ip", envOr("CLOUDKEY_RATE_LIMIT_IP", ratelimit.FormatLimit(def.UnlockIP)), "resident unlocks per client IP (env CLOUDKEY_RATE_LIMIT_IP)")
	fs.StringVar(&c.limits[2], "rate-limit-guest-link", envOr("CLOUDKEY_RATE_LIMIT_GUEST_LINK", ratelimit.FormatLimit(def.GuestLink)), "guest unlocks per guest link (env CLOUDKEY_RATE_LIMIT_GUEST_LINK)")
	fs.StringVar(&c.limits[3], "rate-limit-guest-ip", envOr("CLOUDKEY_RATE_LIMIT_GUEST_IP", ratelimit.FormatLimit(def.GuestIP)), "guest unlocks per client IP (env CLOUDKEY_RATE_LIMIT_GUEST_IP)")
	fs.StringVar(&c.limits[4], "rate-limit-registration-contact", envOr("CLOUDKEY_RATE_LIMIT_REGISTRATION_CONTACT", ratelimit.FormatLimit(def.RegisterContact)), "tenant-tile visitor registrations per contact (env CLOUDKEY_RATE_LIMIT_REGISTRATION_CONTACT)")
	fs.StringVar(&c.limits[5], "rate-limit-registration-building", envOr("CLOUDKEY_RATE_LIMIT_REGISTRATION_BUILDING", ratelimit.FormatLimit(def.RegisterBuilding)), "tenant-tile visitor registrations per building, all contacts together (env CLOUDKEY_RATE_LIMIT_REGISTRATION_BUILDING)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", envOr("CLOUDKEY_TRUSTED_PROXIES", ""), "comma-separated CIDRs of proxies whose X-Forwarded-For names the client for rate limits (env CLOUDKEY_TRUSTED_PROXIES; empty: trust none)")
	fs.StringVar(&c.auditSpool, "audit-spool", envOr("CLOUDKEY_AUDIT_SPOOL", ""), "local file keeping unlock audit records that Redis could not take at shutdown; written to Redis at the next start (env CLOUDKEY_AUDIT_SPOOL; empty: <user cache dir>/cloudkey/audit.spool with an external Redis; one file per replica)")
	fs.DurationVar(&c.unlockTimeout, "unlock-timeout", 3*time.Second, "server cap on one Unlock call; the caller's deadline applies when sooner")
	fs.DurationVar(&c.accountTTL, "account-ttl", 30*time.Second, "how long a cached access-system user (and its status) is trusted: the move-out bound")
	fs.DurationVar(&c.entriesTTL, "entries-ttl", 60*time.Second, "how long a cached entry list is used")
	fs.DurationVar(&c.localTTL, "local-ttl", 30*time.Second, "how long a cache hit is served from process memory, never past the Redis copy's own expiry (invalidations still reach it at once); negative disables")
	fs.IntVar(&c.accessMaxInFlight, "access-max-inflight", 256, "most requests in flight to the access system; more wait for a slot within their deadline (negative: no bound)")
	fs.DurationVar(&c.accessBreakerOpen, "access-breaker-open", 5*time.Second, "how long the access system's circuit breaker, once open, fails calls at once before a probe")
	fs.StringVar(&c.publicURL, "public-url", envOr("CLOUDKEY_PUBLIC_URL", ""), "base URL of guest links, e.g. https://cloudkey.example.com (env CLOUDKEY_PUBLIC_URL; empty: this server's HTTP address)")
	fs.StringVar(&c.envoySecret, "envoy-secret", envOr("CLOUDKEY_ENVOY_SECRET", ""), "secret Envoy webhooks are signed with (env CLOUDKEY_ENVOY_SECRET; empty: a development secret)")
	fs.StringVar(&c.smtp.Addr, "smtp-addr", envOr("CLOUDKEY_SMTP_ADDR", ""), "SMTP relay host:port for guest links (env CLOUDKEY_SMTP_ADDR; empty: links are logged)")
	fs.StringVar(&c.smtp.From, "smtp-from", envOr("CLOUDKEY_SMTP_FROM", "cloudkey <noreply@localhost>"), "sender of guest-link emails (env CLOUDKEY_SMTP_FROM)")
	fs.StringVar(&c.smtp.Username, "smtp-username", envOr("CLOUDKEY_SMTP_USERNAME", ""), "SMTP user (env CLOUDKEY_SMTP_USERNAME)")
	fs.StringVar(&c.smtp.Password, "smtp-password", envOr("CLOUDKEY_SMTP_PASSWORD", ""), "SMTP password (env CLOUDKEY_SMTP_PASSWORD)")
	fs.StringVar(&c.corsOrigins, "cors-origins", envOr("CLOUDKEY_CORS_ORIGINS", ""), "comma-separated exact origins (https://app.example.com) whose pages may call the REST gateway (env CLOUDKEY_CORS_ORIGINS; empty: no cross-origin access)")
	fs.StringVar(&c.tileAncestors, "tile-frame-ancestors", envOr("CLOUDKEY_TILE_FRAME_ANCESTORS", ""), "CSP frame-ancestors sources allowed to frame /tile, e.g. https://*.hqo.com (env CLOUDKEY_TILE_FRAME_ANCESTORS; empty: 'none')")
	fs.StringVar(&c.tlsCert, "tls-cert", envOr("CLOUDKEY_TLS_CERT", ""), "PEM certificate (chain) file: both listeners serve TLS only; reloaded when it changes (env CLOUDKEY_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", envOr("CLOUDKEY_TLS_KEY", ""), "PEM private key file of --tls-cert (env CLOUDKEY_TLS_KEY)")
	fs.StringVar(&c.otlpEndpoint, "otlp-endpoint", envOr("CLOUDKEY_OTLP_ENDPOINT", ""), "OTLP/gRPC collector URL for traces, e.g. http://localhost:4317 (env CLOUDKEY_OTLP_ENDPOINT; empty: OTEL_EXPORTER_OTLP_ENDPOINT if set, else no tracing)")
	grpcDef, httpDef := defaultConnLimits()
	connFlag := func(i int, name, env, what string, def int) {
		fs.StringVar(&c.conns[i], name, envOr(env, "0"), fmt.Sprintf("%s (env %s; 0: derived from the descriptor limit, here %d; negative: no cap)", what, env, def))
	}
	connFlag(0, "grpc-max-conns", "CLOUDKEY_GRPC_MAX_CONNS", "most connections open at once on the gRPC port", grpcDef.Max)
	connFlag(1, "grpc-max-conns-per-ip", "CLOUDKEY_GRPC_MAX_CONNS_PER_IP", "most connections open at once on the gRPC port from one client IP (IPv6: one /64); residents behind one NAT share it", grpcDef.PerAddr)
	connFlag(2, "http-max-conns", "CLOUDKEY_HTTP_MAX_CONNS", "most connections open at once on the HTTP port", httpDef.Max)
	connFlag(3, "http-max-conns-per-ip", "CLOUDKEY_HTTP_MAX_CONNS_PER_IP", "most connections open at once on the HTTP port from one client IP (IPv6: one /64; --trusted-proxies are exempt)", httpDef.PerAddr)
	return c
}

// defaultConnLimits are the connection caps this process gets by default.
func defaultConnLimits() (grpcLim, httpLim connlimit.Limits) {
	nofile, err := connlimit.DescriptorLimit()
	if err != nil {
		return
	}
	return server.DefaultConnLimits(nofile)
}

// connLimits parses the --*-max-conns* flags.
func (c *serveConfig) connLimits() (grpcLim, httpLim connlimit.Limits, err error) {
	names := [4]string{"grpc-max-conns", "grpc-max-conns-per-ip", "http-max-conns", "http-max-conns-per-ip"}
	dst := [4]*int{&grpcLim.Max, &grpcLim.PerAddr, &httpLim.Max, &httpLim.PerAddr}
	for i, v := range c.conns {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return grpcLim, httpLim, fmt.Errorf("--%s: want a number of connections, got %q", names[i], v)
		}
		*dst[i] = n
	}
	return grpcLim, httpLim, nil
}

func serve(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := serveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, d := range map[string]time.Duration{"unlock-timeout": c.unlockTimeout, "account-ttl": c.accountTTL, "entries-ttl": c.entriesTTL, "access-breaker-open": c.accessBreakerOpen} {
		if d <= 0 {
			return fmt.Errorf("--%s must be positive, got %v", name, d)
		}
	}
	limits, proxies, err := c.rateLimits()
	if err != nil {
		return err
	}
	grpcConns, httpConns, err := c.connLimits()
	if err != nil {
		return err
	}

	tuneGC()
	app, err := setup.Start(ctx, setup.Config{
		GRPCAddr: c.grpcAddr, HTTPAddr: c.httpAddr,
		RedisURL: c.redisURL, AccessURL: c.accessURL, AuditSpool: c.spoolPath(),
		AccessEmail: c.accessEmail, AccessPassword: c.accessPassword, AccessOrg: c.accessOrg,
		TokenSecret: c.tokenSecret, JWKSURL: c.jwksURL, TokenIssuer: c.tokenIssuer,
		TokenAudience: c.tokenAudience, TokenLeeway: c.tokenLeeway, UnlockTimeout: c.unlockTimeout,
		AccountTTL: c.accountTTL, EntriesTTL: c.entriesTTL, LocalTTL: c.localTTL, Logger: log,
		AccessMaxInFlight: c.accessMaxInFlight, AccessBreakerOpen: c.accessBreakerOpen,
		PublicURL: c.publicURL, EnvoySecret: c.envoySecret, SMTP: c.smtp,
		RateLimits: limits, TrustedProxies: proxies,
		CORSOrigins: splitList(c.corsOrigins), TileFrameAncestors: c.tileAncestors,
		TLSCertFile: c.tlsCert, TLSKeyFile: c.tlsKey,
		GRPCConns: grpcConns, HTTPConns: httpConns,
		Tracing: telemetry.TracingConfig{Endpoint: c.otlpEndpoint},
	})
	if err != nil {
		return err
	}
	srv := app.Server
	scheme, grpcurlTLS, curlTLS := "http", "-plaintext", ""
	if c.tlsCert != "" {
		// Right for a self-signed certificate; drop the flags for one from a public CA.
		scheme, grpcurlTLS, curlTLS = "https", "-cacert "+c.tlsCert, "--cacert "+c.tlsCert+" "
	}
	fmt.Fprintf(stdout, `cloudkey is serving
  gRPC  %[1]s   (reflection on: grpcurl %[3]s %[1]s list)
  HTTP  %[5]s://%[2]s   (REST gateway, /healthz, /metrics)
Get a demo token (demo users: alice@, bob@, carol@, erin@example.com):
  TOKEN=$(go run ./cmd/cloudkey token --email alice@example.com)
  curl %[4]s-H "Authorization: Bearer $TOKEN" %[5]s://%[2]s/v1/me/entries
  grpcurl %[3]s -H "authorization: Bearer $TOKEN" %[1]s cloudkey.v1.ResidentService/ListEntries
`, srv.GRPCAddr(), srv.HTTPAddr(), grpcurlTLS, curlTLS, scheme)
	if app.DevAdminKey != "" {
		fmt.Fprintf(stdout, `Development admin API key for organisation %s (embedded Redis; a new one each start):
  -H 'x-auth-scheme: api-token' -H 'x-auth-apikey: %s'
`, app.Org, app.DevAdminKey)
	}
	return app.Serve(ctx)
}

// rateLimits parses the --rate-limit-* and --trusted-proxies flags.
func (c *serveConfig) rateLimits() (ratelimit.Config, []netip.Prefix, error) {
	var out ratelimit.Config
	names := [6]string{"rate-limit-user", "rate-limit-ip", "rate-limit-guest-link", "rate-limit-guest-ip",
		"rate-limit-registration-contact", "rate-limit-registration-building"}
	dst := [6]*ratelimit.Limit{&out.UnlockUser, &out.UnlockIP, &out.GuestLink, &out.GuestIP,
		&out.RegisterContact, &out.RegisterBuilding}
	for i, s := range c.limits {
		l, err := ratelimit.ParseLimit(s)
		if err != nil {
			return out, nil, fmt.Errorf("--%s: %w", names[i], err)
		}
		*dst[i] = l
	}
	var proxies []netip.Prefix
	for _, s := range splitList(c.trustedProxies) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return out, nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		proxies = append(proxies, p.Masked())
	}
	return out, proxies, nil
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
func (c *serveConfig) spoolPath() string {
	if c.auditSpool != "" || c.redisURL == "" {
		return c.auditSpool
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "cloudkey", "audit.spool")
}
