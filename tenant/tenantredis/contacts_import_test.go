package tenantredis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/tenant"
)

// clock is a settable clock for a tenant.Store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func testImportIdempotentAndUpdates(t *testing.T, dial backends.Dial) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	s, _, _ := newStore(t, dial, tenant.WithClock(clk.now))
	seed := fixture(t, "seed.csv")

	rep := mustImport(t, s, "1", seed, tenant.ImportOptions{})
	if rep.Created != 3 || rep.Updated+rep.Unchanged+rep.Removed != 0 {
		t.Fatalf("first import %+v, want 3 created", rep)
	}
	clk.t = clk.t.Add(time.Hour)
	rep = mustImport(t, s, "1", seed, tenant.ImportOptions{RemoveMissing: true})
	if rep.Unchanged != 3 || rep.Created+rep.Updated+rep.Removed != 0 {
		t.Fatalf("same file again %+v, want 3 unchanged and nothing else", rep)
	}
	if c, _ := s.Get(ctx, "1", "ada@example.com"); !c.UpdatedAt.Equal(clk.t.Add(-time.Hour)) {
		t.Errorf("an unchanged contact's UpdatedAt moved to %v", c.UpdatedAt)
	}

	// The same contacts written differently (case, spacing, phone format)
	// are the same contacts.
	same := "Tenant Contact Full Name,Tenant Contact Email,Tenant Contact Phone Number\n" +
		"  Ada   Lovelace ,ADA@example.com,415.555.0123\n" +
		"Grace Hopper,grace.hopper@example.com,2125550199\n" +
		"Alan Turing,alan@example.com,\n"
	if rep = mustImport(t, s, "1", []byte(same), tenant.ImportOptions{}); rep.Unchanged != 3 {
		t.Errorf("same contacts reformatted %+v, want 3 unchanged", rep)
	}

	changed := "Full Name,Email,Phone\n" +
		"Ada King,ada@example.com,(415) 555-0123\n" + // name
		"Alan Turing,alan@example.com,+44 20 7946 0958\n" + // phone
		"Katherine Johnson,katherine@example.com,\n" // new
	rep = mustImport(t, s, "1", []byte(changed), tenant.ImportOptions{})
	if rep.Created != 1 || rep.Updated != 2 || rep.Unchanged != 0 || rep.Removed != 0 {
		t.Fatalf("changed file %+v, want 1 created, 2 updated, grace left alone", rep)
	}
	c, err := s.Get(ctx, "1", "Ada@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	start := clk.t.Add(-time.Hour)
	if c.Name != "Ada King" || !c.CreatedAt.Equal(start) || !c.UpdatedAt.Equal(clk.t) {
		t.Errorf("updated contact %+v: want new name, CreatedAt %v kept, UpdatedAt %v", c, start, clk.t)
	}
	if got := all(t, s, "1"); len(got) != 4 || got["grace.hopper@example.com"].Name != "Grace Hopper" {
		t.Errorf("contacts after update %v, want 4 with grace kept", got)
	}
}

func testImportRemoveMissing(t *testing.T, dial backends.Dial) {
	ctx := context.Background()
	s, c, rdb := newStore(t, dial)
	mustImport(t, s, "1", []byte("Full Name,Email,Phone\n"+
		"Ada Lovelace,ada@example.com,\n"+
		"Grace Hopper,grace@example.com,\n"+
		"Alan Turing,alan@example.com,\n"+
		"Katherine Johnson,katherine@example.com,\n"), tenant.ImportOptions{})
	for _, e := range []string{"alan@example.com", "katherine@example.com", "ada@example.com"} {
		if err := s.Grant(ctx, "1", e, "b1"); err != nil {
			t.Fatal(err)
		}
	}
	// Grace is on a bad row: she is still listed, so she stays.
	next := []byte("Full Name,Email,Phone\n" +
		"Ada Lovelace,ada@example.com,\n" +
		"Grace Hopper,grace@example.com,not a phone\n")

	// Without the flag, and when all or nothing refuses the file, nobody goes.
	if rep := mustImport(t, s, "1", []byte("Full Name,Email,Phone\nAda Lovelace,ada@example.com,\n"), tenant.ImportOptions{}); rep.Removed != 0 || len(all(t, s, "1")) != 4 {
		t.Fatalf("import without RemoveMissing removed: %+v", rep)
	}
	if _, err := s.Import(ctx, "1", bytes.NewReader(next), tenant.ImportOptions{RemoveMissing: true}); !errors.Is(err, tenant.ErrBadRows) {
		t.Fatalf("all-or-nothing import with a bad row = %v, want ErrBadRows", err)
	}
	if n := len(all(t, s, "1")); n != 4 {
		t.Fatalf("refused import left %d contacts, want 4", n)
	}

	rep := mustImport(t, s, "1", next, tenant.ImportOptions{RemoveMissing: true, GoodRowsOnly: true})
	if rep.Removed != 2 || rep.Unchanged != 1 || rep.BadRowCount != 1 {
		t.Fatalf("report %+v, want alan and katherine removed, ada unchanged, grace bad", rep)
	}
	got := all(t, s, "1")
	if len(got) != 2 || got["ada@example.com"].Email == "" || got["grace@example.com"].Email == "" {
		t.Fatalf("contacts %v, want ada and grace", got)
	}
	for _, e := range []string{"alan@example.com", "katherine@example.com"} {
		if _, err := s.Get(ctx, "1", e); !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("removed %s: Get = %v, want ErrNotFound", e, err)
		}
		if ok, err := s.Granted(ctx, "1", e, "b1"); ok || err != nil {
			t.Errorf("removed %s still granted (%v, %v)", e, ok, err)
		}
		if n := rdb.Exists(ctx, c.grantsKey("1", e)).Val(); n != 0 {
			t.Errorf("grants of removed %s left in Redis", e)
		}
	}
	if ok, _ := s.Granted(ctx, "1", "ada@example.com", "b1"); !ok {
		t.Error("a kept contact lost its grant")
	}
	// A contact removed and imported again starts without grants.
	mustImport(t, s, "1", []byte("Full Name,Email,Phone\nAlan Turing,alan@example.com,\n"), tenant.ImportOptions{})
	if g, err := s.Grants(ctx, "1", "alan@example.com"); err != nil || len(g) != 0 {
		t.Errorf("re-created contact has grants %v, %v", g, err)
	}
}

// rows returns a CSV of n distinct contacts with valid US phones.
func rows(n int) []byte {
	var b bytes.Buffer
	b.WriteString("Full Name,Email,Phone\n")
	for i := range n {
		fmt.Fprintf(&b, "Tenant %d,tenant%d@example.com,(415) %03d-%04d\n", i, i, 200+i/10000, i%10000)
	}
	return b.Bytes()
}

func testImport10000Rows(t *testing.T, dial backends.Dial) {
	s, _, _ := newStore(t, dial)
	csv := rows(10_000)
	start := time.Now()
	rep := mustImport(t, s, "1", csv, tenant.ImportOptions{})
	t.Logf("10,000 rows (%d KiB) imported in %v", len(csv)>>10, time.Since(start))
	if rep.Created != 10_000 || rep.Rows != 10_000 {
		t.Fatalf("report %+v", rep)
	}
	got := all(t, s, "1")
	if len(got) != 10_000 || got["tenant9999@example.com"].Phone != "+14152009999" {
		t.Fatalf("stored %d contacts; tenant9999 = %+v", len(got), got["tenant9999@example.com"])
	}
	start = time.Now()
	rep = mustImport(t, s, "1", csv, tenant.ImportOptions{RemoveMissing: true})
	t.Logf("again, unchanged, in %v", time.Since(start))
	if rep.Unchanged != 10_000 || rep.Created+rep.Updated+rep.Removed != 0 {
		t.Fatalf("re-import %+v", rep)
	}
}

func testImportLimits(t *testing.T, dial backends.Dial) {
	s, _, _ := newStore(t, dial)
	header := "Full Name,Email,Phone\n"
	tooBig := io.MultiReader(strings.NewReader(header), strings.NewReader(strings.Repeat("x", tenant.MaxFileBytes)))
	var many strings.Builder
	many.WriteString(header)
	for i := range tenant.MaxRows + 1 {
		fmt.Fprintf(&many, "T %d,t%d@example.com,\n", i, i)
	}
	for name, r := range map[string]io.Reader{"bytes": tooBig, "rows": strings.NewReader(many.String())} {
		_, err := s.Import(context.Background(), "1", r, tenant.ImportOptions{})
		if !errors.Is(err, tenant.ErrTooLarge) || !errors.Is(err, tenant.ErrInvalidCSV) {
			t.Errorf("too many %s: Import = %v, want ErrTooLarge and ErrInvalidCSV", name, err)
		}
	}
	if got := all(t, s, "1"); len(got) != 0 {
		t.Errorf("refused files stored %d contacts", len(got))
	}
}

func testImportArguments(t *testing.T, dial backends.Dial) {
	s, _, _ := newStore(t, dial)
	seed := fixture(t, "seed.csv")
	for _, tt := range []struct{ org, region string }{
		{"", "US"}, {"a b", "US"}, {"{1}", "US"}, {strings.Repeat("1", 129), "US"}, {"1", "XX"}, {"1", "USA"},
	} {
		if _, err := s.Import(context.Background(), tt.org, bytes.NewReader(seed), tenant.ImportOptions{Region: tt.region}); !errors.Is(err, tenant.ErrInvalidArgument) {
			t.Errorf("Import(org %q, region %q) = %v, want ErrInvalidArgument", tt.org, tt.region, err)
		}
	}
}

// A write to the organisation's contacts between an import's read and its
// commit makes the commit fail; the import is worked out again on the new
// state, so neither write is lost.
func testImportConcurrentChange(t *testing.T, dial backends.Dial) {
	now := time.Now
	s, _, rdb := newStore(t, dial, clockVar(&now))
	mustImport(t, s, "1", fixture(t, "seed.csv"), tenant.ImportOptions{})
	other := tenant.NewStore(NewContacts(rdb, "ck:test:"))
	calls := 0
	now = func() time.Time { // called by the import between read and commit
		calls++
		if calls == 1 {
			mustImport(t, other, "1", []byte("Full Name,Email,Phone\nKatherine Johnson,katherine@example.com,\n"), tenant.ImportOptions{})
		}
		return time.Now()
	}
	rep := mustImport(t, s, "1", []byte("Full Name,Email,Phone\nAda Lovelace,ada@example.com,\n"), tenant.ImportOptions{RemoveMissing: true})
	if calls != 2 {
		t.Errorf("import worked out %d times, want 2 (once more after the conflict)", calls)
	}
	// The second attempt saw Katherine, and removed her with the others.
	if rep.Removed != 3 || rep.Updated != 1 {
		t.Errorf("report %+v, want 3 removed (grace, alan, katherine) and ada updated", rep)
	}
	if got := all(t, s, "1"); len(got) != 1 {
		t.Errorf("contacts %v, want only ada", got)
	}
}

// BenchmarkImport measures a monthly re-upload of a large building's list:
// 1,000 contacts, all unchanged.
func BenchmarkImport(b *testing.B) {
	ctx := context.Background()
	s := tenant.NewStore(NewContacts(redistest.Start(b).Client(), "ck:test:"))
	csv := rows(1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Import(ctx, "1", bytes.NewReader(csv), tenant.ImportOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// A stored contact that no longer decodes is overwritten by an import that
// lists it (counted as updated, not created), and keeps its place in the
// index.
func testImportUndecodable(t *testing.T, dial backends.Dial) {
	ctx := context.Background()
	s, c, rdb := newStore(t, dial)
	mustImport(t, s, "1", fixture(t, "seed.csv"), tenant.ImportOptions{})
	if err := rdb.HSet(ctx, c.contactsKey("1"), "ada@example.com", "{not json").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "1", "ada@example.com"); err == nil || errors.Is(err, tenant.ErrNotFound) {
		t.Fatalf("Get of an undecodable contact = %v, want a decoding error", err)
	}
	rep := mustImport(t, s, "1", fixture(t, "seed.csv"), tenant.ImportOptions{})
	if rep.Updated != 1 || rep.Unchanged != 2 || rep.Created != 0 {
		t.Fatalf("report %+v, want ada updated and the others unchanged", rep)
	}
	got, err := s.Get(ctx, "1", "ada@example.com")
	if err != nil || got.Name != "Ada Lovelace" || got.CreatedAt.IsZero() {
		t.Errorf("Get = %+v, %v; want Ada rewritten with a CreatedAt", got, err)
	}
	if n := len(all(t, s, "1")); n != 3 {
		t.Errorf("%d contacts listed, want 3", n)
	}
}
