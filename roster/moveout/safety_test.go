package moveout

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/unlock"
)

// dump is every key of Redis with its serialised value.
func (w *world) dump() map[string]string {
	w.t.Helper()
	ctx := context.Background()
	keys, err := w.rdb.Keys(ctx, "*").Result()
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		v, err := w.rdb.Dump(ctx, k).Result()
		if err != nil {
			w.t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

func (w *world) statusCalls() int64 {
	return w.op.Calls(sim.OpSetUserStatus) + w.kisi.Calls(kisisim.OpUpdateUser)
}

// TestNothingWritten: a dry run (in auto mode too), a run in report mode
// and a run in off mode change neither the access systems nor Redis; the
// dry run and report list the exact changes an auto run then makes.
func TestNothingWritten(t *testing.T) {
	w := newWorld(t, users{op: []string{"alice@example.com", "bob@example.com"}, kisi: []string{"alice@example.com"}})
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusNotice, "2026-12-01"), person("bob", "2B", "bob@example.com", roster.StatusCurrent, "2026-12-20"))
	w.at("2026-12-02 12:30")
	want := []string{"suspend id:alice@kisi", "suspend id:alice@op"}
	for _, tt := range []struct {
		name    string
		mode    Mode
		dryRun  bool
		changes []string
		skipped bool
	}{
		{"report mode (the default)", "", false, want, false},
		{"report mode", ModeReport, false, want, false},
		{"dry run in report mode", ModeReport, true, want, false},
		{"dry run in auto mode", ModeAuto, true, want, false},
		{"dry run in off mode shows what auto would do", ModeOff, true, want, false},
		{"off mode", ModeOff, false, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode != "" {
				p := DefaultPolicy()
				p.Mode = tt.mode
				w.policy(p)
			}
			before, calls := w.dump(), w.statusCalls()
			r := w.run(tt.dryRun)
			if r.Applied || (r.Skipped != "") != tt.skipped {
				t.Fatalf("applied %v, skipped %q", r.Applied, r.Skipped)
			}
			if got := describe(r.Changes); !equal(got, tt.changes) {
				t.Fatalf("changes %q, want %q", got, tt.changes)
			}
			if !tt.skipped {
				c := r.Changes[0]
				if c.Email != "alice@example.com" || c.Unit != "1A" || c.UserID != "7100" || c.RosterVersion != 1 ||
					c.Due.UTC().Format(time.RFC3339) != "2026-12-02T17:00:00Z" || !strings.Contains(c.Reason, "on 2026-12-01") || c.Done {
					t.Errorf("change %+v", c)
				}
				if got := describe(r.Pending); !equal(got, []string{"suspend id:bob@op"}) {
					t.Errorf("pending %q", got)
				}
			}
			if after := w.dump(); !maps.Equal(before, after) {
				t.Errorf("Redis changed: %d keys before, %d after", len(before), len(after))
			}
			if n := w.statusCalls() - calls; n != 0 {
				t.Errorf("%d status calls", n)
			}
			if s := w.suspended(); len(s) != 0 {
				t.Errorf("suspended %q", s)
			}
			if a := w.audited(); len(a) != 0 {
				t.Errorf("audited %+v", a)
			}
		})
	}
	// The auto run then makes exactly the changes the dry run showed.
	w.policy(auto())
	r := w.run(false)
	if got := describe(r.Changes); !equal(got, want) || !r.Applied {
		t.Fatalf("auto run: %q applied %v", got, r.Applied)
	}
}

func equal(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

// TestAutoRunAudits: each action is audited (who, why, roster version),
// the resident's cache is dropped, and a suspended user's unlock is then
// refused by both simulators.
func TestAutoRunAudits(t *testing.T) {
	w := newWorld(t, users{op: []string{"alice@example.com"}, kisi: []string{"Alice@Example.com"}})
	ctx := context.Background()
	// alice opens doors before moving out, with her own credentials.
	ou, err := w.opc.FindUserByEmail(ctx, "alice@example.com")
	must(t, err)
	opKey, err := w.opc.EnsureCloudKey(ctx, ou)
	must(t, err)
	must(t, w.opc.Unlock(ctx, ou.ID, opKey, fmt.Sprint(sim.DemoLobbyID)))
	ku, err := w.kc.FindUserByEmail(ctx, "alice@example.com")
	must(t, err)
	kKey, err := w.kc.EnsureCloudKey(ctx, ku)
	must(t, err)
	must(t, w.kc.Unlock(ctx, ku.ID, kKey, fmt.Sprint(kisisim.DemoPoolID)))

	w.policy(auto())
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusPast, ""))
	w.at("2026-12-02 09:00")
	r := w.run(false)
	if len(r.Changes) != 2 || r.Failed != 0 {
		t.Fatalf("run %+v", r)
	}
	if err := w.opc.Unlock(ctx, ou.ID, opKey, fmt.Sprint(sim.DemoLobbyID)); !errors.Is(err, access.ErrDenied) {
		t.Errorf("Openpath unlock after the suspension: %v, want ErrDenied", err)
	}
	if err := w.kc.Unlock(ctx, ku.ID, kKey, fmt.Sprint(kisisim.DemoPoolID)); !errors.Is(err, access.ErrDenied) {
		t.Errorf("Kisi unlock after the suspension: %v, want ErrDenied", err)
	}
	w.mu.Lock()
	inv := append([]string(nil), w.invalidated...)
	w.mu.Unlock()
	if !equal(inv, []string{prop + "/alice@example.com", prop + "/alice@example.com"}) {
		t.Errorf("cache drops %q", inv)
	}
	a := w.audited()
	if len(a) != 2 {
		t.Fatalf("audited %+v", a)
	}
	for _, at := range a {
		if at.Kind != unlock.KindMoveOutSuspended || at.Email != Actor || at.Property != prop || at.Status != unlock.OK ||
			!strings.Contains(at.Message, "status past") || !strings.Contains(at.Message, "roster version 1") ||
			!strings.Contains(at.Message, "policy auto, grace 1 day, cut-off 12:00") || !strings.Contains(at.Message, "unit 1A") || !at.At.Equal(w.clock().UTC()) {
			t.Errorf("audit %+v", at)
		}
	}
	if a[0].EntryID != kConn+"/7100" && a[1].EntryID != kConn+"/7100" {
		t.Errorf("audit subjects %q %q", a[0].EntryID, a[1].EntryID)
	}
	// Current again: both reactivated, audited, and alice unlocks again.
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusCurrent, ""))
	r = w.run(false)
	if got := describe(r.Changes); !equal(got, []string{"reactivate id:alice@kisi", "reactivate id:alice@op"}) {
		t.Fatalf("changes %q", got)
	}
	if a := w.audited(); len(a) != 4 || a[2].Kind != unlock.KindMoveOutReactivated || !strings.Contains(a[2].Message, "roster version 2") {
		t.Errorf("audit %+v", a)
	}
	must(t, w.opc.Unlock(ctx, ou.ID, opKey, fmt.Sprint(sim.DemoLobbyID)))
	must(t, w.kc.Unlock(ctx, ku.ID, kKey, fmt.Sprint(kisisim.DemoPoolID)))
}

// TestGuard: a run that would suspend more than the share of the linked
// residents suspends nobody, says so, and audits it; reactivations still
// happen; raising the share lets the next run through.
func TestGuard(t *testing.T) {
	var emails []string
	var people []roster.Person
	for i := range 12 {
		e := fmt.Sprintf("r%02d@example.com", i)
		emails = append(emails, e)
		people = append(people, person(fmt.Sprintf("r%02d", i), fmt.Sprint(100+i), e, roster.StatusCurrent, ""))
	}
	w := newWorld(t, users{op: emails})
	w.policy(auto())
	w.at("2026-12-02 13:00")
	// r00 is suspended by cloudkey first, then comes back.
	people[0].Status = roster.StatusPast
	w.roster(people...)
	if r := w.run(false); len(r.Changes) != 1 {
		t.Fatalf("first run %q", describe(r.Changes))
	}
	// A truncated export: 4 of 12 past (the allowance is 3), r00 current.
	people[0].Status = roster.StatusCurrent
	for i := 1; i <= 4; i++ {
		people[i].Status = roster.StatusPast
	}
	w.roster(people...)
	calls := w.statusCalls()
	r := w.run(false)
	if !r.Guard.Tripped || r.Guard.Suspensions != 4 || r.Guard.Allowed != 3 || r.Guard.Linked != 12 {
		t.Fatalf("guard %+v", r.Guard)
	}
	if got := describe(r.Changes); !equal(got, []string{"reactivate id:r00@op"}) {
		t.Errorf("changes %q, want the reactivation only", got)
	}
	if len(r.Held) != 4 {
		t.Errorf("held %q", describe(r.Held))
	}
	if n := w.statusCalls() - calls; n != 1 {
		t.Errorf("%d status calls, want the reactivation's", n)
	}
	if s := w.suspended(); len(s) != 0 {
		t.Errorf("suspended %q", s)
	}
	var guards int
	for _, a := range w.audited() {
		if a.Kind == unlock.KindMoveOutGuard {
			guards++
			if a.Status != unlock.Denied || !strings.Contains(a.Message, "4 of 12") || !strings.Contains(a.Message, "3 allowed") {
				t.Errorf("guard audit %+v", a)
			}
		}
	}
	if guards != 1 {
		t.Errorf("%d guard records", guards)
	}
	last, ok, err := w.store.Last(context.Background(), prop)
	if err != nil || !ok || !last.Guard.Tripped {
		t.Errorf("last run %+v %v %v", last.Guard, ok, err)
	}
	// The manager checked: the move-outs are real.
	p := auto()
	p.MaxSuspendShare = 0.5
	w.policy(p)
	if r := w.run(false); r.Guard.Tripped || len(r.Changes) != 4 {
		t.Fatalf("after raising the share: guard %+v, changes %q", r.Guard, describe(r.Changes))
	}
}

// failing fails SetUserStatus for one user, and passes the others on.
type failing struct {
	access.StatusSetter
	user string
}

func (f failing) SetUserStatus(ctx context.Context, userID string, st access.Status) error {
	if userID == f.user {
		return fmt.Errorf("openpath: set status of user %s: %w", userID, access.ErrUnavailable)
	}
	return f.StatusSetter.SetUserStatus(ctx, userID, st)
}

// TestFailureDoesNotStopOthers: one failed call is reported and audited,
// the others are made, and the next run tries it again.
func TestFailureDoesNotStopOthers(t *testing.T) {
	w := newWorld(t, users{op: []string{"alice@example.com", "bob@example.com"}})
	broken := true
	w.runner.cfg.Systems = func(string) (string, []Connection, bool) {
		c := Connections([]reconcile.Connection{{Name: opConn, Directory: w.opc}})
		if broken {
			c[0].Setter = failing{w.opc, "300"} // alice
		}
		return nyc, c, true
	}
	w.policy(auto())
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusPast, ""), person("bob", "2B", "bob@example.com", roster.StatusPast, ""))
	w.at("2026-12-02 13:00")
	r := w.run(false)
	if got := describe(r.Changes); !equal(got, []string{"suspend id:alice@op failed", "suspend id:bob@op"}) || r.Failed != 1 {
		t.Fatalf("changes %q failed %d", got, r.Failed)
	}
	if s := w.suspended(); !equal(s, []string{"op:bob@example.com"}) {
		t.Fatalf("suspended %q", s)
	}
	if a := w.audited(); len(a) != 2 || a[0].Status != unlock.Error || !strings.Contains(a[0].Message, "tried again next run") {
		t.Errorf("audit %+v", a)
	}
	broken = false
	r = w.run(false)
	if got := describe(r.Changes); !equal(got, []string{"suspend id:alice@op"}) || r.Failed != 0 {
		t.Fatalf("retry: changes %q failed %d", got, r.Failed)
	}
}

// TestOneRunAtATime: a run of a property while another holds its lock
// (another replica) is refused; other properties are not held up, and the
// lock is released after a run.
func TestOneRunAtATime(t *testing.T) {
	w := newWorld(t, users{op: []string{"alice@example.com"}})
	w.policy(auto())
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusCurrent, ""))
	w.at("2026-12-02 13:00")
	ctx := context.Background()
	release, err := w.store.lock(ctx, prop, time.Minute)
	must(t, err)
	if _, err := w.runner.Run(ctx, prop, false); !errors.Is(err, ErrBusy) {
		t.Fatalf("run while locked: %v, want ErrBusy", err)
	}
	// A dry run writes nothing, so it needs no lock.
	if _, err := w.runner.Run(ctx, prop, true); err != nil {
		t.Fatalf("dry run while locked: %v", err)
	}
	release()
	w.run(false)
	w.run(false) // the first released its lock
	if _, err := w.runner.Run(ctx, "other", false); !errors.Is(err, ErrNotServed) {
		t.Fatalf("unserved property: %v", err)
	}
}

// TestNoRoster: a property without a roster is reported, not run.
func TestNoRoster(t *testing.T) {
	w := newWorld(t, users{op: []string{"alice@example.com"}})
	w.policy(auto())
	if _, err := w.runner.Run(context.Background(), prop, false); !errors.Is(err, reconcile.ErrNoRoster) {
		t.Fatalf("err = %v, want ErrNoRoster", err)
	}
}

// TestMidnightInZone: with no grace and a midnight cut-off in Los
// Angeles, access ends at 08:00 UTC of the move-out day, not before.
func TestMidnightInZone(t *testing.T) {
	w := newWorld(t, users{op: []string{"alice@example.com"}})
	w.tz = "America/Los_Angeles"
	p := auto()
	p.GraceDays, p.Cutoff = 0, 0
	w.policy(p)
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusNotice, "2026-12-01"))
	w.at("2026-11-30 23:59")
	if r := w.run(false); len(r.Changes) != 0 || len(r.Pending) != 1 || r.Pending[0].Due.UTC().Format(time.RFC3339) != "2026-12-01T08:00:00Z" {
		t.Fatalf("a minute before: changes %q pending %+v", describe(r.Changes), r.Pending)
	}
	w.at("2026-12-01 00:00")
	if r := w.run(false); len(r.Changes) != 1 {
		t.Fatalf("at midnight: changes %q", describe(r.Changes))
	}
}

// TestPolicyStore: the default until set, saved policies come back with
// what they replaced, and an invalid one is refused unsaved.
func TestPolicyStore(t *testing.T) {
	w := newWorld(t, users{})
	ctx := context.Background()
	p, ok, err := w.store.Policy(ctx, prop)
	if err != nil || ok || p != DefaultPolicy() {
		t.Fatalf("Policy before any = %+v %v %v", p, ok, err)
	}
	w.at("2026-12-02 09:00")
	want := Policy{Mode: ModeAuto, GraceDays: 3, Cutoff: 17*60 + 30, MaxSuspendShare: 0.25}
	before, existed, err := w.store.SetPolicy(ctx, prop, want, w.clock())
	if err != nil || existed || before != DefaultPolicy() {
		t.Fatalf("SetPolicy = %+v %v %v", before, existed, err)
	}
	bad := want
	bad.GraceDays = 91
	var fe *FieldError
	if _, _, err := w.store.SetPolicy(ctx, prop, bad, w.clock()); !errors.As(err, &fe) || fe.Field != "grace_days" {
		t.Fatalf("SetPolicy(bad) = %v", err)
	}
	got, ok, err := w.store.Policy(ctx, prop)
	want.UpdatedAt = w.clock().UTC()
	if err != nil || !ok || got != want {
		t.Fatalf("Policy = %+v %v %v, want %+v", got, ok, err, want)
	}
	before, existed, err = w.store.SetPolicy(ctx, prop, DefaultPolicy(), w.clock())
	if err != nil || !existed || before != want {
		t.Fatalf("second SetPolicy = %+v %v %v", before, existed, err)
	}
	if _, _, err := w.store.Policy(ctx, "Bad Id"); err == nil {
		t.Fatal("a bad property id was accepted")
	}
}

// TestPendingRecordIsNotAnOverride: a suspension whose record was written
// but whose call never took effect (the process died between the two)
// leaves a pending record and an active user; the next run suspends the
// user rather than reading a person's reactivation into it, and a record
// is confirmed only once the access system took the suspension.
func TestPendingRecordIsNotAnOverride(t *testing.T) {
	w := newWorld(t, users{op: []string{"alice@example.com"}})
	ctx := context.Background()
	w.policy(auto())
	w.roster(person("alice", "1A", "alice@example.com", roster.StatusPast, ""))
	w.at("2026-12-02 13:00")
	if err := w.store.PutSuspended(ctx, prop, Record{Connection: opConn, UserID: "300", PersonKey: "id:alice", Email: "alice@example.com",
		At: w.clock(), RosterVersion: 1, Reason: "status past", Pending: true}); err != nil {
		t.Fatal(err)
	}
	r := w.run(false)
	if got := describe(r.Changes); !equal(got, []string{"suspend id:alice@op"}) || len(r.Overrides) != 0 {
		t.Fatalf("changes %q overrides %+v", got, r.Overrides)
	}
	recs, err := w.store.Suspended(ctx, prop)
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := recs[UserRef{opConn, "300"}]; !ok || rec.Pending {
		t.Fatalf("record after the suspension: %+v (found %v), want a confirmed one", rec, ok)
	}
}
