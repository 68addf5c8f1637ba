package server_test

import (
	"strings"
	"testing"
)

func TestAdminContacts(t *testing.T) {
	st := newStack(t, stackOpts{})
	key, other := st.adminKey(t, "1"), st.adminKey(t, "2")
	auth := func(k string) []string {
		return []string{"x-auth-scheme", "api-token", "x-auth-apikey", k, "Content-Type", "text/csv"}
	}
	bad := "\ufeffFull Name,Email,Phone\r\nPat Tenant,pat@acme.example,+14155550123\r\nBad Row,not-an-email,\r\nDup,pat@acme.example,\r\n"
	good := "Full Name,Email,Phone\nPat Tenant,pat@acme.example,+1 415 555 0123\n\"Lee, Other\",lee@acme.example,\n"
	tests := []struct {
		name, method, path, body, key string
		wantCode                      int
		wantIn                        string
	}{
		{"bad rows: nothing imported", "POST", "/v1/admin/contacts:import", bad, key, 400, `"line":3`},
		{"bad rows name their lines", "POST", "/v1/admin/contacts:import", bad, key, 400, "csv.line[4]"},
		{"still empty", "GET", "/v1/admin/contacts", "", key, 200, `"total":0`},
		{"missing column", "POST", "/v1/admin/contacts:import", "Full Name,Email\nPat,pat@acme.example\n", key, 400, "hone"},
		{"empty file", "POST", "/v1/admin/contacts:import", "", key, 400, "csv"},
		{"good rows only", "POST", "/v1/admin/contacts:import?goodRowsOnly=true", bad, key, 200, `"created":1`},
		{"import", "POST", "/v1/admin/contacts:import", good, key, 200, `"created":1`},
		{"re-import is idempotent", "POST", "/v1/admin/contacts:import", good, key, 200, `"unchanged":2`},
		{"other organisation cannot import", "POST", "/v1/admin/contacts:import", good, other, 403, "organisation"},
		{"grant", "PUT", "/v1/admin/contacts/lee@acme.example/tiles/152347", "", key, 200, "{}"},
		{"grant unknown contact", "PUT", "/v1/admin/contacts/nobody@acme.example/tiles/152347", "", key, 404, "CONTACT_NOT_FOUND"},
		{"other organisation cannot grant", "PUT", "/v1/admin/contacts/lee@acme.example/tiles/152347", "", other, 403, "organisation"},
		{"list", "GET", "/v1/admin/contacts", "", key, 200, `"buildingIds":["152347"]`},
		{"other organisation cannot list", "GET", "/v1/admin/contacts", "", other, 403, "organisation"},
		{"revoke", "DELETE", "/v1/admin/contacts/lee@acme.example/tiles/152347", "", key, 200, "{}"},
		{"other organisation cannot revoke", "DELETE", "/v1/admin/contacts/lee@acme.example/tiles/152347", "", other, 403, "organisation"},
		{"revoked", "GET", "/v1/admin/contacts", "", key, 200, `"buildingIds":[]`},
		{"no key", "GET", "/v1/admin/contacts", "", "", 401, "x-auth-apikey"},
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
		})
	}
}

func TestAdminBuildingsAndTile(t *testing.T) {
	st, _ := visitorStack(t)
	grantPat(t, st)
	key, other := st.adminKey(t, "1"), st.adminKey(t, "2")
	auth := func(k string) []string { return []string{"x-auth-scheme", "api-token", "x-auth-apikey", k} }
	tests := []struct {
		name, method, path, body, key string
		wantCode                      int
		wantIn                        string
	}{
		{"set up", "PUT", "/v1/admin/buildings/hq", `{"name":"Harbor View","locationId":"` + location + `"}`, key, 200, `"org":"1"`},
		{"bad id", "PUT", "/v1/admin/buildings/a%20b", `{"name":"x"}`, key, 400, "building_id"},
		{"no name", "PUT", "/v1/admin/buildings/hq2", `{"name":""}`, key, 400, "name"},
		{"other organisation cannot set up", "PUT", "/v1/admin/buildings/hq", `{"name":"Mine"}`, other, 403, "organisation"},
		{"list", "GET", "/v1/admin/buildings", "", key, 200, `"buildingId":"hq"`},
		{"other organisation sees none of it", "GET", "/v1/admin/buildings", "", other, 403, "organisation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := st.do(t, tt.method, tt.path, []byte(tt.body), auth(tt.key)...)
			if code != tt.wantCode || !strings.Contains(body, tt.wantIn) {
				t.Fatalf("%s %s = %d %s; want %d containing %q", tt.method, tt.path, code, body, tt.wantCode, tt.wantIn)
			}
		})
	}
	// The tile of building hq uses its location's settings once Pat holds the grant for hq.
	bearer := []string{"Authorization", "Bearer " + st.token(t, "pat@acme.example")}
	if _, body := st.do(t, "GET", "/v1/buildings/hq/tile", nil, bearer...); !strings.Contains(body, `"enabled":false`) {
		t.Fatalf("tile of hq before its grant: %s", body)
	}
	if code, body := st.do(t, "PUT", "/v1/admin/contacts/pat@acme.example/tiles/hq", nil, auth(key)...); code != 200 {
		t.Fatalf("grant hq: %d %s", code, body)
	}
	if _, body := st.do(t, "GET", "/v1/buildings/hq/tile", nil, bearer...); !strings.Contains(body, `"visitorTypes":["Contractor","Visitor"]`) {
		t.Fatalf("tile of hq: %s", body)
	}
}
