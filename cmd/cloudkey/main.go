// Command cloudkey serves the cloudkey API and holds its tools:
//
//	cloudkey [serve] [flags]                  serve gRPC and HTTP (embedded Redis and simulator by default)
//	cloudkey token --email EMAIL              print a bearer token the server accepts
//	cloudkey admin-key create|revoke [flags]  make or revoke an admin API key
//	cloudkey contacts import|list|grant|revoke [flags]
//	                                          manage tenant contacts and their tile grants
//	cloudkey roster import|versions [flags]   import PMS resident rosters; list their versions
//	cloudkey secrets new-key|rotate [flags]   make a CLOUDKEY_SECRETS_KEY key; re-encrypt stored secrets with it
//	cloudkey sim [--kind openpath|kisi] [flags]
//	                                          serve an access-system simulator (Openpath or Kisi)
//	cloudkey loadtest [flags]                 measure cloudkey under load (loopback only)
//	cloudkey help [COMMAND]                   list the commands, or COMMAND's flags
//
// `cloudkey -h` (--help, help) lists the commands; -h on any command or
// subcommand prints its usage. Both exit 0; an unknown command or flag
// exits 2, any other failure 1.
//
// The package owns the command line only: commands, flags, environment
// defaults, output and exit codes. It starts the program through
// internal/setup and the packages' public APIs; the logic is theirs
// (server: the transport; unlock, visitor, tenant, access: the domain;
// loadtest). It must not import the generated API (gen/...), gRPC or a
// Redis client (go-redis) itself (internal/layout checks).
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
	"strings"
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
	err = run(ctx, os.Args[1:], os.Stdout, log)
	code := exitCode(err)
	if code != 0 {
		fmt.Fprintln(os.Stderr, "cloudkey:", err)
	}
	os.Exit(code)
}

// exitCode is 0 for success and for -h (the usage is printed), 2 for an
// unknown command or flag (usage errors), 1 for any other failure.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue), isFlagError(err):
		return 2
	}
	return 1
}

// usageError is a command line cloudkey does not understand.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// isFlagError reports whether err is a flag.FlagSet.Parse error (an
// unknown or malformed flag), which the flag set has already printed
// with its usage. The flag package gives them no type; these are its
// messages.
func isFlagError(err error) bool {
	for _, p := range []string{
		"flag provided but not defined: ", "bad flag syntax: ", "flag needs an argument: ",
		"invalid value ", "invalid boolean value ", "invalid boolean flag ",
	} {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
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
	} else if len(args) > 0 && isHelp(args[0]) {
		cmd, args = "help", nil // the commands; `cloudkey serve -h` has serve's flags
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
	case "roster":
		return rosterCmd(ctx, args, stdout)
	case "secrets":
		return secretsCmd(ctx, args, stdout)
	case "loadtest":
		return loadtestCmd(ctx, args, stdout, log)
	case "help":
		if len(args) > 0 && !isHelp(args[0]) {
			if !commands[args[0]] {
				return usageError{fmt.Errorf("help: unknown command %q\n%s", args[0], usage)}
			}
			return run(ctx, []string{args[0], "-h"}, stdout, log)
		}
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError{fmt.Errorf("unknown command %q\n%s", cmd, usage)}
}

// commands are run's commands, for help.
var commands = map[string]bool{"serve": true, "token": true, "admin-key": true, "contacts": true, "roster": true, "secrets": true, "sim": true, "loadtest": true}

// isHelp reports whether arg asks for help, as the flag package takes it.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "--h", "help":
		return true
	}
	return false
}

const usage = `usage:
  cloudkey [serve] [flags]       serve gRPC and HTTP (embedded Redis and simulator by default)
  cloudkey token --email EMAIL   print a bearer token the server accepts
  cloudkey admin-key create --org ORG --name NAME
                                 make an admin API key (needs CLOUDKEY_REDIS_URL; also revoke)
  cloudkey contacts import FILE --org ORG
                                 import tenant contacts from CSV (also list, grant, revoke)
  cloudkey roster import FILE --property P
                                 import a PMS resident roster from CSV (also versions)
  cloudkey secrets new-key|rotate
                                 make a key for CLOUDKEY_SECRETS_KEY; re-encrypt stored secrets
                                 with its first key (rotate needs CLOUDKEY_REDIS_URL)
  cloudkey sim [--kind openpath|kisi]
                                 serve an access-system simulator (Openpath by default, or Kisi)
  cloudkey loadtest [flags]      measure cloudkey under load (loopback only)
  cloudkey help [COMMAND]        this list, or COMMAND's flags
Run a command with -h for its flags.`

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
