package tenantredis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/tenant"
)

func testList(t *testing.T, dial backends.Dial) {
	ctx := context.Background()
	s, _, _ := newStore(t, dial)
	var b strings.Builder
	b.WriteString("Full Name,Email,Phone\n")
	var want []string
	for i := range 25 {
		fmt.Fprintf(&b, "Tenant %d,t%02d@example.com,\n", 24-i, 24-i) // file order is not list order
		want = append(want, fmt.Sprintf("t%02d@example.com", i))
	}
	mustImport(t, s, "1", []byte(b.String()), tenant.ImportOptions{})

	var got []string
	var pages []int
	cursor := ""
	for {
		p, err := s.List(ctx, "1", cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 25 {
			t.Errorf("Total = %d, want 25", p.Total)
		}
		pages = append(pages, len(p.Contacts))
		for _, c := range p.Contacts {
			got = append(got, c.Email)
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) || !slices.Equal(pages, []int{10, 10, 5}) {
		t.Errorf("listed %v in pages %v; want %v in 10, 10, 5", got, pages, want)
	}
	// A page that ends exactly at the last contact has no Next.
	if p, _ := s.List(ctx, "1", "t14@example.com", 10); len(p.Contacts) != 10 || p.Next != "" {
		t.Errorf("last full page: %d contacts, Next %q", len(p.Contacts), p.Next)
	}
	if p, _ := s.List(ctx, "1", "", 0); len(p.Contacts) != 25 || p.Next != "" {
		t.Errorf("default limit: %d contacts, Next %q", len(p.Contacts), p.Next)
	}
	if _, err := s.List(ctx, "1", "", -1); !errors.Is(err, tenant.ErrInvalidArgument) {
		t.Errorf("negative limit = %v", err)
	}
	if _, err := s.List(ctx, "", "", 10); !errors.Is(err, tenant.ErrInvalidArgument) {
		t.Errorf("empty organisation = %v", err)
	}
}

func testGet(t *testing.T, dial backends.Dial) {
	ctx := context.Background()
	at := time.Date(2026, 11, 2, 10, 30, 0, 0, time.UTC)
	s, _, _ := newStore(t, dial, tenant.WithClock(func() time.Time { return at }))
	mustImport(t, s, "1", fixture(t, "seed.csv"), tenant.ImportOptions{})
	c, err := s.Get(ctx, "1", " GRACE.hopper@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := tenant.Contact{Org: "1", Email: "grace.hopper@example.com", Name: "Grace Hopper", Phone: "+12125550199", CreatedAt: at, UpdatedAt: at}
	if c.Org != want.Org || c.Email != want.Email || c.Name != want.Name || c.Phone != want.Phone ||
		!c.CreatedAt.Equal(at) || !c.UpdatedAt.Equal(at) || len(c.Buildings) != 0 {
		t.Errorf("Get = %+v, want %+v", c, want)
	}
	if _, err := s.Get(ctx, "1", "nobody@example.com"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("Get unknown = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "1", "nobody"); !errors.Is(err, tenant.ErrInvalidArgument) {
		t.Errorf("Get malformed email = %v, want ErrInvalidArgument", err)
	}
}

// Contacts written by the current release, under its key names and in its
// JSON, are read as they were.
func testReleaseFormat(t *testing.T, dial backends.Dial) {
	ctx := context.Background()
	s, _, rdb := newStore(t, dial)
	pipe := rdb.TxPipeline()
	pipe.HSet(ctx, "ck:test:tenant:{7}:contacts", "ada@example.com",
		`{"name":"Ada Lovelace","phone":"+14155550123","createdAt":"2026-11-01T09:00:00Z","updatedAt":"2026-11-02T10:30:00Z"}`)
	pipe.ZAdd(ctx, "ck:test:tenant:{7}:index", redis.Z{Member: "ada@example.com"})
	pipe.SAdd(ctx, "ck:test:tenant:{7}:grants:ada@example.com", "b2", "b1")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := s.Get(ctx, "7", "ada@example.com")
	created, updated := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 10, 30, 0, 0, time.UTC)
	if err != nil || c.Name != "Ada Lovelace" || c.Phone != "+14155550123" || !c.CreatedAt.Equal(created) ||
		!c.UpdatedAt.Equal(updated) || !slices.Equal(c.Buildings, []string{"b1", "b2"}) {
		t.Fatalf("Get = %+v, %v", c, err)
	}
	if p, err := s.List(ctx, "7", "", 0); err != nil || p.Total != 1 || len(p.Contacts) != 1 || p.Contacts[0].Email != "ada@example.com" {
		t.Errorf("List = %+v, %v", p, err)
	}
	if ok, err := s.Granted(ctx, "7", "ada@example.com", "b1"); !ok || err != nil {
		t.Errorf("Granted = %v, %v", ok, err)
	}
}
