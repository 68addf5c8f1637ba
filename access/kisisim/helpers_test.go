package kisisim

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access/kisisim/kisispec"
)

// fixture is a simulator on a loopback port and two clients: checked fails
// the test on any request or answer that breaks Kisi's spec, raw checks
// the answers only (for the malformed requests tests send on purpose).
type fixture struct {
	srv     *Server
	checked *http.Client
	raw     *http.Client
}

func newFixture(t testing.TB, seed Seed) *fixture {
	t.Helper()
	srv, err := Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	spec := kisispec.Load(t)
	return &fixture{
		srv:     srv,
		checked: &http.Client{Transport: spec.Transport(t, nil)},
		raw:     &http.Client{Transport: spec.ResponseTransport(t, nil)},
	}
}

// demo is a fixture on the demo seed with the rate limit off, so that tests
// other than the rate limit's may send as they like.
func demo(t testing.TB) *fixture {
	t.Helper()
	f := newFixture(t, DemoSeed())
	if err := f.srv.SetRateLimit(0, 0); err != nil {
		t.Fatal(err)
	}
	return f
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// apiErr decodes an Error body.
func (a answer) apiErr(t testing.TB) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %s: %v", a.body, err)
	}
	return e
}

func (a answer) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("body %s: %v", a.body, err)
	}
}

// send sends one request through client with an optional secret (sent as
// KISI-LOGIN) and JSON body.
func (f *fixture) send(t testing.TB, client *http.Client, method, path, secret, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set("Authorization", "KISI-LOGIN "+secret)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// do sends a well-formed request, validated against the spec.
func (f *fixture) do(t testing.TB, method, path, secret, body string) answer {
	t.Helper()
	return f.send(t, f.checked, method, path, secret, body)
}

// login logs in on behalf of email with the API key and returns the
// login's secret and id.
func (f *fixture) login(t testing.TB, apiKey, email string) (string, int) {
	t.Helper()
	a := f.do(t, "POST", "/logins", apiKey, loginBody(email))
	if a.status != http.StatusOK {
		t.Fatalf("login %s: %d %s", email, a.status, a.body)
	}
	var l createdLoginJSON
	a.decode(t, &l)
	if l.Secret == "" || !strings.EqualFold(l.User.Email, email) {
		t.Fatalf("login %s: %s", email, a.body)
	}
	return l.Secret, l.ID
}

func loginBody(email string) string {
	return `{"login":{"type":"device","email":"` + email + `","expire":false,"name":"cloudkey"},"user":{}}`
}

// lockIDs lists the ids GET /locks answers to secret.
func (f *fixture) lockIDs(t testing.TB, secret, query string) []int {
	t.Helper()
	a := f.do(t, "GET", "/locks"+query, secret, "")
	if a.status != http.StatusOK {
		t.Fatalf("GET /locks: %d %s", a.status, a.body)
	}
	var locks []lockJSON
	a.decode(t, &locks)
	ids := []int{}
	for _, l := range locks {
		ids = append(ids, l.ID)
	}
	return ids
}

func unlockPath(id int) string { return "/locks/" + strconv.Itoa(id) + "/unlock" }

// clientFor returns a spec-checking client, for tests that build their
// own server.
func (*fixture) clientFor(t testing.TB) *http.Client {
	return &http.Client{Transport: kisispec.Load(t).Transport(t, nil)}
}
