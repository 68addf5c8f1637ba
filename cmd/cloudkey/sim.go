package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/redact"
	"github.com/cloudkey/cloudkey/internal/setup"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
)

// simulate serves an access-system simulator: the Openpath-style one
// (--kind openpath, the default) for a cloudkey started with
// CLOUDKEY_ACCESS_URL pointing at it, or the Kisi one (--kind kisi, both
// demo organisations), or a generated organisation for load tests; or the
// property-management system's (--kind buildium: the demo residents'
// leases).
func simulate(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: cloudkey sim [--kind openpath|kisi|buildium|envoy] [flags]

Serves a simulated access system over HTTP. --kind openpath (the default)
serves the Openpath demo organisation (or --seed FILE); --kind kisi serves
both Kisi demo organisations, "Harbor View Amenities" and "Foundry Lofts",
and logs their API keys. --users N serves one generated organisation of
either kind instead (Kisi: rate limit off unless --rate-limit is given).
--kind buildium serves Buildium's API with the demo properties' residents
(harbor-view is rental 5001, foundry-lofts 5002; --users N: one generated
rental 5001 of N leases) and logs its client id and secret. --kind envoy
serves Envoy's API (OAuth, invites, locations, flows) for the demo location
152347, sends its signed webhooks to --webhook-url (cloudkey's
/webhooks/envoy, signed with --webhook-secret, cloudkey's
CLOUDKEY_ENVOY_SECRET), and plays the front desk through
POST /_sim/invites/{id}/sign-in and /_sim/entries/{id}/sign-out.

`)
		fs.PrintDefaults()
	}
	kind := fs.String("kind", "openpath", "the system to simulate: openpath, kisi, buildium or envoy")
	addr := fs.String("addr", envOr("CLOUDKEY_SIM_ADDR", "127.0.0.1:8181"), "listen address (env CLOUDKEY_SIM_ADDR)")
	seedFile := fs.String("seed", "", "seed file (JSON; --kind openpath only); default: the demo organisation")
	users := fs.Int("users", 0, "generate an organisation of this many users instead of a seed (user{n}@load.example.com)")
	perUser := fs.Int("entries-per-user", 5, "entries (Kisi: locks) per generated user (with --users)")
	var f sim.Faults
	fs.DurationVar(&f.Latency, "latency", 0, "fixed latency added to every request")
	fs.DurationVar(&f.Jitter, "jitter", 0, "random extra latency, uniform in [0, jitter)")
	fs.Float64Var(&f.ErrorRate, "error-rate", 0, "fraction (0..1) of requests answered --error-status")
	fs.IntVar(&f.ErrorStatus, "error-status", 503, "status of --error-rate answers: 500, 502, 503 or 504")
	fs.Float64Var(&f.RateLimitRate, "rate-limit-rate", 0, "fraction (0..1) of requests answered 429 Too Many Requests")
	fs.DurationVar(&f.RetryAfter, "retry-after", 0, "Retry-After of 429 and 503 answers (whole seconds, rounded up; 0: none)")
	fs.BoolVar(&f.Hang, "hang", false, "never answer (until the client gives up)")
	fs.BoolVar(&f.IncludeLogin, "faults-on-login", false, "apply the faults to login too (Openpath /auth/login, Kisi POST /logins)")
	tokenTTL := fs.Duration("token-ttl", 0, "lifetime of issued tokens (default 1h; --kind openpath only)")
	rateLimit := fs.Float64("rate-limit", kisisim.DefaultRateLimit,
		"Kisi's per-user limit in requests per second (burst the same, at least 1); 0: off (--kind kisi only; default off with --users)")
	webhookURL := fs.String("webhook-url", "http://127.0.0.1:8080/webhooks/envoy", "where the Envoy events go (--kind envoy only): cloudkey's /webhooks/envoy")
	webhookSecret := fs.String("webhook-secret", envOr("CLOUDKEY_ENVOY_SECRET", setup.DevelopmentEnvoySecret),
		"the secret the events are signed with, cloudkey's CLOUDKEY_ENVOY_SECRET (--kind envoy only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *users < 0 || *perUser < 0 {
		return fmt.Errorf("sim: --users and --entries-per-user must not be negative")
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	switch *kind {
	case "openpath":
		if set["rate-limit"] {
			return fmt.Errorf("sim: --rate-limit is for --kind kisi (Openpath's limit is --rate-limit-rate)")
		}
		return simulateOpenpath(ctx, *addr, *seedFile, *users, *perUser, f, *tokenTTL, log)
	case "kisi":
		for _, name := range []string{"seed", "token-ttl"} {
			if set[name] {
				return fmt.Errorf("sim: --%s is for --kind openpath", name)
			}
		}
		rate := *rateLimit
		if *users > 0 && !set["rate-limit"] {
			rate = 0
		}
		// The flags set no per-operation latency, whose Op types differ.
		kf := kisisim.Faults{
			Latency: f.Latency, Jitter: f.Jitter, ErrorRate: f.ErrorRate, ErrorStatus: f.ErrorStatus,
			RateLimitRate: f.RateLimitRate, RetryAfter: f.RetryAfter, Hang: f.Hang, IncludeLogin: f.IncludeLogin,
		}
		return simulateKisi(ctx, *addr, *users, *perUser, kf, rate, log)
	case "buildium":
		for _, name := range []string{"seed", "token-ttl", "rate-limit", "faults-on-login", "entries-per-user"} {
			if set[name] {
				return fmt.Errorf("sim: --%s is not for --kind buildium", name)
			}
		}
		bf := buildiumsim.Faults{
			Latency: f.Latency, Jitter: f.Jitter, ErrorRate: f.ErrorRate, ErrorStatus: f.ErrorStatus,
			RateLimitRate: f.RateLimitRate, RetryAfter: f.RetryAfter, Hang: f.Hang,
		}
		return simulateBuildium(ctx, *addr, *users, bf, log)
	case "envoy":
		for _, name := range []string{"seed", "token-ttl", "rate-limit", "users", "entries-per-user"} {
			if set[name] {
				return fmt.Errorf("sim: --%s is not for --kind envoy", name)
			}
		}
		ef := envoysim.Faults{
			Latency: f.Latency, Jitter: f.Jitter, ErrorRate: f.ErrorRate, ErrorStatus: f.ErrorStatus,
			RateLimitRate: f.RateLimitRate, RetryAfter: f.RetryAfter, Hang: f.Hang, IncludeLogin: f.IncludeLogin,
		}
		return simulateEnvoy(ctx, *addr, *webhookURL, *webhookSecret, ef, log)
	default:
		return fmt.Errorf("sim: --kind must be openpath, kisi, buildium or envoy, not %q", *kind)
	}
}

// simulateEnvoy serves Envoy's API for the demo location, sending its
// signed webhooks to cloudkey; the front desk is its /_sim control paths.
func simulateEnvoy(ctx context.Context, addr, webhookURL, webhookSecret string, f envoysim.Faults, log *slog.Logger) error {
	if webhookSecret == "" {
		return fmt.Errorf("sim: --webhook-secret must not be empty")
	}
	seed := envoysim.DemoSeed()
	seed.WebhookURL, seed.WebhookSecret = webhookURL, webhookSecret
	s, err := envoysim.New(seed)
	if err != nil {
		return err
	}
	if err := s.SetFaults(f); err != nil {
		return err
	}
	log.Info("envoy account for cloudkey: a properties file's envoy: block",
		// Revealed: the simulator's demo credentials, printed to be copied.
		"client_id", redact.Revealed(seed.ClientID), "client_secret", redact.Revealed(seed.ClientSecret),
		"location", envoysim.DemoLocationID, "webhooks_to", webhookURL,
		"front_desk", "POST /_sim/invites/{id}/sign-in, POST /_sim/entries/{id}/sign-out")
	return envoysim.Serve(ctx, addr, s, log)
}

func simulateBuildium(ctx context.Context, addr string, users int, f buildiumsim.Faults, log *slog.Logger) error {
	seed := buildiumsim.DemoSeed()
	if users > 0 {
		seed = buildiumsim.GenerateSeed(buildiumsim.DemoHarborViewID, users)
	}
	s, err := buildiumsim.New(seed)
	if err != nil {
		return err
	}
	if err := s.SetFaults(f); err != nil {
		return err
	}
	log.Info("buildium account for cloudkey: the x-buildium-client-id and x-buildium-client-secret headers",
		// Revealed: the simulator's demo credentials, printed to be copied.
		"client_id", redact.Revealed(seed.ClientID), "client_secret", redact.Revealed(seed.ClientSecret),
		"rental_ids", fmt.Sprint(rentalIDs(seed)))
	return buildiumsim.Serve(ctx, addr, s, log)
}

// rentalIDs are the seed's Buildium rental property ids.
func rentalIDs(seed buildiumsim.Seed) []int32 {
	var ids []int32
	for _, r := range seed.Rentals {
		ids = append(ids, r.ID)
	}
	return ids
}

func simulateOpenpath(ctx context.Context, addr, seedFile string, users, perUser int, f sim.Faults, tokenTTL time.Duration, log *slog.Logger) error {
	var seed sim.Seed
	switch {
	case users > 0 && seedFile != "":
		return fmt.Errorf("sim: give --seed or --users, not both")
	case users > 0:
		seed = sim.GenerateSeed(users, perUser)
	case seedFile != "":
		var err error
		if seed, err = sim.LoadSeed(seedFile); err != nil {
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
	if tokenTTL < 0 {
		return fmt.Errorf("sim: --token-ttl must not be negative, got %v", tokenTTL)
	}
	s.SetTokenTTL(tokenTTL)
	log.Info("service account for cloudkey: set CLOUDKEY_ACCESS_URL, CLOUDKEY_ACCESS_EMAIL, CLOUDKEY_ACCESS_PASSWORD",
		// Revealed: the simulator's demo account, printed to be copied.
		"email", redact.Revealed(seed.ServiceAccount.Email), "password", redact.Revealed(seed.ServiceAccount.Password))
	return sim.Serve(ctx, addr, s, log)
}

func simulateKisi(ctx context.Context, addr string, users, perUser int, f kisisim.Faults, rate float64, log *slog.Logger) error {
	seed := kisisim.DemoSeed()
	if users > 0 {
		seed = kisisim.GenerateSeed(users, perUser)
	}
	s, err := kisisim.New(seed)
	if err != nil {
		return err
	}
	if err := s.SetFaults(f); err != nil {
		return err
	}
	if rate < 0 {
		return fmt.Errorf("sim: --rate-limit must not be negative, got %v", rate)
	}
	if err := s.SetRateLimit(rate, max(1, int(rate))); err != nil {
		return err
	}
	for _, k := range s.APIKeys() {
		log.Info("kisi organisation for cloudkey: its API key goes in the properties file's api_key_file or api_key_env",
			"org", k.Name, "org_id", k.OrgID,
			// Revealed: the simulator's demo key, printed to be copied.
			"api_key", redact.Revealed(k.APIKey))
	}
	return kisisim.Serve(ctx, addr, s, log)
}
