package moveout

import (
	"context"
	"testing"

	"github.com/cloudkey/cloudkey/roster"
)

// TestDue: a scheduler asking every few minutes runs an auto policy when
// something can change (first run, a new roster, a changed policy, a
// resident's end of access passing, failures, a day gone by) and not
// otherwise; report and off policies are never due.
func TestDue(t *testing.T) {
	w := newWorld(t, users{op: []string{"alice@example.com", "bob@example.com"}})
	ctx := context.Background()
	due := func(want bool, what string) {
		t.Helper()
		got, why, err := w.runner.Due(ctx, prop)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s: due %v (%q), want %v", what, got, why, want)
		}
	}
	w.at("2026-12-04 08:00")
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusNotice, "2026-12-03"),
		person("bob", "2B", "bob@example.com", roster.StatusCurrent, ""))
	due(false, "report mode (the default)")
	w.policy(auto())
	due(true, "auto, never ran")
	w.run(false)
	due(false, "just ran")
	w.at("2026-12-04 11:59") // alice's access ends 2026-12-04 12:00 (grace 1 day, cut-off 12:00)
	due(false, "a minute before alice's end of access")
	w.at("2026-12-04 12:05")
	due(true, "alice's end of access passed")
	if r := w.run(false); len(r.Changes) != 1 || r.Changes[0].Action != Suspend {
		t.Fatalf("run: changes %q", describe(r.Changes))
	}
	due(false, "ran after the end of access")
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusNotice, "2026-12-10"),
		person("bob", "2B", "bob@example.com", roster.StatusCurrent, ""))
	due(true, "a new roster version (alice's move-out postponed)")
	if r := w.run(false); len(r.Changes) != 1 || r.Changes[0].Action != Reactivate {
		t.Fatalf("postponed: changes %q", describe(r.Changes))
	}
	p := auto()
	p.GraceDays = 3
	w.policy(p)
	due(true, "the policy changed")
	w.run(false)
	w.at("2026-12-05 12:06")
	due(true, "a day without a run")
	w.run(false)
	p.Mode = ModeOff
	w.policy(p)
	w.at("2026-12-20 12:00")
	due(false, "off")
}
