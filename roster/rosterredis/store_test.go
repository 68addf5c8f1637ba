package rosterredis

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/roster"
)

const hv = "harbor-view"

func person(t *testing.T, id, email string, st roster.Status, moveOut roster.Date) roster.Person {
	t.Helper()
	p := roster.Person{Source: roster.SourceCSV, PersonID: id, Unit: "4B", FirstName: "P" + id, Status: st, MoveOut: moveOut}
	if err := p.SetEmail(email); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVersions(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		clock := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		s := New(rdb, WithClock(func() time.Time { clock = clock.Add(time.Minute); return clock }))

		if _, ok, err := s.Current(ctx, hv); ok || err != nil {
			t.Fatalf("Current before any save = %v, %v", ok, err)
		}
		alice := person(t, "1", "alice@example.com", roster.StatusCurrent, roster.Date{})
		erin := person(t, "2", "erin@example.com", roster.StatusNotice, roster.Date{Year: 2026, Month: 11, Day: 30})
		carol := person(t, "3", "carol@example.com", roster.StatusCurrent, roster.Date{})
		issues := []roster.Issue{{Line: 7, Kind: roster.IssueNoEmail, Skipped: true, Reason: "no email"}}
		v1, err := s.Save(ctx, hv, Snapshot{Source: roster.SourceCSV, Origin: "roster.csv", People: []roster.Person{alice, erin, carol}, Issues: issues})
		if err != nil {
			t.Fatal(err)
		}
		if v1.Number != 1 || v1.Previous != 0 || v1.Added != 3 || v1.People != 3 {
			t.Errorf("first version %+v", v1)
		}

		// The next import: alice's email changed, erin's move-out was
		// postponed, carol is gone, dave is new.
		alice2 := person(t, "1", "alice.anders@example.com", roster.StatusCurrent, roster.Date{})
		erin2 := erin
		erin2.MoveOut = roster.Date{Year: 2027, Month: 1, Day: 31}
		dave := person(t, "4", "dave@example.com", roster.StatusFuture, roster.Date{})
		v2, err := s.Save(ctx, hv, Snapshot{Source: roster.SourceCSV, People: []roster.Person{alice2, erin2, dave}})
		if err != nil {
			t.Fatal(err)
		}
		if v2.Number != 2 || v2.Previous != 1 || v2.Added != 1 || v2.Removed != 1 || v2.Changed != 2 {
			t.Fatalf("second version %+v", v2)
		}
		got, ok, err := s.Version(ctx, hv, 2)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if c := got.Diff.Changed; len(c) != 2 || !c[0].Has("email") || c[0].Key != "id:1" || !c[1].Has("moveOut") {
			t.Errorf("changes %+v", c)
		}
		if got.Diff.Removed[0].PersonID != "3" || got.Diff.Added[0].PersonID != "4" {
			t.Errorf("diff %+v", got.Diff)
		}
		if v, _, _ := s.Version(ctx, hv, 1); len(v.Issues) != 1 || v.Issues[0].Line != 7 {
			t.Errorf("version 1 issues %+v", v.Issues)
		}

		// An incremental pull merges: only erin changes, nobody is removed.
		erin3 := erin2
		erin3.Status = roster.StatusPast
		cursor := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
		v3, err := s.Save(ctx, hv, Snapshot{Source: roster.SourceBuildium, Origin: "incremental", Incremental: true, People: []roster.Person{erin3}, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if v3.People != 3 || v3.Removed != 0 || v3.Changed != 1 || v3.Added != 0 {
			t.Errorf("incremental version %+v", v3)
		}
		cur, ok, err := s.Current(ctx, hv)
		if err != nil || !ok || cur.Version != 3 || !cur.Cursor.Equal(cursor) || len(cur.People) != 3 {
			t.Fatalf("current %+v, %v, %v", cur, ok, err)
		}
		if cur.People[1].Status != roster.StatusPast || cur.People[0].Email != "alice.anders@example.com" {
			t.Errorf("current people %+v", cur.People)
		}
		// A save without a cursor keeps the previous one.
		if _, err := s.Save(ctx, hv, Snapshot{Source: roster.SourceBuildium, Incremental: true}); err != nil {
			t.Fatal(err)
		}
		if cur, _, _ := s.Current(ctx, hv); !cur.Cursor.Equal(cursor) {
			t.Errorf("cursor %v after a save without one", cur.Cursor)
		}

		vs, err := s.Versions(ctx, hv)
		if err != nil {
			t.Fatal(err)
		}
		var nums []int
		for _, v := range vs {
			nums = append(nums, v.Number)
			if !v.Diff.Empty() || v.Issues != nil {
				t.Errorf("listing carries the diff of %d", v.Number)
			}
		}
		if fmt.Sprint(nums) != "[4 3 2 1]" {
			t.Errorf("versions %v", nums)
		}
		// Properties are apart; keys carry the property's hash tag.
		if vs, _ := s.Versions(ctx, "foundry-lofts"); len(vs) != 0 {
			t.Errorf("foundry-lofts has %d versions", len(vs))
		}
		if n, err := rdb.Exists(ctx, "ck:v1:{roster:harbor-view}:current", "ck:v1:{roster:harbor-view}:v:1").Result(); n != 2 || err != nil {
			t.Errorf("keys: %d, %v", n, err)
		}
	})
}

func TestHistoryIsBounded(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		s := New(rdb, WithKeep(3))
		for i := range 5 {
			p := person(t, "1", fmt.Sprintf("a%d@example.com", i), roster.StatusCurrent, roster.Date{})
			if _, err := s.Save(ctx, hv, Snapshot{Source: roster.SourceCSV, People: []roster.Person{p}}); err != nil {
				t.Fatal(err)
			}
		}
		vs, err := s.Versions(ctx, hv)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 3 || vs[0].Number != 5 || vs[2].Number != 3 {
			t.Fatalf("versions %+v", vs)
		}
		for _, n := range []int{1, 2} {
			if _, ok, err := s.Version(ctx, hv, n); ok || err != nil {
				t.Errorf("version %d kept: %v, %v", n, ok, err)
			}
			if n, _ := rdb.Exists(ctx, versionKey(hv, n)).Result(); n != 0 {
				t.Errorf("key of trimmed version left behind")
			}
		}
	})
}

// TestConcurrentSaves: replicas saving at once each get their own version
// and each is compared with the one just before it; with incremental
// pulls no row is lost.
func TestConcurrentSaves(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := New(rdb) // a replica
				p := person(t, fmt.Sprint(i), fmt.Sprintf("p%d@example.com", i), roster.StatusCurrent, roster.Date{})
				_, err := s.Save(ctx, hv, Snapshot{Source: roster.SourceBuildium, Incremental: true, People: []roster.Person{p}})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		s := New(rdb)
		cur, _, err := s.Current(ctx, hv)
		if err != nil || cur.Version != n || len(cur.People) != n {
			t.Fatalf("current: version %d, %d people, %v", cur.Version, len(cur.People), err)
		}
		vs, _ := s.Versions(ctx, hv)
		for i, v := range vs {
			if v.Number != n-i || v.Previous != v.Number-1 || v.Added != 1 || v.People != v.Number {
				t.Errorf("version %+v", v)
			}
		}
	})
}

func TestBadProperty(t *testing.T) {
	s := New(nil)
	for _, p := range []string{"", "Harbor", "a}b", strings.Repeat("a", 64)} {
		if _, err := s.Save(t.Context(), p, Snapshot{}); err == nil {
			t.Errorf("property %q accepted", p)
		}
	}
}

// BenchmarkSave10k stores a 10,000-person roster with one change each
// time (a real redis-server).
func BenchmarkSave10k(b *testing.B) {
	rdb := redistest.Start(b).Client()
	s := New(rdb)
	people := make([]roster.Person, 10_000)
	for i := range people {
		p := roster.Person{Source: roster.SourceBuildium, PersonID: fmt.Sprint(100_000 + i), HouseholdID: fmt.Sprint(1_000_000 + i),
			PropertyID: "6001", Unit: fmt.Sprint(i + 1), FirstName: "Resident", LastName: fmt.Sprint(i), Status: roster.StatusCurrent,
			LeaseStart: roster.Date{Year: 2025, Month: 1, Day: 1}, LeaseEnd: roster.Date{Year: 2026, Month: 12, Day: 31}}
		if err := p.SetEmail(fmt.Sprintf("resident%06d@example.com", i)); err != nil {
			b.Fatal(err)
		}
		people[i] = p
	}
	if _, err := s.Save(b.Context(), hv, Snapshot{Source: roster.SourceBuildium, People: people}); err != nil {
		b.Fatal(err)
	}
	size, _ := rdb.StrLen(b.Context(), currentKey(hv)).Result()
	b.ReportMetric(float64(size), "current-bytes")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		people[i%len(people)].Status = roster.StatusNotice
		i++
		if _, err := s.Save(b.Context(), hv, Snapshot{Source: roster.SourceBuildium, People: people}); err != nil {
			b.Fatal(err)
		}
	}
}
