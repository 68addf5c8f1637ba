package visitorredis

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/visitor"
)

// testEntryIndex: SaveSettings writes the settings and the entry index
// together; EntryLocations reads it per property.
func testEntryIndex(t *testing.T, rdb redis.UniversalClient, s *Store, p string) {
	ctx := context.Background()
	steps := []struct {
		name string
		w    visitor.SettingsWrite
		want map[string][]string // EntryLocations("harbor", e1, e2, e3)
	}{
		{"first location", visitor.SettingsWrite{Property: "harbor", Location: "LA", Data: []byte(`{"a":1}`), Mapped: []string{"e1", "e2"}},
			map[string][]string{"e1": {"LA"}, "e2": {"LA"}}},
		{"second location shares e2", visitor.SettingsWrite{Property: "harbor", Location: "LB", Data: []byte(`{"b":1}`), Mapped: []string{"e2", "e3"}},
			map[string][]string{"e1": {"LA"}, "e2": {"LA", "LB"}, "e3": {"LB"}}},
		{"another property's location", visitor.SettingsWrite{Property: "annex", Location: "LC", Data: []byte(`{"c":1}`), Mapped: []string{"e1"}},
			map[string][]string{"e1": {"LA"}, "e2": {"LA", "LB"}, "e3": {"LB"}}},
		{"LA drops e2", visitor.SettingsWrite{Property: "harbor", Location: "LA", Data: []byte(`{"a":2}`), Mapped: []string{"e1"}, Unmapped: []string{"e2"}},
			map[string][]string{"e1": {"LA"}, "e2": {"LB"}, "e3": {"LB"}}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := s.SaveSettings(ctx, st.w); err != nil {
				t.Fatal(err)
			}
			if b, ok, err := s.Settings(ctx, st.w.Location); err != nil || !ok || string(b) != string(st.w.Data) {
				t.Fatalf("settings %s %v %v", b, ok, err)
			}
			got, err := s.EntryLocations(ctx, "harbor", []string{"e1", "e2", "e3"})
			if err != nil {
				t.Fatal(err)
			}
			for _, locs := range got {
				slices.Sort(locs)
			}
			if !reflect.DeepEqual(got, st.want) {
				t.Errorf("index %v, want %v", got, st.want)
			}
		})
	}
	if !exists(t, rdb, p+"eloc:harbor:e1") || !exists(t, rdb, p+"eloc:annex:e1") {
		t.Error("index keys not where documented")
	}
	locs, err := s.SettingsLocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(locs)
	for _, l := range []string{"LA", "LB", "LC"} {
		if _, found := slices.BinarySearch(locs, l); !found {
			t.Errorf("SettingsLocations %v lacks %s", locs, l)
		}
	}
	if err := s.IndexEntries(ctx, "harbor", "LD", []string{"e1", "e4"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.EntryLocations(ctx, "harbor", []string{"e1", "e4"})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got["e1"])
	if !reflect.DeepEqual(got, map[string][]string{"e1": {"LA", "LD"}, "e4": {"LD"}}) {
		t.Errorf("after IndexEntries: %v", got)
	}
}
