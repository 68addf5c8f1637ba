package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cloudkey/cloudkey/notify"
	"github.com/cloudkey/cloudkey/setup"
)

type serveConfig struct {
	grpcAddr, httpAddr string
	redisURL           string
	accessURL          string
	accessEmail        string
	accessPassword     string
	accessOrg          string
	tokenSecret        string
	unlockTimeout      time.Duration
	accountTTL         time.Duration
	entriesTTL         time.Duration
	localTTL           time.Duration
	publicURL          string
	envoySecret        string
	smtp               notify.SMTPConfig
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
	fs.DurationVar(&c.unlockTimeout, "unlock-timeout", 3*time.Second, "server cap on one Unlock call; the caller's deadline applies when sooner")
	fs.DurationVar(&c.accountTTL, "account-ttl", 30*time.Second, "how long a cached access-system user (and its status) is trusted: the move-out bound")
	fs.DurationVar(&c.entriesTTL, "entries-ttl", 60*time.Second, "how long a cached entry list is used")
	fs.DurationVar(&c.localTTL, "local-ttl", 2*time.Second, "how long a cache hit is served from process memory (invalidations still reach it at once); negative disables")
	fs.StringVar(&c.publicURL, "public-url", envOr("CLOUDKEY_PUBLIC_URL", ""), "base URL of guest links, e.g. https://cloudkey.example.com (env CLOUDKEY_PUBLIC_URL; empty: this server's HTTP address)")
	fs.StringVar(&c.envoySecret, "envoy-secret", envOr("CLOUDKEY_ENVOY_SECRET", ""), "secret Envoy webhooks are signed with (env CLOUDKEY_ENVOY_SECRET; empty: a development secret)")
	fs.StringVar(&c.smtp.Addr, "smtp-addr", envOr("CLOUDKEY_SMTP_ADDR", ""), "SMTP relay host:port for guest links (env CLOUDKEY_SMTP_ADDR; empty: links are logged)")
	fs.StringVar(&c.smtp.From, "smtp-from", envOr("CLOUDKEY_SMTP_FROM", "cloudkey <noreply@localhost>"), "sender of guest-link emails (env CLOUDKEY_SMTP_FROM)")
	fs.StringVar(&c.smtp.Username, "smtp-username", envOr("CLOUDKEY_SMTP_USERNAME", ""), "SMTP user (env CLOUDKEY_SMTP_USERNAME)")
	fs.StringVar(&c.smtp.Password, "smtp-password", envOr("CLOUDKEY_SMTP_PASSWORD", ""), "SMTP password (env CLOUDKEY_SMTP_PASSWORD)")
	return c
}

func serve(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	c := serveFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	for name, d := range map[string]time.Duration{"unlock-timeout": c.unlockTimeout, "account-ttl": c.accountTTL, "entries-ttl": c.entriesTTL} {
		if d <= 0 {
			return fmt.Errorf("--%s must be positive, got %v", name, d)
		}
	}

	app, err := setup.Start(ctx, setup.Config{
		GRPCAddr: c.grpcAddr, HTTPAddr: c.httpAddr,
		RedisURL: c.redisURL, AccessURL: c.accessURL,
		AccessEmail: c.accessEmail, AccessPassword: c.accessPassword, AccessOrg: c.accessOrg,
		TokenSecret: c.tokenSecret, UnlockTimeout: c.unlockTimeout,
		AccountTTL: c.accountTTL, EntriesTTL: c.entriesTTL, LocalTTL: c.localTTL, Logger: log,
		PublicURL: c.publicURL, EnvoySecret: c.envoySecret, SMTP: c.smtp,
	})
	if err != nil {
		return err
	}
	srv := app.Server
	fmt.Fprintf(stdout, `cloudkey is serving
  gRPC  %[1]s   (reflection on: grpcurl -plaintext %[1]s list)
  HTTP  http://%[2]s   (REST gateway, /healthz)
Get a demo token (demo users: alice@, bob@, carol@, erin@example.com):
  TOKEN=$(go run ./cmd/cloudkey token --email alice@example.com)
  curl -H "Authorization: Bearer $TOKEN" http://%[2]s/v1/me/entries
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" %[1]s cloudkey.v1.ResidentService/ListEntries
`, srv.GRPCAddr(), srv.HTTPAddr())
	if app.DevAdminKey != "" {
		fmt.Fprintf(stdout, `Development admin API key for organisation %s (embedded Redis; a new one each start):
  -H 'x-auth-scheme: api-token' -H 'x-auth-apikey: %s'
`, app.Org, app.DevAdminKey)
	}
	return app.Serve(ctx)
}
