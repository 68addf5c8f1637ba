package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/redact"
)

// simulate serves the Openpath-style simulator, for a cloudkey started
// with CLOUDKEY_ACCESS_URL pointing at it, or for load tests.
func simulate(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	addr := fs.String("addr", envOr("CLOUDKEY_SIM_ADDR", "127.0.0.1:8181"), "listen address (env CLOUDKEY_SIM_ADDR)")
	seedFile := fs.String("seed", "", "seed file (JSON); default: the demo organisation")
	users := fs.Int("users", 0, "generate an organisation of this many users instead of a seed (user{n}@load.example.com)")
	perUser := fs.Int("entries-per-user", 5, "entries per generated user (with --users)")
	var f sim.Faults
	fs.DurationVar(&f.Latency, "latency", 0, "fixed latency added to every request")
	fs.DurationVar(&f.Jitter, "jitter", 0, "random extra latency, uniform in [0, jitter)")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "fraction (0..1) of requests answered --error-status")
	fs.IntVar(&f.ErrorStatus, "error-status", 503, "status of --error-rate answers: 500, 502, 503 or 504")
	fs.Float64Var(&f.RateLimitRate, "rate-limit-rate", 0, "fraction (0..1) of requests answered 429 Too Many Requests")
	fs.DurationVar(&f.RetryAfter, "retry-after", 0, "Retry-After of 429 and 503 answers (whole seconds, rounded up; 0: none)")
	fs.BoolVar(&f.Hang, "hang", false, "never answer (until the client gives up)")
	fs.BoolVar(&f.IncludeLogin, "faults-on-login", false, "apply the faults to /auth/login too")
	tokenTTL := fs.Duration("token-ttl", 0, "lifetime of issued tokens (default 1h)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var seed sim.Seed
	switch {
	case *users < 0 || *perUser < 0:
		return fmt.Errorf("sim: --users and --entries-per-user must not be negative")
	case *users > 0 && *seedFile != "":
		return fmt.Errorf("sim: give --seed or --users, not both")
	case *users > 0:
		seed = sim.GenerateSeed(*users, *perUser)
	case *seedFile != "":
		var err error
		if seed, err = sim.LoadSeed(*seedFile); err != nil {
			return err
		}
	default:
		seed = sim.DemoSeed()
	}
	s, err := sim.New(seed)
	if err != nil {
		return err
	}
	if err := s.SetFaults(f); err != nil {
		return err
	}
	if *tokenTTL < 0 {
		return fmt.Errorf("sim: --token-ttl must not be negative, got %v", *tokenTTL)
	}
	s.SetTokenTTL(*tokenTTL)
	log.Info("service account for cloudkey: set CLOUDKEY_ACCESS_URL, CLOUDKEY_ACCESS_EMAIL, CLOUDKEY_ACCESS_PASSWORD",
		// Revealed: the simulator's demo account, printed to be copied.
		"email", redact.Revealed(seed.ServiceAccount.Email), "password", redact.Revealed(seed.ServiceAccount.Password))
	return sim.Serve(ctx, *addr, s, log)
}
