package server_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

func TestAdminAuditAndCache(t *testing.T) {
	st := newStack(t, stackOpts{})
	if _, err := st.client.Unlock(st.as(t, "alice@example.com"), &pb.UnlockRequest{EntryIds: []string{"101", "105"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.client.Unlock(st.as(t, "erin@example.com"), &pb.UnlockRequest{EntryIds: []string{"104"}}); err != nil {
		t.Fatal(err)
	}
	key, other := st.adminKey(t, "1"), st.adminKey(t, "2")
	auth := func(k string) []string { return []string{"x-auth-scheme", "api-token", "x-auth-apikey", k} }
	// The audit writer is asynchronous: wait for the three records.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, body := st.do(t, "GET", "/v1/admin/audit", nil, auth(key)...)
		if strings.Count(body, `"id"`) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit never showed 3 events: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tests := []struct {
		name, method, path, body string
		key                      string
		wantCode, wantEvents     int
		wantIn                   string
	}{
		{"alice", "GET", "/v1/admin/audit?user=Alice@Example.com", "", key, 200, 2, "alice@example.com"},
		{"denied only", "GET", "/v1/admin/audit?result=denied", "", key, 200, 1, `"entryId":"105"`},
		{"entry", "GET", "/v1/admin/audit?entryId=104", "", key, 200, 1, "erin@example.com"},
		{"page of one", "GET", "/v1/admin/audit?pageSize=1", "", key, 200, 1, `"nextPageToken":"1`},
		{"bad page size", "GET", "/v1/admin/audit?pageSize=1000", "", key, 400, 0, "page_size"},
		{"bad result", "GET", "/v1/admin/audit?result=MAYBE", "", key, 400, 0, "result"},
		{"bad token", "GET", "/v1/admin/audit?pageToken=xyz", "", key, 400, 0, "page_token"},
		{"other organisation", "GET", "/v1/admin/audit", "", other, 403, 0, "organisation"},
		{"no key", "GET", "/v1/admin/audit", "", "", 401, 0, "x-auth-apikey"},
		{"invalidate one", "POST", "/v1/admin/cache:invalidate", `{"email":"alice@example.com"}`, key, 200, 0, `"invalidated":"1"`},
		{"invalidate all", "POST", "/v1/admin/cache:invalidate", `{"all":true}`, key, 200, 0, `"invalidated"`},
		{"invalidate both", "POST", "/v1/admin/cache:invalidate", `{"all":true,"email":"a@example.com"}`, key, 400, 0, "email"},
		{"invalidate bad email", "POST", "/v1/admin/cache:invalidate", `{"email":"nope"}`, key, 400, 0, "email"},
		{"invalidate other organisation", "POST", "/v1/admin/cache:invalidate", `{"all":true}`, other, 403, 0, "organisation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.key != "" {
				h = auth(tt.key)
			}
			code, body := st.do(t, tt.method, tt.path, []byte(tt.body), h...)
			if code != tt.wantCode || !strings.Contains(body, tt.wantIn) {
				t.Fatalf("%s %s = %d %s; want %d containing %q", tt.method, tt.path, code, body, tt.wantCode, tt.wantIn)
			}
			if code == 200 && tt.method == "GET" {
				var out struct{ Events []json.RawMessage }
				json.Unmarshal([]byte(body), &out)
				if len(out.Events) != tt.wantEvents {
					t.Errorf("%d events, want %d: %s", len(out.Events), tt.wantEvents, body)
				}
			}
		})
	}
	// After invalidation alice still works (reloaded from the access system).
	if _, err := st.client.ListEntries(st.as(t, "alice@example.com"), &pb.ListEntriesRequest{}); err != nil {
		t.Fatal(err)
	}
}
