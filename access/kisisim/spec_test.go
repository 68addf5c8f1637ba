package kisisim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access/kisisim/kisispec"
)

// TestSpecCatches shows the validator is not a rubber stamp: it rejects
// answers and requests that break Kisi's spec.
func TestSpecCatches(t *testing.T) {
	spec := kisispec.Load(t)
	req := func(method, path, auth, body string) *http.Request {
		r := httptest.NewRequest(method, "http://127.0.0.1:1"+path, strings.NewReader(body))
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		return r
	}
	json := http.Header{"Content-Type": {"application/json"}}
	rangeHeader := func(v string) http.Header {
		return http.Header{"Content-Type": {"application/json"}, "X-Collection-Range": {v}}
	}
	answers := []struct {
		name   string
		r      *http.Request
		status int
		header http.Header
		body   string
		ok     bool
	}{
		{"unlocked", req("POST", "/locks/1/unlock", "KISI-LOGIN x", ""), 200, json, `{"message":"Unlocked!"}`, true},
		{"not unlocked", req("POST", "/locks/1/unlock", "KISI-LOGIN x", ""), 200, json, `{"message":"Nope"}`, false},
		{"error without code", req("POST", "/locks/1/unlock", "KISI-LOGIN x", ""), 403, json, `{"error":"Access denied."}`, false},
		{"empty page range", req("GET", "/users", "KISI-LOGIN x", ""), 200, rangeHeader("0-49/0"), `[]`, true},
		{"star range", req("GET", "/users", "KISI-LOGIN x", ""), 200, rangeHeader("*/0"), `[]`, false},
		{"unlisted status", req("GET", "/users", "KISI-LOGIN x", ""), 429, json, `{"error":"slow down","code":"000429"}`, true},
		{"user updated", req("PATCH", "/users/7", "KISI-LOGIN x", `{"user":{"access_enabled":true}}`), 204, http.Header{}, "", true},
	}
	for _, tt := range answers {
		t.Run(tt.name, func(t *testing.T) {
			in, err := spec.CheckRequest(tt.r)
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			err = spec.CheckResponse(in, tt.status, tt.header, []byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("CheckResponse = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	requests := []struct {
		name string
		r    *http.Request
		ok   bool
	}{
		{"no Authorization", req("GET", "/locks", "", ""), false},
		{"other scheme", req("GET", "/locks/1", "KISI-GROUP-LINK x", ""), false},
		{"non-integer id", req("POST", "/locks/x/unlock", "KISI-LOGIN x", ""), false},
		{"login without user", req("POST", "/logins", "KISI-LOGIN x", `{"login":{"type":"device","email":"a@b.example"}}`), false},
		{"on-behalf login", req("POST", "/logins", "KISI-LOGIN x", loginBody("a@b.example")), true},
		{"unknown path", req("GET", "/nope", "KISI-LOGIN x", ""), false},
		{"suspend", req("PATCH", "/users/7", "KISI-LOGIN x", `{"user":{"access_enabled":false}}`), true},
		{"suspend without the user wrapper", req("PATCH", "/users/7", "KISI-LOGIN x", `{"access_enabled":false}`), false},
		{"access_enabled not a boolean", req("PATCH", "/users/7", "KISI-LOGIN x", `{"user":{"access_enabled":"no"}}`), false},
	}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := spec.CheckRequest(tt.r); (err == nil) != tt.ok {
				t.Fatalf("CheckRequest = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestSpecHandler runs the simulator behind kisispec's handler middleware.
func TestSpecHandler(t *testing.T) {
	s, err := New(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(kisispec.Load(t).Handler(t, s.Handler()))
	defer srv.Close()
	r, _ := http.NewRequest("GET", srv.URL+"/locks?limit=1", nil)
	r.Header.Set("Authorization", "KISI-LOGIN "+DemoHarborAPIKey)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Collection-Range") != "0-0/2" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("X-Collection-Range"))
	}
}
