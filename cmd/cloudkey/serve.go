package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/cloudkey/cloudkey/internal/setup"
)

func serve(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	config := setup.Flags(fs, os.Getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config()
	if err != nil {
		return err
	}
	cfg.Logger = log

	tuneGC(cfg.CacheMemory)
	app, err := setup.Start(ctx, cfg)
	if err != nil {
		return err
	}
	srv := app.Server
	scheme, grpcurlTLS, curlTLS := "http", "-plaintext", ""
	if cfg.TLSCertFile != "" {
		// Right for a self-signed certificate; drop the flags for one from a public CA.
		scheme, grpcurlTLS, curlTLS = "https", "-cacert "+cfg.TLSCertFile, "--cacert "+cfg.TLSCertFile+" "
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
		fmt.Fprintf(stdout, `Development admin API key for every property (embedded Redis; a new one each start):
  -H 'x-auth-scheme: api-token' -H 'x-auth-apikey: %s'
`, app.DevAdminKey)
	}
	return app.Serve(ctx)
}
