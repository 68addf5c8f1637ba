package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/unlock"
)

func TestUnaryInterceptor(t *testing.T) {
	m := NewMetrics()
	ic := UnaryInterceptor(m, "grpc")
	info := &grpc.UnaryServerInfo{FullMethod: "/cloudkey.v1.ResidentService/Unlock"}
	for _, err := range []error{nil, nil, status.Error(codes.NotFound, "x"), errors.New("not a status")} {
		ic(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, err })
	}
	for _, tt := range []struct {
		code string
		want float64
	}{{"OK", 2}, {"NotFound", 1}, {"Unknown", 1}, {"Internal", 0}} {
		if got := testutil.ToFloat64(m.grpcHandled.WithLabelValues("cloudkey.v1.ResidentService/Unlock", tt.code, "grpc")); got != tt.want {
			t.Errorf("handled{code=%s} = %v, want %v", tt.code, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.grpcSeconds); n != 1 {
		t.Errorf("%d histogram series, want 1", n)
	}
}

// Elapsed measures from the request's start, as the interceptor saw it,
// even without metrics; outside a request it is 0.
func TestElapsed(t *testing.T) {
	if d := Elapsed(context.Background()); d != 0 {
		t.Errorf("Elapsed outside a request = %v, want 0", d)
	}
	var inside time.Duration
	UnaryInterceptor(nil, "grpc")(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"},
		func(ctx context.Context, _ any) (any, error) {
			time.Sleep(5 * time.Millisecond)
			inside = Elapsed(ctx)
			return nil, nil
		})
	if inside < 5*time.Millisecond {
		t.Errorf("Elapsed after 5ms in the handler = %v", inside)
	}
}

// The hot path's budget: the metrics cost a warm call no allocation;
// the request id costs two (its record and the context holding it), and
// sending it back in a gRPC server's header a few more inside grpc-go.
func TestUnaryInterceptorAllocations(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/cloudkey.v1.ResidentService/ListEntries"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	withID := context.WithValue(context.Background(), requestKey{}, newRequest("")) // as under the gateway
	for _, tt := range []struct {
		name string
		m    *Metrics
		ctx  context.Context
		want float64
	}{
		{"metrics, request id given", NewMetrics(), withID, 0},
		{"metrics and a new request id", NewMetrics(), context.Background(), 2},
		{"request id only", nil, context.Background(), 2},
	} {
		ic := UnaryInterceptor(tt.m, "grpc")
		ic(tt.ctx, nil, info, h)
		if n := testing.AllocsPerRun(1000, func() { ic(tt.ctx, nil, info, h) }); n != tt.want {
			t.Errorf("%s: %v allocations per call, want %v", tt.name, n, tt.want)
		}
	}
}

func BenchmarkUnaryInterceptor(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/cloudkey.v1.ResidentService/ListEntries"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	withID := context.WithValue(context.Background(), requestKey{}, newRequest(""))
	for _, bb := range []struct {
		name string
		m    *Metrics
		ctx  context.Context
	}{
		{"metrics", NewMetrics(), withID},
		{"metrics+new-id", NewMetrics(), context.Background()},
		{"none", nil, withID},
	} {
		b.Run(bb.name, func(b *testing.B) {
			ic := UnaryInterceptor(bb.m, "grpc")
			b.ReportAllocs()
			for b.Loop() {
				ic(bb.ctx, nil, info, h)
			}
		})
	}
}

func TestHTTPHandler(t *testing.T) {
	m := NewMetrics()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /g/{token}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, RequestID(r.Context())) })
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r.Context(), "/v1/me/favorites/{entry_id}") // as the gateway does
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(HTTPHandler(mux, m, nil))
	defer srv.Close()
	const token = "Qx7pV2sQmB0c9k3hYtR4uW8eZ1aL5nJ6oP2iU7yT3rE"
	for _, tt := range []struct {
		method, path, id string
		wantCode         int
		wantID           string // "": a new one
	}{
		{"GET", "/g/" + token, "caller-id-1", 200, "caller-id-1"},
		{"GET", "/g/other" + token, "", 200, ""},
		{"PUT", "/v1/me/favorites/101", strings.Repeat("x", 65), 204, ""},
		{"BREW", "/nowhere", "", 404, ""},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
		if tt.id != "" {
			req.Header.Set("X-Request-Id", tt.id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := resp.Header.Get("X-Request-Id")
		if resp.StatusCode != tt.wantCode || (tt.wantID != "" && got != tt.wantID) || (tt.wantID == "" && (len(got) != 16 || got == tt.id)) {
			t.Errorf("%s %s: %d, x-request-id %q", tt.method, tt.path, resp.StatusCode, got)
		}
		if resp.StatusCode == 200 && string(body) != got {
			t.Errorf("%s: handler saw request id %q, response says %q", tt.path, body, got)
		}
	}
	for _, tt := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"GET", "/g/{token}", "200"}, 2},
		{[]string{"PUT", "/v1/me/favorites/{entry_id}", "204"}, 1},
		{[]string{"OTHER", "unmatched", "404"}, 1},
	} {
		if got := testutil.ToFloat64(m.httpRequests.WithLabelValues(tt.labels...)); got != tt.want {
			t.Errorf("requests%v = %v, want %v", tt.labels, got, tt.want)
		}
	}
	if n := testutil.CollectAndCount(m.httpRequests); n != 3 {
		t.Errorf("%d request series, want 3 (no raw path may mint one)", n)
	}
}

func TestOperation(t *testing.T) {
	for _, tt := range []struct{ method, path, want string }{
		{"GET", "/orgs/7/users/42/entries", "GET /orgs/:id/users/:id/entries"},
		{"POST", "/orgs/7/users/42/credentials/9/cloudKeyEntryUnlock", "POST /orgs/:id/users/:id/credentials/:id/cloudKeyEntryUnlock"},
		{"POST", "/tokens/cloudKeyUnlockTokens/ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKL/use", "POST /tokens/cloudKeyUnlockTokens/:id/use"},
		{"POST", "/tokens/cloudKeyUnlockTokens/abc123/use", "POST /tokens/cloudKeyUnlockTokens/:id/use"},
		{"GET", "/orgs/7/users/a@b.co", "GET /orgs/:id/users/:id"},
		{"POST", "/auth/login", "POST /auth/login"},
		{"GET", "", "GET /"},
	} {
		if got := string(Operation(nil, tt.method, tt.path)); got != tt.want {
			t.Errorf("Operation(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestRoundTripper(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/busy"):
			w.WriteHeader(http.StatusTooManyRequests)
		case strings.HasSuffix(r.URL.Path, "/broken"):
			w.WriteHeader(http.StatusInternalServerError)
		case strings.HasSuffix(r.URL.Path, "/slow"):
			<-r.Context().Done()
		}
	}))
	defer upstream.Close()
	m := NewMetrics()
	client := &http.Client{Transport: m.RoundTripper("openpath", upstream.Client().Transport)}
	send := func(path string, timeout time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", upstream.URL+path+"?filter=identity.email:(a@b.co)", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	send("/orgs/7/users/42/entries", 5*time.Second)
	send("/orgs/7/users/43/entries", 5*time.Second)
	send("/orgs/7/busy", 5*time.Second)
	send("/orgs/7/broken", 5*time.Second)
	send("/orgs/7/slow", 50*time.Millisecond)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	req, _ := http.NewRequest("GET", closed.URL+"/orgs/7", nil)
	if _, err := client.Do(req); err == nil {
		t.Fatal("a closed server answered")
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`cloudkey_access_request_duration_seconds_count{operation="GET /orgs/:id/users/:id/entries",outcome="2xx",system="openpath"} 2`,
		`cloudkey_access_request_duration_seconds_count{operation="GET /orgs/:id/busy",outcome="429",system="openpath"} 1`,
		`cloudkey_access_request_duration_seconds_count{operation="GET /orgs/:id/broken",outcome="5xx",system="openpath"} 1`,
		`cloudkey_access_request_duration_seconds_count{operation="GET /orgs/:id/slow",outcome="timeout",system="openpath"} 1`,
		`cloudkey_access_request_duration_seconds_count{operation="GET /orgs/:id",outcome="error",system="openpath"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "users/42") || strings.Contains(out, "a@b.co") {
		t.Errorf("an id or email became a label:\n%s", out)
	}
}

// The breaker gauge counts connections per system and state: with one
// connection it is 1 for its state and 0 for the others; two connections
// of one system add up; labels never name a connection.
func TestSetBreakerState(t *testing.T) {
	m := NewMetrics()
	check := func(step, system string, want map[string]float64) {
		t.Helper()
		for st, w := range want {
			if got := testutil.ToFloat64(m.breaker.WithLabelValues(system, st)); got != w {
				t.Errorf("%s: %s %s = %v, want %v", step, system, st, got, w)
			}
		}
	}
	m.SetBreakerState("openpath", "harbor-view.openpath", "closed")
	check("one closed", "openpath", map[string]float64{"closed": 1, "half-open": 0, "open": 0})
	m.SetBreakerState("openpath", "harbor-view.openpath", "open")
	check("it opens", "openpath", map[string]float64{"closed": 0, "half-open": 0, "open": 1})
	m.SetBreakerState("openpath", "harbor-view.openpath", "half-open")
	check("half-open", "openpath", map[string]float64{"closed": 0, "half-open": 1, "open": 0})
	m.SetBreakerState("kisi", "harbor-view.kisi", "closed")
	m.SetBreakerState("kisi", "foundry-lofts.kisi", "closed")
	m.SetBreakerState("kisi", "foundry-lofts.kisi", "open")
	check("two kisi connections", "kisi", map[string]float64{"closed": 1, "half-open": 0, "open": 1})
	if n := testutil.CollectAndCount(m.breaker); n != 6 {
		t.Errorf("%d breaker series, want 6 (2 systems x 3 states)", n)
	}
}

type recorder struct{ got []unlock.Attempt }

func (r *recorder) Record(a unlock.Attempt) { r.got = append(r.got, a) }

func TestAuditorCountsAndPassesOn(t *testing.T) {
	m := NewMetrics()
	next := &recorder{}
	a := m.Auditor(next)
	for _, at := range []unlock.Attempt{
		{Email: "erin@example.com", Status: unlock.OK},
		{Email: "erin@example.com", Status: unlock.Denied},
		{Email: "guest:p-1", Status: unlock.OK},
		{Email: "guest:p-1", Status: unlock.Timeout},
		{Email: "guest:p-1", Status: unlock.Timeout},
	} {
		a.Record(at)
	}
	if len(next.got) != 5 {
		t.Errorf("passed on %d attempts, want 5", len(next.got))
	}
	for _, tt := range []struct {
		result, kind string
		want         float64
	}{{"OK", "resident", 1}, {"DENIED", "resident", 1}, {"OK", "guest", 1}, {"TIMEOUT", "guest", 2}, {"ERROR", "resident", 0}} {
		if got := testutil.ToFloat64(m.unlockResults.WithLabelValues(tt.result, tt.kind)); got != tt.want {
			t.Errorf("unlock results{%s,%s} = %v, want %v", tt.result, tt.kind, got, tt.want)
		}
	}
}

func TestObserveCache(t *testing.T) {
	m := NewMetrics()
	m.ObserveCache("local", "hit")
	m.ObserveCache("local", "hit")
	m.ObserveCache("redis", "error")
	m.ObserveCache("disk", "hit") // unknown: ignored
	if got := testutil.ToFloat64(m.cacheRequests.WithLabelValues("local", "hit")); got != 2 {
		t.Errorf("local hit = %v", got)
	}
	if got := testutil.ToFloat64(m.cacheRequests.WithLabelValues("redis", "error")); got != 1 {
		t.Errorf("redis error = %v", got)
	}
	if n := testutil.CollectAndCount(m.cacheRequests); n != 6 {
		t.Errorf("%d cache series, want the 6 known ones", n)
	}
	if n := testing.AllocsPerRun(100, func() { m.ObserveCache("redis", "hit") }); n != 0 {
		t.Errorf("ObserveCache allocates %v", n)
	}
}
