package kisi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/kisisim/kisispec"
)

// memStore is an in-memory LoginStore that counts its writes.
type memStore struct {
	mu      sync.Mutex
	logins  map[int64]Login
	puts    int
	deletes int
}

func newMemStore() *memStore { return &memStore{logins: map[int64]Login{}} }

func (m *memStore) Get(_ context.Context, userID int64) (Login, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.logins[userID]
	return l, ok, nil
}

func (m *memStore) Put(_ context.Context, l Login) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logins[l.UserID] = l
	m.puts++
	return nil
}

func (m *memStore) Delete(_ context.Context, userID int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.logins, userID)
	m.deletes++
	return nil
}

func (m *memStore) List(context.Context) ([]Login, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Login
	for _, l := range m.logins {
		l.Secret = ""
		out = append(out, l)
	}
	return out, nil
}

// secrets is every secret the store holds.
func (m *memStore) secrets() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, l := range m.logins {
		out = append(out, l.Secret)
	}
	return out
}

func (m *memStore) counts() (puts, deletes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts, m.deletes
}

// sent is one request the client sent.
type sent struct {
	method, path, auth string
}

// env is a client talking over loopback to a Kisi simulator. Every
// request the client sends, and every answer, is validated against Kisi's
// spec (kisispec); every request is recorded.
type env struct {
	srv    *kisisim.Server
	client *Client
	store  *memStore
	logs   *bytes.Buffer
	apiKey string
	// intercept, when set, answers a request instead of the simulator
	// (a spec-valid answer the simulator cannot be made to give).
	intercept func(*http.Request) *http.Response

	mu   sync.Mutex
	reqs []sent
}

// recorder records each request and sends it on.
type recorder struct {
	e    *env
	base http.RoundTripper
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.e.mu.Lock()
	r.e.reqs = append(r.e.reqs, sent{req.Method, req.URL.Path, req.Header.Get("Authorization")})
	icpt := r.e.intercept
	r.e.mu.Unlock()
	if icpt != nil {
		if resp := icpt(req); resp != nil {
			return resp, nil
		}
	}
	return r.base.RoundTrip(req)
}

func (e *env) sent() []sent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]sent(nil), e.reqs...)
}

// quietSeed is the demo seed with the simulator's rate limit off, so that
// tests other than the rate limit's may send as they like.
func quietSeed() kisisim.Seed {
	s := kisisim.DemoSeed()
	s.RateLimit = &kisisim.RateLimit{}
	return s
}

// newEnv starts a simulator of seed and a client of the organisation
// apiKey; cfg's BaseURL, APIKey, Logins, HTTPClient and Logger are filled
// in.
func newEnv(t testing.TB, seed kisisim.Seed, apiKey string, cfg Config) *env {
	t.Helper()
	srv, err := kisisim.Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, store: newMemStore(), logs: &bytes.Buffer{}, apiKey: apiKey}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() {
		_ = srv.Close()
		tr.CloseIdleConnections()
	})
	cfg.BaseURL = srv.URL
	cfg.APIKey = apiKey
	if cfg.Logins == nil {
		cfg.Logins = e.store
	}
	cfg.HTTPClient = &http.Client{Transport: kisispec.Load(t).Transport(t, recorder{e, tr})}
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.client = c
	return e
}

// lockedWriter makes a buffer safe for concurrent logging.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// foundry is a client of Foundry Lofts on the quiet demo seed.
func foundry(t testing.TB) *env {
	t.Helper()
	return newEnv(t, quietSeed(), kisisim.DemoFoundryAPIKey, Config{})
}

func id(n int) string { return strconv.Itoa(n) }

// kisiUser is the access.User FindUserByEmail would return, as far as
// EnsureCloudKey reads it.
func kisiUser(userID int, email string) access.User {
	return access.User{ID: strconv.Itoa(userID), Email: email}
}

type testUser = access.User

func withID(u testUser, id string) testUser { u.ID = id; return u }

// ensure makes sure user has a login and returns its id.
func (e *env) ensure(t testing.TB, userID int, email string) string {
	t.Helper()
	cred, err := e.client.EnsureCloudKey(context.Background(), kisiUser(userID, email))
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// revoke deletes login loginID at Kisi with the organisation key, as an
// admin revoking it would, so that Kisi answers it 401 from then on.
func (e *env) revoke(t testing.TB, loginID string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, e.srv.URL+"/logins/"+loginID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "KISI-LOGIN "+e.apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke login %s: HTTP %d", loginID, resp.StatusCode)
	}
}

// jsonAnswer is a spec-valid Kisi answer made up by a test.
func jsonAnswer(req *http.Request, status int, body string, header http.Header) *http.Response {
	h := http.Header{"Content-Type": {"application/json"}}
	for k, v := range header {
		h[k] = v
	}
	return &http.Response{
		StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Request: req,
	}
}
