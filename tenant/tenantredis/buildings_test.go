package tenantredis

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/tenant"
)

// TestBuildingStore is tenant.BuildingStore's contract, run on every
// backend.
func TestBuildingStore(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) { testStore(t, dial(t)) })
}

func testStore(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	s := tenant.NewBuildings(NewBuildings(rdb, "ck:v1:"))
	if _, err := s.Put(ctx, tenant.Building{ID: "hq", Name: "Harbor View", Org: "1", LocationID: "152347"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []tenant.Building{
		{ID: "", Name: "x", Org: "1"}, {ID: "a b", Name: "x", Org: "1"}, {ID: "hq", Name: " ", Org: "1"},
		{ID: "hq", Name: "x", Org: ""}, {ID: "hq", Name: "x", Org: "1", LocationID: "{bad}"},
	} {
		if _, err := s.Put(ctx, bad); !errors.Is(err, tenant.ErrInvalidBuilding) {
			t.Errorf("Put(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if b, err := s.Get(ctx, "1", "hq"); err != nil || b.LocationID != "152347" || b.Name != "Harbor View" {
		t.Fatalf("Get = %+v, %v", b, err)
	}
	if _, err := s.Get(ctx, "2", "hq"); !errors.Is(err, tenant.ErrBuildingNotFound) {
		t.Errorf("another organisation sees the building: %v", err)
	}
	for id, want := range map[string]string{"hq": "152347", "999": "999"} {
		if loc, err := s.Location(ctx, "1", id); err != nil || loc != want {
			t.Errorf("Location(%s) = %q, %v; want %q", id, loc, err, want)
		}
	}
	if l, err := s.List(ctx, "1"); err != nil || len(l) != 1 {
		t.Errorf("List = %+v, %v", l, err)
	}
}
