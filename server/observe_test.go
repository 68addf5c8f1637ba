package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// syncBuffer is a log sink written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// get sends a GET with headers and returns the response, body read.
func (s *stack) get(t *testing.T, path string, headers ...string) (*http.Response, string) {
	t.Helper()
	resp, b := s.send(t, "GET", path, nil, headers...)
	return resp, string(b)
}

// Calls that log (a webhook that sends a guest link, failing upstream
// calls over gRPC and REST) leave lines that carry the request id and
// never a full email, the guest token or the bearer token.
func TestLogsCarryRequestIDsNotSecrets(t *testing.T) {
	var logs syncBuffer
	mem := &notify.Memory{}
	st := newStack(t, stackOpts{notifier: mem, logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	key := st.adminKey(t, "1")
	if code, body := st.do(t, "PUT", "/v1/admin/locations/"+location+"/visitor-settings", []byte(goodSettings),
		"x-auth-scheme", "api-token", "x-auth-apikey", key); code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}

	invite := fixture(t, "invite_created.json", time.Now())
	resp, _ := st.send(t, "POST", "/webhooks/envoy", invite,
		envoy.SignatureHeader, envoy.Sign(invite, []byte(testEnvoySecret)), "X-Request-Id", "webhook-req-1")
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "webhook-req-1" {
		t.Fatalf("webhook: %d, x-request-id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	msgs := mem.Messages() // by email and by SMS: the visitor has both
	if len(msgs) != 2 || msgs[0].Link != msgs[1].Link {
		t.Fatalf("links sent: %+v", msgs)
	}
	guestToken := msgs[0].Link[strings.LastIndexByte(msgs[0].Link, '/')+1:]

	// The access system fails: the resolution of a new user logs.
	if err := st.sim.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	bearer := st.token(t, "alice@example.com")
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+bearer, "x-request-id", "grpc-req-1")
	var header metadata.MD
	_, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}, grpc.Header(&header))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("ListEntries with the access system failing: %v", err)
	}
	if got := header.Get("x-request-id"); len(got) != 1 || got[0] != "grpc-req-1" {
		t.Errorf("gRPC x-request-id header = %q", got)
	}
	// A caller's unsafe id is replaced by a fresh one, which is returned.
	ctx = metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+bearer, "x-request-id", "not a safe id: spaces & symbols")
	header = nil
	st.client.ListEntries(ctx, &pb.ListEntriesRequest{}, grpc.Header(&header))
	if got := header.Get("x-request-id"); len(got) != 1 || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got[0]) {
		t.Errorf("x-request-id for an unsafe one = %q, want a new id", got)
	}
	// A caller that sent none learns the id of a failed call from its trailer.
	var trailer metadata.MD
	header = nil
	st.client.ListEntries(st.as(t, "alice@example.com"), &pb.ListEntriesRequest{}, grpc.Header(&header), grpc.Trailer(&trailer))
	if got := trailer.Get("x-request-id"); len(got) != 1 || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(got[0]) || len(header.Get("x-request-id")) != 0 {
		t.Errorf("failed call without an id: trailer x-request-id %q, header %q; want a new id in the trailer only", got, header.Get("x-request-id"))
	}
	r, _ := st.get(t, "/v1/me/entries", "Authorization", "Bearer "+bearer)
	restID := r.Header.Get("X-Request-Id")
	if r.StatusCode != 503 || restID == "" {
		t.Fatalf("REST with the access system failing: %d, x-request-id %q", r.StatusCode, restID)
	}

	out := logs.String()
	for _, want := range []string{`"request_id":"webhook-req-1"`, `"request_id":"grpc-req-1"`, `"request_id":"` + restID + `"`, "a***@example.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	for name, secret := range map[string]string{
		"visitor email": "ada.lovelace@example.com", "resident email": "alice@example.com",
		"guest token": guestToken, "bearer token": bearer, "admin key": key,
	} {
		if strings.Contains(out, secret) {
			t.Errorf("logs show the %s %q:\n%s", name, secret, out)
		}
	}
}

// metricValue reads one sample of the text exposition; labels as
// client_golang prints them (sorted by name).
func metricValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Errorf("no sample %s", series)
	return 0
}

func TestMetricsEndpoint(t *testing.T) {
	st := newStack(t, stackOpts{notifier: &notify.Memory{}})
	ctx := st.as(t, "erin@example.com")
	for range 2 {
		if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101", "105"}}); err != nil || len(r.Results) != 2 {
		t.Fatal(r, err)
	}
	if _, err := st.client.ListEntries(st.as(t, "nobody@example.com"), &pb.ListEntriesRequest{}); status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	if r, _ := st.get(t, "/v1/me/entries", "Authorization", "Bearer "+st.token(t, "erin@example.com")); r.StatusCode != 200 {
		t.Fatal(r.Status)
	}
	const guestToken = "AAAAsecretGuestTokenThatMustNotBeALabel0123"
	st.get(t, "/g/"+guestToken)
	st.get(t, "/no/such/page")

	r, body := st.get(t, "/metrics")
	if r.StatusCode != 200 {
		t.Fatalf("/metrics: %s", r.Status)
	}
	for _, tt := range []struct {
		series string
		want   float64
	}{
		{`cloudkey_grpc_server_handled_total{code="OK",method="cloudkey.v1.ResidentService/ListEntries",transport="grpc"}`, 2},
		{`cloudkey_grpc_server_handled_total{code="NotFound",method="cloudkey.v1.ResidentService/ListEntries",transport="grpc"}`, 1},
		{`cloudkey_grpc_server_handled_total{code="OK",method="cloudkey.v1.ResidentService/ListEntries",transport="rest"}`, 1},
		{`cloudkey_grpc_server_handling_seconds_count{method="cloudkey.v1.ResidentService/Unlock",transport="grpc"}`, 1},
		{`cloudkey_http_requests_total{code="200",method="GET",route="/v1/me/entries"}`, 1},
		{`cloudkey_http_requests_total{code="200",method="GET",route="/g/{token}"}`, 1},
		{`cloudkey_http_requests_total{code="404",method="GET",route="unmatched"}`, 1},
		{`cloudkey_http_request_duration_seconds_count{method="GET",route="/v1/me/entries"}`, 1},
		{`cloudkey_unlock_results_total{kind="resident",result="OK"}`, 1},
		{`cloudkey_unlock_results_total{kind="resident",result="DENIED"}`, 1},
		{`cloudkey_unlock_results_total{kind="guest",result="OK"}`, 0},
		{`cloudkey_access_breaker_state{state="closed",system="openpath"}`, 1},
		{`cloudkey_access_breaker_state{state="open",system="openpath"}`, 0},
		{`cloudkey_access_request_duration_seconds_count{operation="POST /orgs/:id/users/:id/credentials/:id/cloudKeyEntryUnlock",outcome="2xx",system="openpath"}`, 1},
		// Counted per system, not per connection: the demo's two Kisi
		// connections (harbor-view and foundry-lofts).
		{`cloudkey_access_breaker_state{state="closed",system="kisi"}`, 2},
		// The demo property has two connections, and a read asks the
		// cache for the user's view in each. erin's first call misses
		// both layers in both and loads; her second reads Redis and keeps
		// the snapshots in memory, for the unlock (of Openpath doors only:
		// the Openpath view alone) and the REST call. nobody@ misses both
		// layers in both connections.
		{`cloudkey_cache_requests_total{layer="local",result="miss"}`, 6},
		{`cloudkey_cache_requests_total{layer="redis",result="miss"}`, 4},
		{`cloudkey_cache_requests_total{layer="redis",result="hit"}`, 2},
		{`cloudkey_cache_requests_total{layer="local",result="hit"}`, 3},
	} {
		if got := metricValue(t, body, tt.series); got != tt.want {
			t.Errorf("%s = %v, want %v", tt.series, got, tt.want)
		}
	}
	for _, want := range []string{"go_goroutines", "process_cpu_seconds_total", "# TYPE cloudkey_cache_requests_total counter"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, leak := range []string{guestToken, "erin@example.com", "/no/such/page"} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics shows %q", leak)
		}
	}
}

// A gRPC call and an HTTP request continue the caller's trace; the
// server spans are named by method and route (never the raw path), and
// no span attribute holds an email or a token.
func TestTraces(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	st := newStack(t, stackOpts{notifier: &notify.Memory{}, tracing: telemetry.TracingConfig{Exporter: exp}})
	const (
		grpcTrace, grpcParent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
		httpTrace, httpParent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		guestToken            = "AAAAsecretGuestTokenThatMustNotBeInSpans0123"
	)
	bearer := st.token(t, "erin@example.com")
	ctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+bearer,
		"traceparent", "00-"+grpcTrace+"-"+grpcParent+"-01")
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.get(t, "/v1/me/entries", "Authorization", "Bearer "+bearer, "traceparent", "00-"+httpTrace+"-"+httpParent+"-01"); r.StatusCode != 200 {
		t.Fatal(r.Status)
	}
	st.get(t, "/g/"+guestToken)

	find := func(name string) tracetest.SpanStub {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second) // the server ends its span after answering
		for {
			for _, s := range exp.GetSpans() {
				if s.Name == name {
					return s
				}
			}
			if time.Now().After(deadline) {
				var names []string
				for _, s := range exp.GetSpans() {
					names = append(names, s.Name)
				}
				t.Fatalf("no span %q; spans: %q", name, names)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, tt := range []struct {
		name, trace, parent string
	}{
		{"cloudkey.v1.ResidentService/ListEntries", grpcTrace, grpcParent},
		{"GET /v1/me/entries", httpTrace, httpParent},
	} {
		s := find(tt.name)
		if s.SpanKind != trace.SpanKindServer || s.SpanContext.TraceID().String() != tt.trace ||
			s.Parent.SpanID().String() != tt.parent || !s.Parent.IsRemote() {
			t.Errorf("span %q: kind %v, trace %s, parent %s (remote %v); want server span in trace %s under %s",
				tt.name, s.SpanKind, s.SpanContext.TraceID(), s.Parent.SpanID(), s.Parent.IsRemote(), tt.trace, tt.parent)
		}
	}
	find("GET /g/{token}")
	// The first ListEntries missed the cache: Redis spans in its trace.
	redisSpans := 0
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID().String() == grpcTrace && s.SpanKind == trace.SpanKindClient {
			redisSpans++
		}
	}
	if redisSpans == 0 {
		t.Error("no Redis client span in the gRPC call's trace")
	}
	for _, s := range exp.GetSpans() {
		for _, a := range s.Attributes {
			if v := a.Value.Emit(); strings.Contains(v, guestToken) || strings.Contains(v, "erin@example.com") || strings.Contains(v, bearer) {
				t.Errorf("span %q attribute %s = %q", s.Name, a.Key, v)
			}
		}
	}
}

// An access-system outage fails every cold request the same way: the log
// gets a burst of "rpc failed" lines and then about one a second with a
// count of those held back, while the metrics count every failure.
func TestOutageLogsAreThrottled(t *testing.T) {
	var logs syncBuffer
	st := newStack(t, stackOpts{logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err := st.sim.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	const calls = 60
	erin := st.as(t, "erin@example.com") // never cached: every call fails upstream
	for range calls {
		if _, err := st.client.ListEntries(erin, &pb.ListEntriesRequest{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("ListEntries in an outage: %v, want UNAVAILABLE", err)
		}
	}
	lines := strings.Count(logs.String(), `"msg":"rpc failed"`)
	if lines == 0 || lines >= calls/2 {
		t.Errorf("%d \"rpc failed\" lines for %d failed calls, want a throttled few:\n%s", lines, calls, logs.String())
	}
	_, body := st.get(t, "/metrics")
	if got := metricValue(t, body, `cloudkey_grpc_server_handled_total{code="Unavailable",method="cloudkey.v1.ResidentService/ListEntries",transport="grpc"}`); got != calls {
		t.Errorf("metrics counted %v failures, want %d", got, calls)
	}
}
