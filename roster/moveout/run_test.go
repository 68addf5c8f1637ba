package moveout

import (
	"slices"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/roster"
)

// step is one run of a scenario: the roster then (nil: unchanged), the
// property's local time, what a person does by hand first, and what the
// run does and leaves suspended.
type step struct {
	roster    []roster.Person
	at        string
	hand      func(w *world)
	changes   []string // done, as describe writes them
	pending   []string
	overrides int
	suspended []string // on the systems after the run
}

// TestPitfalls runs each pitfall of PMS_APIS.md §4 against the Openpath
// and Kisi simulators over HTTP, under an auto policy (grace 1 day,
// cut-off 12:00 New York time).
func TestPitfalls(t *testing.T) {
	alice := func(st roster.Status, moveOut string) roster.Person {
		return person("alice", "1A", "alice@example.com", st, moveOut)
	}
	both := users{op: []string{"alice@example.com", "bob@example.com", "staff@example.com"}, kisi: []string{"alice@example.com", "staff@example.com"}}
	bob := person("bob", "2B", "bob@example.com", roster.StatusCurrent, "")
	tests := []struct {
		name  string
		users users
		steps []step
		// overrideAudits is how many moveout_override records the steps
		// leave: one per override, when first seen.
		overrideAudits int
	}{
		{
			name: "early move-out: pending until the move-out date plus grace at the cut-off, then suspended everywhere", users: both,
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusNotice, "2026-12-01"), bob}, at: "2026-12-02 11:59",
					pending: []string{"suspend id:alice@kisi", "suspend id:alice@op"}},
				{at: "2026-12-02 12:00", changes: []string{"suspend id:alice@kisi", "suspend id:alice@op"},
					suspended: []string{"kisi:alice@example.com", "op:alice@example.com"}},
				// Nothing more to do: already suspended.
				{at: "2026-12-03 12:00", suspended: []string{"kisi:alice@example.com", "op:alice@example.com"}},
			},
		},
		{
			name: "past in the roster: suspended at once, whatever the date", users: both,
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusPast, "2027-01-31"), bob}, at: "2026-12-02 08:00",
					changes: []string{"suspend id:alice@kisi", "suspend id:alice@op"}, suspended: []string{"kisi:alice@example.com", "op:alice@example.com"}},
			},
		},
		{
			name: "postponed move-out: the pending suspension stops", users: both,
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusNotice, "2026-12-01"), bob}, at: "2026-11-30 09:00",
					pending: []string{"suspend id:alice@kisi", "suspend id:alice@op"}},
				{roster: []roster.Person{alice(roster.StatusNotice, "2026-12-15"), bob}, at: "2026-12-03 09:00",
					pending: []string{"suspend id:alice@kisi", "suspend id:alice@op"}},
			},
		},
		{
			name: "cancelled move-out after the suspension: cloudkey reactivates", users: both,
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusNotice, "2026-12-01"), bob}, at: "2026-12-02 13:00",
					changes: []string{"suspend id:alice@kisi", "suspend id:alice@op"}, suspended: []string{"kisi:alice@example.com", "op:alice@example.com"}},
				{roster: []roster.Person{alice(roster.StatusCurrent, ""), bob}, at: "2026-12-03 09:00",
					changes: []string{"reactivate id:alice@kisi", "reactivate id:alice@op"}},
				// The records are gone: nothing more.
				{at: "2026-12-04 09:00"},
			},
		},
		{
			name: "renewal: the old lease past, the new one current; the most permissive row wins", users: both,
			steps: []step{
				{roster: []roster.Person{lease(alice(roster.StatusPast, "2026-11-30"), "L1"), lease(alice(roster.StatusCurrent, ""), "L2"), bob}, at: "2026-12-02 13:00"},
			},
		},
		{
			name: "transfer: notice on the old unit, future on the new; access goes on, ending with the later lease", users: both,
			steps: []step{
				{roster: []roster.Person{
					lease(alice(roster.StatusNotice, "2026-11-30"), "L1"),
					lease(person("alice", "3C", "alice@example.com", roster.StatusFuture, "2027-06-30"), "L2"), bob,
				}, at: "2026-12-02 13:00", pending: []string{"suspend id:alice@kisi", "suspend id:alice@op"}},
			},
		},
		{
			name: "month-to-month without a move-out date keeps access past the lease end", users: both,
			steps: []step{
				{roster: []roster.Person{func() roster.Person {
					p := alice(roster.StatusCurrent, "")
					p.MonthToMonth, p.LeaseEnd = true, roster.Date{Year: 2025, Month: 6, Day: 30}
					return p
				}(), bob}, at: "2026-12-02 13:00"},
			},
		},
		{
			name: "eviction flagged: current until the move-out date", users: both,
			steps: []step{
				{roster: []roster.Person{func() roster.Person { p := alice(roster.StatusCurrent, "2026-12-10"); p.Eviction = true; return p }(), bob},
					at: "2026-12-02 13:00", pending: []string{"suspend id:alice@kisi", "suspend id:alice@op"}},
			},
		},
		{
			name: "a user suspended by hand is never reactivated by cloudkey", users: both,
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusCurrent, ""), bob}, at: "2026-12-02 13:00",
					hand: func(w *world) {
						must(w.t, w.op.SetUserStatus("bob@example.com", access.StatusSuspended))
					},
					suspended: []string{"op:bob@example.com"}},
				// bob moves out and comes back: still never reactivated.
				{roster: []roster.Person{alice(roster.StatusCurrent, ""), person("bob", "2B", "bob@example.com", roster.StatusPast, "")}, at: "2026-12-03 13:00",
					suspended: []string{"op:bob@example.com"}},
				{roster: []roster.Person{alice(roster.StatusCurrent, ""), bob}, at: "2026-12-04 13:00",
					suspended: []string{"op:bob@example.com"}},
			},
		},
		{
			name: "a user a person reactivated after cloudkey suspended it is an override: left active, reported", users: both, overrideAudits: 1,
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusPast, ""), bob}, at: "2026-12-02 13:00",
					changes: []string{"suspend id:alice@kisi", "suspend id:alice@op"}, suspended: []string{"kisi:alice@example.com", "op:alice@example.com"}},
				{at: "2026-12-03 13:00", hand: func(w *world) {
					must(w.t, w.op.SetUserStatus("alice@example.com", access.StatusActive))
				}, overrides: 1, suspended: []string{"kisi:alice@example.com"}},
				{at: "2026-12-04 13:00", overrides: 1, suspended: []string{"kisi:alice@example.com"}},
				// The manager suspends her again by hand; then she comes
				// back: cloudkey reactivates only the user it suspended.
				{at: "2026-12-05 13:00", hand: func(w *world) {
					must(w.t, w.op.SetUserStatus("alice@example.com", access.StatusSuspended))
				}, suspended: []string{"kisi:alice@example.com", "op:alice@example.com"}},
				{roster: []roster.Person{alice(roster.StatusCurrent, ""), bob}, at: "2026-12-06 13:00",
					changes: []string{"reactivate id:alice@kisi"}, suspended: []string{"op:alice@example.com"}},
			},
		},
		{
			name: "changed email, same person: the user of the new email is acted on, the old one is not", users: users{op: []string{"alice@example.com", "alice.new@example.com", "bob@example.com"}},
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusCurrent, ""), bob}, at: "2026-12-01 13:00"},
				{roster: []roster.Person{person("alice", "1A", "alice.new@example.com", roster.StatusPast, ""), bob}, at: "2026-12-02 13:00",
					changes: []string{"suspend id:alice@op"}, suspended: []string{"op:alice.new@example.com"}},
			},
		},
		{
			name: "shared email: never linked, never acted on", users: both,
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusPast, ""), person("amy", "1A", "alice@example.com", roster.StatusPast, ""), bob}, at: "2026-12-02 13:00"},
			},
		},
		{
			name: "near miss: a look-alike email is never linked, never suspended", users: both,
			steps: []step{
				{roster: []roster.Person{person("alice", "1A", "al.ice@example.com", roster.StatusPast, ""), person("bob", "2B", "bob+home@example.com", roster.StatusPast, "")}, at: "2026-12-02 13:00"},
			},
		},
		{
			name: "a row that disappears from the roster is not a move-out", users: both,
			steps: []step{
				{roster: []roster.Person{alice(roster.StatusCurrent, ""), bob}, at: "2026-12-01 13:00"},
				{roster: []roster.Person{bob}, at: "2026-12-02 13:00"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, tt.users)
			w.policy(auto())
			for i, st := range tt.steps {
				if st.roster != nil {
					w.roster(st.roster...)
				}
				w.at(st.at)
				if st.hand != nil {
					st.hand(w)
				}
				r := w.run(false)
				if !r.Applied || r.Failed != 0 || r.Guard.Tripped {
					t.Fatalf("step %d: applied %v, failed %d, guard %+v", i, r.Applied, r.Failed, r.Guard)
				}
				if got := describe(r.Changes); !slices.Equal(got, orEmpty(st.changes)) {
					t.Errorf("step %d: changes %q, want %q", i, got, st.changes)
				}
				if got := describe(r.Pending); !slices.Equal(got, orEmpty(st.pending)) {
					t.Errorf("step %d: pending %q, want %q", i, got, st.pending)
				}
				if len(r.Overrides) != st.overrides {
					t.Errorf("step %d: overrides %+v, want %d", i, r.Overrides, st.overrides)
				}
				if got := w.suspended(); !slices.Equal(got, st.suspended) {
					t.Errorf("step %d: suspended on the systems %q, want %q", i, got, st.suspended)
				}
				for _, c := range r.Changes {
					if !c.Done {
						t.Errorf("step %d: %+v not done", i, c)
					}
				}
			}
			n := 0
			for _, a := range w.audited() {
				if a.Kind == KindOverride {
					n++
				}
			}
			if n != tt.overrideAudits {
				t.Errorf("%d override records in the audit, want %d", n, tt.overrideAudits)
			}
			// Staff (the Openpath service account, staff@) are never touched.
			if u, err := w.op.User(sim.DemoServiceEmail); err != nil || u.Status != access.StatusActive {
				t.Errorf("the service account is %+v, %v", u, err)
			}
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
