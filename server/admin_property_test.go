package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/server"
	"github.com/cloudkey/cloudkey/unlock/auditredis"
)

// propertyAdmin is the demo (harbor-view the default, foundry-lofts the
// second) with an admin key of each scope.
type propertyAdmin struct {
	d                                  *demoStack
	rs                                 *redistest.Server
	harbor, foundry, portfolio, legacy string
}

func newPropertyAdmin(t *testing.T) *propertyAdmin {
	t.Helper()
	rs := redistest.Start(t)
	d := newDemoStack(t, rs.URL(), "", 3*time.Second)
	keys := adminkey.NewStore(rs.Client(), cache.DefaultPrefix)
	mk := func(scope adminkey.Scope) string {
		plain, _, err := keys.CreateScoped(context.Background(), scope, "test")
		if err != nil {
			t.Fatal(err)
		}
		return plain
	}
	return &propertyAdmin{d: d, rs: rs,
		harbor: mk(adminkey.Scope{Property: "harbor-view"}), foundry: mk(adminkey.Scope{Property: "foundry-lofts"}),
		portfolio: mk(adminkey.Scope{Portfolio: true}), legacy: mk(adminkey.Scope{Org: d.app.Org})}
}

// do calls the REST gateway with an admin key.
func (a *propertyAdmin) do(t *testing.T, key, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+a.d.app.Server.HTTPAddr()+path, strings.NewReader(body))
	req.Header.Set("x-auth-scheme", "api-token")
	req.Header.Set("x-auth-apikey", key)
	if strings.HasSuffix(strings.SplitN(path, "?", 2)[0], ":import") {
		req.Header.Set("Content-Type", "text/csv")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// adminCall is one admin REST call and what its answer must (and must
// not) contain.
type adminCall struct {
	name, key, method, path, body string
	code                          int
	want, wantNot                 []string
}

func (a *propertyAdmin) run(t *testing.T, calls []adminCall) {
	t.Helper()
	for _, c := range calls {
		code, body := a.do(t, c.key, c.method, c.path, c.body)
		if code != c.code {
			t.Errorf("%s: %s %s = %d %s; want %d", c.name, c.method, c.path, code, body, c.code)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: answer lacks %s: %s", c.name, w, body)
			}
		}
		for _, w := range c.wantNot {
			if strings.Contains(body, w) {
				t.Errorf("%s: answer shows %s: %s", c.name, w, body)
			}
		}
	}
}

// Buildings and tenant contacts are a property's: the same building id
// at two properties is two buildings, a property key sees and changes
// only its own, a portfolio key names the property, and the tile finds
// a tenant's grant at the property of their token.
func TestPropertyBuildingsContactsAndTile(t *testing.T) {
	a := newPropertyAdmin(t)
	csv := "Full Name,Email,Phone\nHank Loft,hank@example.com,\n"
	a.run(t, []adminCall{
		{"foundry sets up hq", a.foundry, "PUT", "/v1/admin/buildings/hq", `{"name":"Foundry HQ"}`, 200,
			[]string{`"property":"foundry-lofts"`, `"org":""`}, nil},
		{"harbor sets up its own hq", a.harbor, "PUT", "/v1/admin/buildings/hq", `{"name":"Harbor HQ"}`, 200,
			[]string{`"property":"harbor-view"`, `"org":"` + a.d.app.Org + `"`}, nil},
		{"foundry lists its own", a.foundry, "GET", "/v1/admin/buildings", "", 200, []string{"Foundry HQ"}, []string{"Harbor HQ"}},
		{"harbor lists its own", a.harbor, "GET", "/v1/admin/buildings", "", 200, []string{"Harbor HQ"}, []string{"Foundry HQ"}},
		{"the legacy key is harbor's", a.legacy, "GET", "/v1/admin/buildings", "", 200, []string{"Harbor HQ"}, []string{"Foundry HQ"}},
		{"the portfolio names foundry", a.portfolio, "GET", "/v1/admin/buildings?property=foundry-lofts", "", 200, []string{"Foundry HQ"}, []string{"Harbor HQ"}},
		{"the portfolio's default is harbor", a.portfolio, "GET", "/v1/admin/buildings", "", 200, []string{"Harbor HQ"}, []string{"Foundry HQ"}},
		{"foundry cannot name harbor", a.foundry, "GET", "/v1/admin/buildings?property=harbor-view", "", 403, []string{"property"}, []string{"Harbor HQ"}},
		{"the portfolio naming no property served", a.portfolio, "GET", "/v1/admin/buildings?property=nowhere", "", 404, []string{"property"}, nil},

		{"foundry imports hank", a.foundry, "POST", "/v1/admin/contacts:import", csv, 200, []string{`"created":1`}, nil},
		{"harbor does not see hank", a.harbor, "GET", "/v1/admin/contacts", "", 200, []string{`"total":0`}, []string{"hank"}},
		{"foundry sees hank", a.foundry, "GET", "/v1/admin/contacts", "", 200, []string{"hank@example.com", `"total":1`}, nil},
		{"harbor cannot grant foundry's contact", a.harbor, "PUT", "/v1/admin/contacts/hank@example.com/tiles/hq", "", 404, []string{"CONTACT_NOT_FOUND"}, nil},
		{"foundry grants hank hq", a.foundry, "PUT", "/v1/admin/contacts/hank@example.com/tiles/hq", "", 200, nil, nil},
		{"the portfolio sees the grant at foundry", a.portfolio, "GET", "/v1/admin/contacts?property=foundry-lofts", "", 200, []string{`"buildingIds":["hq"]`}, nil},
		{"a property named in the body's stead", a.portfolio, "PUT", "/v1/admin/contacts/hank@example.com/tiles/annex?property=foundry-lofts", "", 200, nil, nil},
	})

	// The tile: hank's grant is at foundry-lofts, so a token for it (or
	// for both properties) has the tile; one for harbor-view has not.
	tile := func(props []string, query string) (int, string) {
		return a.d.rest(t, "GET", "/v1/buildings/hq/tile"+query, "", "hank@example.com", props...)
	}
	tests := []struct {
		name  string
		props []string
		query string
		code  int
		want  string
	}{
		{"foundry's token", []string{"foundry-lofts"}, "", 200, "not set up"},
		{"both properties' token", []string{"harbor-view", "foundry-lofts"}, "", 200, "not set up"},
		{"naming foundry", []string{"harbor-view", "foundry-lofts"}, "?property=foundry-lofts", 200, "not set up"},
		{"harbor's token", []string{"harbor-view"}, "", 200, server.MessageTileNotGranted},
		{"no claim: the default property", nil, "", 200, server.MessageTileNotGranted},
		{"naming a property outside the token", []string{"foundry-lofts"}, "?property=harbor-view", 403, "property"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := tile(tc.props, tc.query)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s; want %d with %q", code, body, tc.code, tc.want)
			}
		})
	}
}

// An Envoy location is one property's: the property that first saves
// its settings has it, another property's key can neither read nor
// change them, and a property without an Openpath connection cannot set
// guest passes up.
func TestPropertyVisitorSettings(t *testing.T) {
	a := newPropertyAdmin(t)
	const path = "/v1/admin/locations/L-prop/visitor-settings"
	a.run(t, []adminCall{
		{"foundry has no Openpath connection", a.foundry, "PUT", path, goodSettings, 400, []string{"Openpath connection"}, nil},
		{"nothing was saved", a.portfolio, "GET", path + "?property=foundry-lofts", "", 404, []string{"NO_SETTINGS"}, nil},
		{"harbor sets the location up", a.harbor, "PUT", path, goodSettings, 200, []string{`"entryId":"101"`}, nil},
		{"harbor reads it", a.harbor, "GET", path, "", 200, []string{`"timeZone":"Europe/Paris"`}, nil},
		{"the legacy key reads it", a.legacy, "GET", path, "", 200, []string{`"timeZone":"Europe/Paris"`}, nil},
		{"foundry cannot read harbor's location", a.foundry, "GET", path, "", 403, []string{"another property"}, []string{"harbor", "Paris"}},
		{"foundry cannot take it", a.foundry, "PUT", path, goodSettings, 403, []string{"another property"}, []string{"harbor"}},
		{"nor the portfolio for foundry", a.portfolio, "PUT", path + "?property=foundry-lofts", goodSettings, 403, []string{"another property"}, nil},
		{"a bad property names the field", a.portfolio, "GET", path + "?property=nowhere", "", 404, []string{"property"}, nil},
	})
}

// Each audit record carries its property, and a key lists only its
// property's; records written before properties are the default
// property's.
func TestPropertyAudit(t *testing.T) {
	a := newPropertyAdmin(t)
	front := "foundry-lofts.kisi." + itoa(kisisim.DemoFrontDoorID)
	if code, body := a.d.rest(t, "POST", "/v1/me/unlock", `{"entryIds":["`+front+`"]}`, "frank@example.com", "foundry-lofts"); code != 200 || !strings.Contains(body, `_OK"`) {
		t.Fatalf("foundry unlock: %d %s", code, body)
	}
	if code, body := a.d.rest(t, "POST", "/v1/me/unlock", `{"entryIds":["101"]}`, "frank@example.com"); code != 200 || !strings.Contains(body, `_OK"`) {
		t.Fatalf("harbor unlock: %d %s", code, body)
	}
	// A record as the release before properties wrote it: no property.
	err := a.rs.Client().XAdd(context.Background(), &redis.XAddArgs{Stream: auditredis.DefaultStream, Values: []any{
		"at", time.Now().UnixMilli(), "email", "erin@example.com",
		"entry", "legacy-104", "system", "openpath", "result", "OK", "message", "", "latency_us", 1}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	// The writer is asynchronous: wait until both unlocks are listed.
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, body := a.do(t, a.portfolio, "GET", "/v1/admin/audit?property=foundry-lofts", "")
		_, hv := a.do(t, a.harbor, "GET", "/v1/admin/audit", "")
		if strings.Contains(body, front) && strings.Contains(hv, `"entryId":"101"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records not listed: %s / %s", body, hv)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.run(t, []adminCall{
		{"foundry sees its own", a.foundry, "GET", "/v1/admin/audit", "", 200,
			[]string{front, `"property":"foundry-lofts"`}, []string{`"entryId":"101"`, "legacy-104", "harbor-view"}},
		{"harbor sees its own and the legacy record", a.harbor, "GET", "/v1/admin/audit", "", 200,
			[]string{`"entryId":"101"`, "legacy-104", `"property":"harbor-view"`}, []string{front, "foundry-lofts"}},
		{"filters still apply within a property", a.harbor, "GET", "/v1/admin/audit?user=erin@example.com", "", 200,
			[]string{"legacy-104"}, []string{`"entryId":"101"`}},
		{"foundry cannot list harbor's", a.foundry, "GET", "/v1/admin/audit?property=harbor-view", "", 403, []string{"property"}, []string{"101"}},
	})
}

// InvalidateCache drops an email's views (or every user's) only in the
// resolved property's connections.
func TestPropertyCacheInvalidation(t *testing.T) {
	a := newPropertyAdmin(t)
	if code, body := a.d.rest(t, "GET", "/v1/me/entries", "", "frank@example.com", "harbor-view", "foundry-lofts"); code != 200 {
		t.Fatalf("entries: %d %s", code, body)
	}
	rdb := a.rs.Client()
	keys := map[string]string{ // connection: its cache key of frank's entries
		"harbor-view (bare)": cache.DefaultPrefix + "ent:{frank@example.com}",
		"harbor-view.kisi":   cache.DefaultPrefix + "ent:{harbor-view.kisi|frank@example.com}",
		"foundry-lofts.kisi": cache.DefaultPrefix + "ent:{foundry-lofts.kisi|frank@example.com}",
	}
	cached := func() map[string]bool {
		out := map[string]bool{}
		for name, k := range keys {
			n, err := rdb.Exists(context.Background(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			out[name] = n == 1
		}
		return out
	}
	if c := cached(); !c["harbor-view (bare)"] || !c["harbor-view.kisi"] || !c["foundry-lofts.kisi"] {
		t.Fatalf("cached before: %v", c)
	}
	a.run(t, []adminCall{
		{"foundry drops frank", a.foundry, "POST", "/v1/admin/cache:invalidate", `{"email":"frank@example.com"}`, 200, []string{`"invalidated":"1"`}, nil},
	})
	if c := cached(); !c["harbor-view (bare)"] || !c["harbor-view.kisi"] || c["foundry-lofts.kisi"] {
		t.Fatalf("after foundry's invalidation: %v; want only foundry's dropped", c)
	}
	if code, _ := a.d.rest(t, "GET", "/v1/me/entries", "", "frank@example.com", "foundry-lofts"); code != 200 {
		t.Fatal("entries again")
	}
	a.run(t, []adminCall{
		{"the portfolio drops frank at harbor", a.portfolio, "POST", "/v1/admin/cache:invalidate", `{"email":"frank@example.com","property":"harbor-view"}`, 200, nil, nil},
		{"foundry cannot drop at harbor", a.foundry, "POST", "/v1/admin/cache:invalidate", `{"email":"frank@example.com","property":"harbor-view"}`, 403, []string{"property"}, nil},
		{"a property not served", a.portfolio, "POST", "/v1/admin/cache:invalidate", `{"all":true,"property":"nowhere"}`, 404, []string{"property"}, nil},
	})
	if c := cached(); c["harbor-view (bare)"] || c["harbor-view.kisi"] || !c["foundry-lofts.kisi"] {
		t.Fatalf("after harbor's invalidation: %v; want only harbor's dropped", c)
	}
	a.run(t, []adminCall{
		{"foundry drops all of its own", a.foundry, "POST", "/v1/admin/cache:invalidate", `{"all":true}`, 200, nil, nil},
	})
	if c := cached(); c["foundry-lofts.kisi"] {
		t.Fatalf("after foundry's all: %v", c)
	}
}
