package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/cache"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// restoreFixture writes a Redis dump made by an earlier release
// (testdata/upgrade-*.json, written by that release's own test helpers
// after typical use) into rdb, and returns the dump's admin key.
func restoreFixture(t *testing.T, rdb redis.UniversalClient, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dump struct {
		AdminKey string `json:"admin_key"`
		Keys     map[string]struct {
			Type   string              `json:"type"`
			PTTLms int64               `json:"pttl_ms"`
			String string              `json:"string"`
			Hash   map[string]string   `json:"hash"`
			Set    []string            `json:"set"`
			ZSet   map[string]float64  `json:"zset"`
			Stream []map[string]string `json:"stream"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(raw, &dump); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	unb64 := func(s string) string {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for k, r := range dump.Keys {
		var err error
		switch r.Type {
		case "string":
			err = rdb.Set(ctx, k, unb64(r.String), 0).Err()
		case "hash":
			for f, v := range r.Hash {
				if err = rdb.HSet(ctx, k, f, unb64(v)).Err(); err != nil {
					break
				}
			}
		case "set":
			err = rdb.SAdd(ctx, k, r.Set).Err()
		case "zset":
			for m, sc := range r.ZSet {
				if err = rdb.ZAdd(ctx, k, redis.Z{Member: m, Score: sc}).Err(); err != nil {
					break
				}
			}
		case "stream":
			for _, e := range r.Stream {
				vals := map[string]any{}
				for f, v := range e {
					if f != "_id" {
						vals[f] = v
					}
				}
				if err = rdb.XAdd(ctx, &redis.XAddArgs{Stream: k, ID: e["_id"], Values: vals}).Err(); err != nil {
					break
				}
			}
		default:
			t.Fatalf("fixture key %s has type %s", k, r.Type)
		}
		if err == nil && r.PTTLms > 0 {
			err = rdb.PExpire(ctx, k, time.Duration(r.PTTLms)*time.Millisecond).Err()
		}
		if err != nil {
			t.Fatalf("restore %s: %v", k, err)
		}
	}
	return dump.AdminKey
}

// An upgrade from the release before properties (af2ad95): on the Redis it
// left, the new release serves the same data as the default property's:
// the resident's favourite, the admin key of organisation 1, its visitor
// settings, building, contacts and tile grant, and the audit.
func TestUpgradeFromReleaseBeforeProperties(t *testing.T) {
	rs := redistest.Start(t)
	key := restoreFixture(t, rs.Client(), "testdata/upgrade-af2ad95.json")
	d := newDemoStack(t, rs.URL(), "", 3*time.Second)

	r, err := d.client.ListEntries(d.as(t, "alice@example.com"), &pb.ListEntriesRequest{})
	if err != nil || len(r.Entries) != 3 || r.Entries[0].Id != "102" || !r.Entries[0].Favorite {
		t.Errorf("alice's entries after the upgrade: %v, %v; want Garage 102 first, her favourite", r, err)
	}
	admin := func(path string) (int, string) { return adminAs(t, d, key, path) }
	for _, tc := range []struct{ path, want string }{
		{"/v1/admin/audit", `"entryId":"105"`},
		{"/v1/admin/locations/152347/visitor-settings", `"timeZone":"Europe/Paris"`},
		{"/v1/admin/buildings", `"buildingId":"hq"`},
		{"/v1/admin/contacts", `"buildingIds":["hq"]`},
	} {
		if code, body := admin(tc.path); code != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s with the old admin key: %d %s; want %q", tc.path, code, body, tc.want)
		}
	}
	if code, body := admin("/v1/admin/audit"); strings.Count(body, `"user":"alice@example.com"`) != 2 {
		t.Errorf("the old audit: %d %s; want alice's two attempts", code, body)
	}
	// None of it is the second property's.
	foundry, _, err := adminkey.NewStore(rs.Client(), cache.DefaultPrefix).CreateScoped(context.Background(), adminkey.Scope{Property: "foundry-lofts"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		code int
		not  string
	}{
		{"/v1/admin/audit", 200, `"entryId":"105"`},
		{"/v1/admin/locations/152347/visitor-settings", 403, "Paris"},
		{"/v1/admin/buildings", 200, `"buildingId":"hq"`},
		{"/v1/admin/contacts", 200, `"buildingIds":["hq"]`},
	} {
		if code, body := adminAs(t, d, foundry, tc.path); code != tc.code || strings.Contains(body, tc.not) {
			t.Errorf("GET %s with foundry-lofts's key: %d %s; want %d without %s", tc.path, code, body, tc.code, tc.not)
		}
	}
}

// adminAs GETs path with admin key key.
func adminAs(t *testing.T, d *demoStack, key, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+d.app.Server.HTTPAddr()+path, nil)
	req.Header.Set("x-auth-scheme", "api-token")
	req.Header.Set("x-auth-apikey", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
