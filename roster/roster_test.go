package roster

import (
	"slices"
	"testing"
)

func person(id, email string, st Status, moveOut Date) Person {
	p := Person{Source: SourceBuildium, PersonID: id, Unit: "4B", FirstName: "P" + id, Status: st, MoveOut: moveOut}
	if err := p.SetEmail(email); err != nil {
		panic(err)
	}
	return p
}

func TestCompare(t *testing.T) {
	old := []Person{
		person("1", "a@example.com", StatusCurrent, Date{}),
		person("2", "b@example.com", StatusCurrent, Date{}),
		person("3", "c@example.com", StatusNotice, Date{2026, 11, 30}),
		person("4", "d@example.com", StatusCurrent, Date{}),
	}
	changedEmail := person("1", "a.new@example.com", StatusCurrent, Date{})
	postponed := person("3", "c@example.com", StatusNotice, Date{2027, 1, 31})
	provenance := old[3]
	provenance.Line = 99 // where a row is in the file is not a change
	new := []Person{changedEmail, postponed, provenance, person("5", "e@example.com", StatusFuture, Date{})}

	d := Compare(old, new)
	var added, removed []string
	for _, p := range d.Added {
		added = append(added, p.Key())
	}
	for _, p := range d.Removed {
		removed = append(removed, p.Key())
	}
	if !slices.Equal(added, []string{"id:5"}) || !slices.Equal(removed, []string{"id:2"}) {
		t.Errorf("added %v, removed %v", added, removed)
	}
	want := []Change{
		{Key: "id:1", Name: "P1", Fields: []FieldChange{{"email", "a@example.com", "a.new@example.com"}}},
		{Key: "id:3", Name: "P3", Fields: []FieldChange{{"moveOut", "2026-11-30", "2027-01-31"}}},
	}
	if len(d.Changed) != len(want) {
		t.Fatalf("changed %+v", d.Changed)
	}
	for i := range want {
		if d.Changed[i].Key != want[i].Key || !slices.Equal(d.Changed[i].Fields, want[i].Fields) {
			t.Errorf("change %d = %+v, want %+v", i, d.Changed[i], want[i])
		}
	}
	if !d.Changed[0].Has("email") || d.Changed[0].Has("status") {
		t.Error("Has")
	}
	if !Compare(old, old).Empty() {
		t.Error("a roster differs from itself")
	}
}

func TestMergeAndByPerson(t *testing.T) {
	oldLease := person("1", "a@example.com", StatusCurrent, Date{})
	oldLease.HouseholdID, oldLease.LeaseStart = "L1", Date{2025, 1, 1}
	base := []Person{oldLease, person("2", "b@example.com", StatusCurrent, Date{})}

	// An incremental pull brings the renewal (a future lease) and Bob's
	// move-out; Alice's current lease did not change and is not in it.
	renewal := person("1", "a@example.com", StatusFuture, Date{})
	renewal.HouseholdID, renewal.LeaseStart = "L2", Date{2026, 1, 1}
	bobOut := person("2", "b@example.com", StatusPast, Date{2026, 11, 30})
	merged := Merge(base, []Person{renewal, bobOut})

	var keys []string
	for _, p := range merged {
		keys = append(keys, p.Key())
	}
	if want := []string{"id:1#L1", "id:1#L2", "id:2"}; !slices.Equal(keys, want) {
		t.Fatalf("merged keys %v, want %v", keys, want)
	}
	by := ByPerson(merged)
	if len(by) != 2 || by["id:1"].HouseholdID != "L1" || by["id:2"].Status != StatusPast {
		t.Errorf("ByPerson: %+v", by)
	}
	// The renewal's lease starts: the most permissive row is the later one.
	renewal.Status = StatusCurrent
	if got := ByPerson(Merge(merged, []Person{renewal}))["id:1"].HouseholdID; got != "L2" {
		t.Errorf("after the renewal starts: %s", got)
	}
}

func TestAssembleSharedEmail(t *testing.T) {
	r := Assemble([]Person{
		person("1", "family@example.com", StatusCurrent, Date{}),
		person("2", "Family@Example.com", StatusCurrent, Date{}),
		person("3", "solo@example.com", StatusCurrent, Date{}),
	})
	if len(r.People) != 3 {
		t.Fatalf("people %d: shared emails must not merge people", len(r.People))
	}
	if len(r.Shared) != 1 || r.Shared[0].Email != "family@example.com" || !slices.Equal(r.Shared[0].Keys, []string{"id:1", "id:2"}) {
		t.Errorf("shared %+v", r.Shared)
	}
	if len(r.Issues) != 1 || r.Issues[0].Kind != IssueSharedEmail || r.Issues[0].Skipped {
		t.Errorf("issues %+v", r.Issues)
	}
}
