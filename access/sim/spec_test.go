package sim

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestSpecTour sends one well-formed request per operation through the
// spec-checking server, so that every answer shape is validated against
// the published Openpath spec (the other tests do too, along the way).
func TestSpecTour(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	tour := []struct {
		method, path, body string
		want               int
	}{
		{"GET", orgPath + "/users?filter=identity.email%3A%28alice%40example.com%29&limit=1000", "", 200},
		{"GET", orgPath + "/users?limit=2&offset=1", "", 200},
		{"PUT", orgPath + "/users/202/status", `{"status":"S"}`, 204},
		{"GET", orgPath + "/credentialTypes?limit=1000", "", 200},
		{"GET", orgPath + "/users/201/credentials?limit=1000", "", 200},
		{"POST", orgPath + "/users/201/credentials", `{"credentialTypeId":7,"cloudKey":{"name":"cloudkey"}}`, 201},
		{"POST", orgPath + "/users/201/credentials", `{"credentialTypeId":1,"mobile":{"name":"phone"}}`, 201},
		{"GET", orgPath + "/users/201/entries", "", 200},
		{"GET", orgPath + "/entries?limit=1000&offset=0", "", 200},
		{"POST", unlockPath(DemoErinID, DemoErinCloudKeyID), `{"entryId":101,"description":null}`, 204},
		{"POST", "/auth/accessTokens/refresh", "", 201},
	}
	for _, step := range tour {
		status, body := call(t, step.method, f.checked+step.path, token, step.body)
		if status != step.want {
			t.Errorf("%s %s: %d, want %d: %s", step.method, step.path, status, step.want, body)
		}
	}
}

// TestSpecDisagreements pins down where the simulator, following Openpath's
// observed behaviour, departs from the letter of the published spec.
func TestSpecDisagreements(t *testing.T) {
	s, err := New(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	strict := openpathSpec(t).Strict()

	// 1. Every timestamp is typed format "date" but is a date-time.
	body := `{"email":"bot@cloudkey.local","password":"demo-password"}`
	req := httptest.NewRequest("POST", "/auth/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	in, err := strict.CheckRequest(req)
	if err != nil {
		t.Fatalf("login request: %v", err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptestRequest("POST", "/auth/login", body))
	err = strict.CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes())
	if err == nil || !strings.Contains(err.Error(), `format "date"`) {
		t.Errorf("strict check of the login answer: %v; want a date-format mismatch", err)
	}
	if err := openpathSpec(t).CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		t.Errorf("lenient check of the login answer: %v", err)
	}

	// 2. The spec lists no error responses, so any error body passes and
	// none is checked.
	req = httptest.NewRequest("GET", "/orgs/1/entries", nil)
	req.Header.Set("Authorization", "x")
	in, err = strict.CheckRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := strict.CheckResponse(in, http.StatusUnauthorized, http.Header{"Content-Type": {"application/json"}}, []byte(`{"anything":1}`)); err != nil {
		t.Errorf("an undocumented 401 was checked: %v", err)
	}
}

func httptestRequest(method, path, body string) *http.Request {
	r := httptest.NewRequest(method, path, io.NopCloser(bytes.NewReader([]byte(body))))
	r.Header.Set("Content-Type", "application/json")
	return r
}
