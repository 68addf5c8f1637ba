package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cloudkey/cloudkey/access/sim/spectest"
)

var (
	specOnce sync.Once
	spec     *spectest.Spec
	specErr  error
)

// openpathSpec is the published Openpath spec, loaded once.
func openpathSpec(t testing.TB) *spectest.Spec {
	t.Helper()
	specOnce.Do(func() { spec, specErr = spectest.Load("testdata/openpath-subset.swagger.json") })
	if specErr != nil {
		t.Fatal(specErr)
	}
	return spec
}

// fixture is a simulator served twice: checked validates every request and
// answer against the Openpath spec (for well-formed requests), raw does not
// (for the malformed ones the tests send on purpose).
type fixture struct {
	sim     *Sim
	checked string
	raw     string
}

func newFixture(t testing.TB, seed Seed) *fixture {
	t.Helper()
	s, err := New(seed)
	if err != nil {
		t.Fatal(err)
	}
	checked := httptest.NewServer(openpathSpec(t).Handler(t, s.Handler()))
	raw := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		checked.Close()
		raw.Close()
	})
	return &fixture{sim: s, checked: checked.URL, raw: raw.URL}
}

// call sends one request with an optional token and JSON body and returns
// the status and body.
func call(t testing.TB, method, url, token, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// login logs in as the demo service account and returns the token.
func login(t testing.TB, base string) string {
	t.Helper()
	status, body := call(t, "POST", base+"/auth/login", "",
		`{"email":"`+DemoServiceEmail+`","password":"`+DemoServicePassword+`"}`)
	if status != http.StatusCreated {
		t.Fatalf("login: %d %s", status, body)
	}
	return decode[struct {
		Data struct{ Token string }
	}](t, body).Data.Token
}

func decode[T any](t testing.TB, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// errorName returns the name of an Openpath error body.
func errorName(t testing.TB, body []byte) string {
	t.Helper()
	return decode[apiError](t, body).Name
}

// list is the decoded shape of a list answer.
type list[T any] struct {
	TotalCount    int
	FilteredCount int
	Cursors       *struct{ HasNextPage bool }
	Data          []T
}

type userItem struct {
	ID       int
	Status   string
	Identity struct {
		ID    int
		Email string
	}
}

type entryItem struct {
	ID   int
	Name string
	Zone struct {
		ID   int
		Name string
		Site struct {
			ID   int
			Name string
		}
	}
}

type credentialItem struct {
	ID             int
	CredentialType struct {
		ID        int
		Name      string
		ModelName string
	}
	CloudKey *struct {
		ID   int
		Name string
	}
}

func emailsOf(users []userItem) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Identity.Email
	}
	return out
}
