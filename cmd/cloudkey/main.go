// Command cloudkey serves the cloudkey API and holds its tools.
//
//	cloudkey [serve]            serve gRPC and HTTP (embedded defaults)
//	cloudkey token --email X    print a bearer token for X
//	cloudkey sim                serve the access-system simulator
//	cloudkey loadtest           measure cloudkey under load
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cloudkey/cloudkey/internal/telemetry"
)

func main() {
	log, err := newLogger(os.Stderr, os.Getenv("CLOUDKEY_LOG_FORMAT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cloudkey:", err)
		os.Exit(2)
	}
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, log); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "cloudkey:", err)
		os.Exit(1)
	}
}

// newLogger logs at info level as text (the default, for development) or
// JSON (CLOUDKEY_LOG_FORMAT=json, for production), with request ids and
// without full emails or tokens.
func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	var h slog.Handler
	switch format {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("CLOUDKEY_LOG_FORMAT: want text or json, got %q", format)
	}
	return slog.New(telemetry.LogHandler(h)), nil
}

func run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, stdout, log)
	case "token":
		return token(args, stdout)
	case "sim":
		return simulate(ctx, args, log)
	case "admin-key":
		return adminKeyCmd(ctx, args, stdout)
	case "contacts":
		return contactsCmd(ctx, args, stdout)
	case "loadtest":
		return loadtestCmd(ctx, args, stdout, log)
	case "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  cloudkey [serve] [flags]       serve gRPC and HTTP (embedded Redis and simulator by default)
  cloudkey token --email EMAIL   print a bearer token the server accepts
  cloudkey admin-key create --org ORG --name NAME
                                 make an admin API key (needs CLOUDKEY_REDIS_URL)
  cloudkey contacts import FILE --org ORG
                                 import tenant contacts from CSV (also list, grant, revoke)
  cloudkey sim [flags]           serve the Openpath-style access-system simulator
  cloudkey loadtest [flags]      measure cloudkey under load (loopback only)
Run a command with -h for its flags.`

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
