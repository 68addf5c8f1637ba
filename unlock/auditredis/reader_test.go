package auditredis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/unlock/auditredis"
)

func testAuditLogFiltersAndPages(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	a := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{})
	users := []string{"alice@example.com", "erin@example.com", "guest:p-1"}
	// alice's records are from before properties (none named).
	props := []string{"", "harbor-view", "foundry-lofts"}
	for i := range 300 {
		st := unlock.OK
		if i%5 == 0 {
			st = unlock.Denied
		}
		a.Record(unlock.Attempt{At: time.Now(), Email: users[i%3], Property: props[i%3], EntryID: strconv.Itoa(100 + i%4), Status: st, Latency: time.Millisecond})
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	log := auditredis.NewAuditLog(rdb, "")
	tests := []struct {
		name string
		f    unlock.AuditFilter
		want int
	}{
		{"all", unlock.AuditFilter{}, 300},
		{"one user", unlock.AuditFilter{User: "erin@example.com"}, 100},
		{"user and entry", unlock.AuditFilter{User: "alice@example.com", EntryID: "100"}, 25},
		{"denied", unlock.AuditFilter{Result: "denied"}, 60},
		{"guest denied", unlock.AuditFilter{User: "guest:p-1", Result: "DENIED"}, 20},
		{"nobody", unlock.AuditFilter{User: "mallory@example.com"}, 0},
		{"a property", unlock.AuditFilter{Property: "foundry-lofts"}, 100},
		{"the default property, with records naming none", unlock.AuditFilter{Property: "harbor-view", Unnamed: true}, 200},
		{"the default property's named records", unlock.AuditFilter{Property: "harbor-view"}, 100},
		{"another property's user", unlock.AuditFilter{Property: "foundry-lofts", User: "erin@example.com"}, 0},
		{"a property and a result", unlock.AuditFilter{Property: "foundry-lofts", Result: "DENIED"}, 20},
		{"in the future", unlock.AuditFilter{Since: time.Now().Add(time.Hour)}, 0},
		{"until long ago", unlock.AuditFilter{Until: time.Now().Add(-time.Hour)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var all []unlock.AuditRecord
			cursor := ""
			for pages := 0; ; pages++ {
				recs, next, err := log.List(ctx, tt.f, 7, cursor)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, recs...)
				if next == "" {
					break
				}
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				cursor = next
			}
			if len(all) != tt.want {
				t.Fatalf("got %d records over all pages, want %d", len(all), tt.want)
			}
			seen := map[string]bool{}
			for i, r := range all {
				if seen[r.ID] {
					t.Fatalf("record %s twice", r.ID)
				}
				seen[r.ID] = true
				if i > 0 && r.ID >= all[i-1].ID && len(r.ID) == len(all[i-1].ID) {
					t.Fatalf("not newest first: %s after %s", r.ID, all[i-1].ID)
				}
				if p := tt.f.Property; p != "" && r.Property != p && (!tt.f.Unnamed || r.Property != "") {
					t.Fatalf("record of property %q in %q's listing", r.Property, p)
				}
				if r.At.IsZero() || r.Latency != time.Millisecond || r.Result == "" {
					t.Fatalf("record %+v", r)
				}
			}
		})
	}
	if _, _, err := log.List(ctx, unlock.AuditFilter{}, 10, "not-an-id"); err == nil {
		t.Error("a bad page token was accepted")
	}
}
