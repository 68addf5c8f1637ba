// Package selftarget starts the in-process cloudkey `cloudkey loadtest`
// measures (loadtest.Config.Self): Start is the loadtest.TargetStarter the
// command hands the harness.
//
// It owns the one bridge between the load-test harness and cloudkey's
// wiring: it imports internal/setup (and loadtest, for the starter's
// types) so that loadtest itself stays a client of the public API and
// imports neither internal/setup nor server (internal/layout checks
// this). Nothing but commands and tests may import selftarget.
//
// It may import the wiring (internal/setup), which is why it is not in
// loadtest: loadtest must not import it, only the command hands it in.
package selftarget

import (
	"context"
	"log/slog"
	"time"

	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/setup"
	"github.com/cloudkey/cloudkey/loadtest"
)

var _ loadtest.TargetStarter = Start

// KisiOrgRate is the in-process cloudkey's pace for the Kisi organisation
// key (setup.Config.KisiOrgRate) when it embeds a Kisi simulator.
const KisiOrgRate = 1_000_000

// Start starts cloudkey in process on loopback ports, as tc says, and
// serves it until the target's Close. Its settings other than tc's are
// setup.Config's zero values (no rate limits), not serve's flag defaults.
func Start(ctx context.Context, tc loadtest.TargetConfig) (*loadtest.Target, error) {
	log := tc.Logger
	if log == nil {
		log = slog.Default()
	}
	seed := tc.Seed
	sc := setup.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		RedisURL: tc.RedisURL, TokenSecret: tc.TokenSecret, SimSeed: &seed,
		AccountTTL: tc.AccountTTL, EntriesTTL: tc.EntriesTTL, Logger: log,
		KisiSimSeed: tc.KisiSeed,
	}
	if tc.KisiSeed != nil {
		// The load test's Kisi simulator has no rate limit
		// (kisisim.GenerateSeed): pace the organisation key as fast as
		// the prewarm of every user needs, not at Kisi's 5 per second.
		sc.KisiOrgRate = KisiOrgRate
	}
	if tc.PropertiesFile != "" {
		// A portfolio run: the harness's simulators, named by the file.
		sc.PropertiesFile, sc.SimSeed = tc.PropertiesFile, nil
	}
	if tc.AccessURL != "" {
		// cloudkey sim serves the demo service account whatever it seeds.
		sc.AccessURL, sc.AccessEmail, sc.AccessPassword = tc.AccessURL, sim.DemoServiceEmail, sim.DemoServicePassword
	}
	app, err := setup.Start(ctx, sc)
	if err != nil {
		return nil, err
	}
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- app.Serve(serveCtx) }()
	return &loadtest.Target{
		GRPCAddr: app.Server.GRPCAddr(), HTTPAddr: app.Server.HTTPAddr(),
		Sim: app.Sim, KisiSim: app.KisiSim,
		Close: func() {
			stop()
			select {
			case err := <-served:
				if err != nil {
					log.Warn("in-process cloudkey stopped with an error", "err", err)
				}
			case <-time.After(15 * time.Second):
				log.Warn("in-process cloudkey did not stop in 15s")
			}
		},
	}, nil
}
