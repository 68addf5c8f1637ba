package tenantredis

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/tenant"
)

func testGrants(t *testing.T, dial backends.Dial) {
	ctx := context.Background()
	s, _, _ := newStore(t, dial)
	mustImport(t, s, "1", fixture(t, "seed.csv"), tenant.ImportOptions{})
	const ada = "ada@example.com"

	for _, b := range []string{"b2", " b1 ", "b2"} { // trimmed; granting twice is fine
		if err := s.Grant(ctx, "1", "ADA@example.com", b); err != nil {
			t.Fatalf("Grant %q: %v", b, err)
		}
	}
	if g, err := s.Grants(ctx, "1", ada); err != nil || !slices.Equal(g, []string{"b1", "b2"}) {
		t.Fatalf("Grants = %v, %v; want [b1 b2]", g, err)
	}
	if c, _ := s.Get(ctx, "1", ada); !slices.Equal(c.Buildings, []string{"b1", "b2"}) {
		t.Errorf("Get buildings = %v", c.Buildings)
	}
	granted := func(email, building string, want bool) {
		t.Helper()
		if ok, err := s.Granted(ctx, "1", email, building); ok != want || err != nil {
			t.Errorf("Granted(%s, %s) = %v, %v; want %v", email, building, ok, err, want)
		}
	}
	granted(ada, "b1", true)
	granted(" Ada@Example.com", "b1", true)
	granted(ada, "b3", false)
	granted("alan@example.com", "b1", false)
	granted("nobody@example.com", "b1", false) // unknown contact: not granted, not an error

	if err := s.Revoke(ctx, "1", ada, "b1"); err != nil {
		t.Fatal(err)
	}
	granted(ada, "b1", false)
	granted(ada, "b2", true)
	if err := s.Revoke(ctx, "1", ada, "b1"); err != nil {
		t.Errorf("revoking again = %v, want nil", err)
	}

	for name, err := range map[string]error{
		"Grant":  s.Grant(ctx, "1", "nobody@example.com", "b1"),
		"Revoke": s.Revoke(ctx, "1", "nobody@example.com", "b1"),
		"Grants": func() error { _, err := s.Grants(ctx, "1", "nobody@example.com"); return err }(),
	} {
		if !errors.Is(err, tenant.ErrNotFound) {
			t.Errorf("%s of an unknown contact = %v, want ErrNotFound", name, err)
		}
	}
	for _, tt := range []struct{ org, email, building string }{
		{"1", "not-an-email", "b1"},
		{"1", ada, ""},
		{"1", ada, "  "},
		{"1", ada, "b\n1"},
		{"", ada, "b1"},
		{"{1}", ada, "b1"},
	} {
		if err := s.Grant(ctx, tt.org, tt.email, tt.building); !errors.Is(err, tenant.ErrInvalidArgument) {
			t.Errorf("Grant(%q, %q, %q) = %v, want ErrInvalidArgument", tt.org, tt.email, tt.building, err)
		}
		if _, err := s.Granted(ctx, tt.org, tt.email, tt.building); !errors.Is(err, tenant.ErrInvalidArgument) {
			t.Errorf("Granted(%q, %q, %q) = %v, want ErrInvalidArgument", tt.org, tt.email, tt.building, err)
		}
	}
}

// Every call is scoped by organisation: the same email in two
// organisations is two contacts, and one organisation's import, grants and
// removals never reach the other.
func testCrossOrganisation(t *testing.T, dial backends.Dial) {
	ctx := context.Background()
	s, _, _ := newStore(t, dial)
	mustImport(t, s, "A", fixture(t, "seed.csv"), tenant.ImportOptions{})
	const ada = "ada@example.com"
	if err := s.Grant(ctx, "A", ada, "b1"); err != nil {
		t.Fatal(err)
	}

	// B sees nothing of A.
	if _, err := s.Get(ctx, "B", ada); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("B Get A's contact = %v, want ErrNotFound", err)
	}
	if p, err := s.List(ctx, "B", "", 0); err != nil || len(p.Contacts) != 0 || p.Total != 0 {
		t.Errorf("B List = %+v, %v; want empty", p, err)
	}
	if ok, err := s.Granted(ctx, "B", ada, "b1"); ok || err != nil {
		t.Errorf("B Granted A's grant = %v, %v", ok, err)
	}
	if err := s.Grant(ctx, "B", ada, "b1"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("B Grant A's contact = %v, want ErrNotFound", err)
	}
	if err := s.Revoke(ctx, "B", ada, "b1"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("B Revoke A's contact = %v, want ErrNotFound", err)
	}
	if _, err := s.Grants(ctx, "B", ada); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("B Grants of A's contact = %v, want ErrNotFound", err)
	}

	// B's own Ada, and a removing import of B, leave A's alone.
	rep := mustImport(t, s, "B", []byte("Full Name,Email,Phone\nAda B,ada@example.com,\n"), tenant.ImportOptions{RemoveMissing: true})
	if rep.Created != 1 || rep.Removed != 0 {
		t.Errorf("B import %+v, want 1 created, nothing removed", rep)
	}
	if ok, _ := s.Granted(ctx, "B", ada, "b1"); ok {
		t.Error("B's Ada has A's Ada's grant")
	}
	if err := s.Grant(ctx, "B", ada, "b9"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Get(ctx, "A", ada)
	if err != nil || a.Name != "Ada Lovelace" || a.Org != "A" || !slices.Equal(a.Buildings, []string{"b1"}) {
		t.Errorf("A's Ada = %+v, %v; want untouched by B", a, err)
	}
	if n := len(all(t, s, "A")); n != 3 {
		t.Errorf("A has %d contacts after B's import, want 3", n)
	}
	// Organisation ids that differ only in what a naive key would blur.
	for _, org := range []string{"A:contacts", "a", "A "} {
		if p, err := s.List(ctx, org, "", 0); err == nil && len(p.Contacts) != 0 {
			t.Errorf("organisation %q sees A's contacts", org)
		}
	}
}

// BenchmarkGranted measures the tile's per-request check.
func BenchmarkGranted(b *testing.B) {
	ctx := context.Background()
	s := tenant.NewStore(NewContacts(redistest.Start(b).Client(), "ck:test:"))
	if _, err := s.Import(ctx, "1", bytes.NewReader(rows(100)), tenant.ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	if err := s.Grant(ctx, "1", "tenant7@example.com", "b1"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := s.Granted(ctx, "1", "tenant7@example.com", "b1"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
