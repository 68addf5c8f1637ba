package setup

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

// The move-out policy runs on its own, once across replicas: after a
// scheduled roster pull (harbor-view's Buildium roster has erin on
// notice past her move-out date) and at the sweep for a property whose
// roster came from a CSV import (foundry-lofts, frank moved out). Only
// the linked, moved-out residents are suspended; a report-mode property
// is left alone.
func TestMoveOutPolicyRunsOnItsOwn(t *testing.T) {
	rs := redistest.Start(t)
	sims := startSims(t, []sim.Seed{sim.DemoSeed(), sim.DemoSeed(), sim.DemoSeed()})
	bd, err := buildiumsim.Start(buildiumsim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bd.Close() })
	t.Setenv(portfolioPasswordEnv, sim.DemoServicePassword)
	t.Setenv(pmsSecretEnv, buildiumsim.DemoClientSecret)
	conn := func(i int) string {
		return fmt.Sprintf("    access:\n      - system: openpath\n        url: %s\n        email: %s\n        password_env: %s\n",
			sims[i].URL, sim.DemoServiceEmail, portfolioPasswordEnv)
	}
	yaml := "properties:\n  - id: harbor-view\n    timezone: America/New_York\n" + conn(0) +
		fmt.Sprintf("    pms:\n      system: buildium\n      url: %s\n      client_id: %s\n      client_secret_env: %s\n      property_ids: [%d]\n",
			bd.URL, buildiumsim.DemoClientID, pmsSecretEnv, buildiumsim.DemoHarborViewID) +
		"  - id: foundry-lofts\n    timezone: America/Chicago\n" + conn(1) +
		"  - id: quiet-court\n    timezone: Europe/Paris\n" + conn(2)
	file := filepath.Join(t.TempDir(), "properties.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rdb := rs.Client()
	policies := moveout.NewStore(rdb)
	auto := moveout.DefaultPolicy()
	auto.Mode = moveout.ModeAuto
	for _, p := range []string{"harbor-view", "foundry-lofts"} {
		if _, _, err := policies.SetPolicy(ctx, p, auto, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// frank moved out of foundry-lofts a week ago, bob stays; quiet-court
	// (report mode, the default) has the same roster and is left alone.
	moved := time.Now().AddDate(0, 0, -7).Format("2006-01-02")
	rows := []roster.Person{
		csvPerson(t, "f1", "frank@example.com", roster.StatusPast, moved),
		csvPerson(t, "b1", "bob@example.com", roster.StatusCurrent, ""),
	}
	for _, p := range []string{"foundry-lofts", "quiet-court"} {
		if _, err := rosterredis.New(rdb).Save(ctx, p, rosterredis.Snapshot{Source: roster.SourceCSV, Origin: "test.csv", People: rows}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		app, err := Start(context.Background(), Config{
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RedisURL: rs.URL(), PropertiesFile: file,
			SchedulePoll: 20 * time.Millisecond, MoveOutSweep: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(app.Close)
	}
	status := func(i int, email string) access.Status {
		u, err := sims[i].User(email)
		if err != nil {
			t.Fatal(err)
		}
		return u.Status
	}
	waitFor(t, "erin suspended at harbor-view after the pull", func() bool { return status(0, "erin@example.com") == access.StatusSuspended })
	waitFor(t, "frank suspended at foundry-lofts by the sweep", func() bool { return status(1, "frank@example.com") == access.StatusSuspended })
	for _, c := range []struct {
		sim   int
		email string
	}{{0, "alice@example.com"}, {0, "frank@example.com"}, {1, "alice@example.com"}, {2, "frank@example.com"}, {0, sim.DemoServiceEmail}} {
		if got := status(c.sim, c.email); got != access.StatusActive {
			t.Errorf("%s at property %d is %q: only linked moved-out residents of auto properties are suspended", c.email, c.sim, got)
		}
	}
	for _, p := range []string{"harbor-view", "foundry-lofts"} {
		recs, err := policies.Suspended(ctx, p)
		if err != nil || len(recs) != 1 {
			t.Fatalf("%s: cloudkey's suspension records %v, %v; want one", p, recs, err)
		}
	}
	// Each suspension was made once, on one replica.
	if n := sims[1].Calls(sim.OpSetUserStatus); n != 1 {
		t.Fatalf("foundry-lofts: %d status changes, want 1", n)
	}
}

func csvPerson(t *testing.T, id, email string, st roster.Status, moveOut string) roster.Person {
	t.Helper()
	p := roster.Person{Source: roster.SourceCSV, PersonID: id, Unit: "1", FirstName: id, LastName: "Resident", Status: st, Role: roster.RolePrimary}
	if err := p.SetEmail(email); err != nil {
		t.Fatal(err)
	}
	if moveOut != "" {
		d, err := roster.ParseDate(moveOut)
		if err != nil {
			t.Fatal(err)
		}
		p.MoveOut = d
	}
	return p
}
