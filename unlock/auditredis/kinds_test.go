package auditredis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/unlock/auditredis"
)

// Records of other kinds share the stream with unlocks: an unlock's
// record has no kind field (as before kinds) and reads back as "unlock",
// and the kind filter selects either.
func testAuditKinds(t *testing.T, rdb redis.UniversalClient) {
	ctx := context.Background()
	// A record as the release before kinds wrote it.
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: auditredis.DefaultStream, Values: map[string]any{
		"at": time.Now().UnixMilli(), "email": "alice@example.com", "entry": "101", "result": "OK", "message": "", "latency_us": 900,
	}}).Err(); err != nil {
		t.Fatal(err)
	}
	a := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{})
	a.Record(unlock.Attempt{At: time.Now(), Email: "erin@example.com", EntryID: "104", Property: "harbor-view", Status: unlock.OK})
	a.Record(unlock.Attempt{Kind: unlock.KindSettingsChanged, At: time.Now(), Email: "admin:ops/ab12", EntryID: "152347",
		Property: "harbor-view", Status: unlock.OK, Message: "inviteOnly: false → true"})
	a.Record(unlock.Attempt{Kind: unlock.KindPassIssued, At: time.Now(), Email: "envoy", EntryID: "p-1", Property: "harbor-view", Status: unlock.OK})
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	log := auditredis.NewAuditLog(rdb, "")
	tests := []struct {
		kind string
		want []string // users, newest first
	}{
		{"", []string{"envoy", "admin:ops/ab12", "erin@example.com", "alice@example.com"}},
		{unlock.KindUnlock, []string{"erin@example.com", "alice@example.com"}},
		{unlock.KindSettingsChanged, []string{"admin:ops/ab12"}},
		{unlock.KindPassEnded, nil},
	}
	for _, tt := range tests {
		recs, _, err := log.List(ctx, unlock.AuditFilter{Kind: tt.kind}, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, r := range recs {
			users = append(users, r.User)
			if tt.kind != "" && r.Kind != tt.kind {
				t.Errorf("kind %q: record %+v", tt.kind, r)
			}
		}
		if fmt.Sprint(users) != fmt.Sprint(tt.want) {
			t.Errorf("kind %q: %v, want %v", tt.kind, users, tt.want)
		}
	}
	recs, _, _ := log.List(ctx, unlock.AuditFilter{Kind: unlock.KindSettingsChanged}, 1, "")
	if len(recs) != 1 || recs[0].Message != "inviteOnly: false → true" || recs[0].EntryID != "152347" || recs[0].Property != "harbor-view" {
		t.Errorf("settings change read back as %+v", recs)
	}
}
