package buildiumspec

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestSpecCatches shows the validator is not a rubber stamp: it rejects
// requests and answers that break Buildium's spec (PMS_APIS.md §6).
func TestSpecCatches(t *testing.T) {
	spec := Load(t)
	req := func(target string, auth bool) *http.Request {
		r := httptest.NewRequest("GET", "http://127.0.0.1:1"+target, nil)
		if auth {
			r.Header.Set("x-buildium-client-id", "id")
			r.Header.Set("x-buildium-client-secret", "secret")
		}
		return r
	}
	requests := []struct {
		name   string
		target string
		auth   bool
		ok     bool
	}{
		{"leases", "/v1/leases?leasestatuses=Active&leasestatuses=Future&limit=50&lastupdatedfrom=2026-12-01T10:00:00Z", true, true},
		{"tenants, not a lease id", "/v1/leases/tenants?propertyids=5001", true, true},
		{"no credentials", "/v1/leases", false, false},
		{"Current is not a lease status", "/v1/leases?leasestatuses=Current", true, false},
		{"comma list", "/v1/leases?leasestatuses=Active,Future", true, false},
		{"limit not a number", "/v1/leases?limit=fifty", true, false},
		{"space in date-time", "/v1/leases?lastupdatedfrom=2025-05-20%2009:30:00", true, false},
		{"unknown path", "/v1/owners", true, false},
	}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := spec.CheckRequest(req(tt.target, tt.auth)); (err == nil) != tt.ok {
				t.Fatalf("CheckRequest = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	json := func(total string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}}
		if total != "" {
			h.Set("X-Total-Count", total)
		}
		return h
	}
	answers := []struct {
		name   string
		status int
		header http.Header
		body   string
		ok     bool
	}{
		{"a lease", 200, json("1"), `[{"Id":1,"LeaseStatus":"Active","LeaseFromDate":"2025-06-01","Tenants":[{"Id":2,"Status":"Current","MoveInDate":"2025-06-01"}],"MoveOutData":[{"TenantId":2,"MoveOutDate":"2026-11-30"}]}]`, true},
		{"Notice is not a lease status", 200, json("1"), `[{"Id":1,"LeaseStatus":"Notice"}]`, false},
		{"Past is not a tenant status", 200, json("1"), `[{"Id":1,"Tenants":[{"Id":2,"Status":"Past"}]}]`, false},
		{"US date", 200, json("1"), `[{"Id":1,"LeaseFromDate":"06/30/2025"}]`, false},
		{"null field", 200, json("1"), `[{"Id":1,"RenewalOfferStatus":null}]`, false},
		{"total not a number", 200, json("many"), `[]`, false},
		{"error", 401, json(""), `{"UserMessage":"bad credentials","ErrorCode":"Unauthorized"}`, true},
		{"429 is not listed", 429, json(""), `{"UserMessage":"slow down"}`, true},
	}
	for _, tt := range answers {
		t.Run(tt.name, func(t *testing.T) {
			in, err := spec.CheckRequest(req("/v1/leases", true))
			if err != nil {
				t.Fatal(err)
			}
			if err := spec.CheckResponse(in, tt.status, tt.header, []byte(tt.body)); (err == nil) != tt.ok {
				t.Fatalf("CheckResponse = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
