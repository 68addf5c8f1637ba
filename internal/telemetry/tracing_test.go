package telemetry

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cloudkey/cloudkey/internal/redact"
)

func TestTracingOffByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := NewTracing(context.Background(), TracingConfig{})
	if err != nil || tr != nil {
		t.Fatalf("NewTracing without an endpoint = %v, %v; want nil (off)", tr, err)
	}
	next := http.DefaultTransport
	if tr.RoundTripper("openpath", next) != next || tr.GRPCStatsHandler() != nil || tr.Shutdown(context.Background()) != nil {
		t.Error("tracing off still instruments")
	}
}

func TestTracingConfiguredEndpoint(t *testing.T) {
	// The exporter connects lazily: an endpoint nobody listens on is fine.
	tr, err := NewTracing(context.Background(), TracingConfig{Endpoint: "http://127.0.0.1:1"})
	if err != nil || !tr.Enabled() {
		t.Fatalf("NewTracing = %v, %v", tr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil { // nothing queued: nothing to send
		t.Errorf("Shutdown: %v", err)
	}
}

func TestTracingRejectsBadEndpoint(t *testing.T) {
	for _, ep := range []string{"localhost:4317", "grpc://collector:4317", "http://", "%zz"} {
		if tr, err := NewTracing(context.Background(), TracingConfig{Endpoint: ep}); err == nil {
			tr.Shutdown(context.Background())
			t.Errorf("endpoint %q accepted", ep)
		}
	}
}

// An upstream call is a client span named by operation (no token), in
// the caller's trace, whose context reaches the access system.
func TestUpstreamSpans(t *testing.T) {
	var gotParent string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotParent = r.Header.Get("Traceparent")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer upstream.Close()
	exp := tracetest.NewInMemoryExporter()
	tr, err := NewTracing(context.Background(), TracingConfig{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	client := &http.Client{Transport: WrapTransport(NewMetrics(), tr, "openpath")(upstream.Client().Transport)}
	ctx, parent := tr.TracerProvider().Tracer("test").Start(context.Background(), "unlock")
	const token = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUV"
	req, _ := http.NewRequestWithContext(ctx, "POST", upstream.URL+"/tokens/cloudKeyUnlockTokens/"+token+"/use", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	parent.End()
	if req.Header.Get("Traceparent") != "" {
		t.Error("the caller's request was modified")
	}
	var span *tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			span = &s
		}
	}
	if span == nil || span.Name != "POST /tokens/cloudKeyUnlockTokens/:id/use" || span.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("client span %+v", span)
	}
	if !strings.Contains(gotParent, span.SpanContext.SpanID().String()) {
		t.Errorf("upstream got traceparent %q, want the client span %s", gotParent, span.SpanContext.SpanID())
	}
	if span.Status.Code.String() != "Error" {
		t.Errorf("429 span status %v, want Error", span.Status)
	}
	for _, a := range span.Attributes {
		if strings.Contains(a.Value.Emit(), token) {
			t.Errorf("attribute %s holds the token", a.Key)
		}
	}
}

func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewTextHandler(&buf, nil))).With("user", "carol@example.com")
	r := newRequest("req-7")
	ctx := context.WithValue(context.Background(), requestKey{}, r)
	exp := tracetest.NewInMemoryExporter()
	tr, _ := NewTracing(context.Background(), TracingConfig{Exporter: exp})
	ctx, span := tr.TracerProvider().Tracer("test").Start(ctx, "x")
	defer span.End()
	log.InfoContext(ctx, "sent to dave@example.com",
		"err", errors.New("cache: read erin@example.com: timeout"),
		"link", redact.Revealed("http://h/g/Qx7pV2sQmB0c9k3hYtR4uW8eZ1aL5nJ6oP2iU7yT3rE"),
		slog.Group("g", "to", "frank@example.com"),
		"list", []string{"gina@example.com"})
	out := buf.String()
	for _, want := range []string{"request_id=req-7", "trace_id=" + span.SpanContext().TraceID().String(),
		"c***@example.com", "d***@example.com", "e***@example.com", "f***@example.com", "g***@example.com",
		"http://h/g/Qx7pV2sQmB0c9k3hYtR4uW8eZ1aL5nJ6oP2iU7yT3rE"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
	for _, full := range []string{"carol@", "dave@", "erin@", "frank@", "gina@"} {
		if strings.Contains(out, full) {
			t.Errorf("log shows %s...: %s", full, out)
		}
	}
	if _, nested := LogHandler(LogHandler(slog.NewTextHandler(&buf, nil))).(*logHandler).h.(*logHandler); nested {
		t.Error("wrapping twice nests handlers")
	}
}
