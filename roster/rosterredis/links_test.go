package rosterredis

import (
	"slices"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/roster"
)

func TestReconciliation(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		s := New(dial(t))
		if _, ok, err := s.Links(ctx, hv); ok || err != nil {
			t.Fatalf("Links before any reconciliation = %v, %v", ok, err)
		}
		at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
		first := Links{RosterVersion: 3, At: at, Links: []roster.Link{
			{PersonKey: "id:1", Connection: "harbor-view.openpath", UserID: "201", Email: "alice@example.com"},
			{PersonKey: "id:8", Connection: "harbor-view.kisi", UserID: "7021", Email: "frank@example.com"},
		}}
		steps := []struct {
			links  Links
			near   []string
			has    []string
			hasNot []string
		}{
			{first, []string{"gi.na@example.com", "dana@example.com"}, []string{"gi.na@example.com", "dana@example.com"}, []string{"gina@example.com", "alice@example.com"}},
			// The next reconciliation replaces the set: dana was fixed.
			{Links{RosterVersion: 4, At: at.Add(time.Hour)}, []string{"gi.na@example.com"}, []string{"gi.na@example.com"}, []string{"dana@example.com"}},
			{Links{RosterVersion: 5, At: at.Add(2 * time.Hour), Links: first.Links}, nil, nil, []string{"gi.na@example.com"}},
		}
		for i, st := range steps {
			if err := s.SaveReconciliation(ctx, hv, st.links, st.near); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			got, ok, err := s.Links(ctx, hv)
			if err != nil || !ok || got.RosterVersion != st.links.RosterVersion || !got.At.Equal(st.links.At) || !slices.Equal(got.Links, st.links.Links) {
				t.Fatalf("step %d: Links = %+v, %v, %v; want %+v", i, got, ok, err, st.links)
			}
			for _, e := range st.has {
				if ok, err := s.HasNearMiss(ctx, hv, e); !ok || err != nil {
					t.Errorf("step %d: HasNearMiss(%s) = %v, %v; want true", i, e, ok, err)
				}
			}
			for _, e := range st.hasNot {
				if ok, err := s.HasNearMiss(ctx, hv, e); ok || err != nil {
					t.Errorf("step %d: HasNearMiss(%s) = %v, %v; want false", i, e, ok, err)
				}
			}
		}
		if ok, err := s.HasNearMiss(ctx, "foundry-lofts", "gi.na@example.com"); ok || err != nil {
			t.Errorf("another property's near miss: %v, %v", ok, err)
		}
		if err := s.SaveReconciliation(ctx, "Bad Id", Links{}, nil); err == nil {
			t.Error("a bad property id was accepted")
		}
	})
}
