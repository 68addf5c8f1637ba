package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"
)

// TracingConfig selects where spans go.
type TracingConfig struct {
	// Endpoint is an OTLP/gRPC collector URL (CLOUDKEY_OTLP_ENDPOINT):
	// http://host:4317 for plaintext, https://host:4317 for TLS. Empty
	// means the standard OTEL_EXPORTER_OTLP_ENDPOINT (or
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) when set; the exporter reads the
	// other OTEL_EXPORTER_OTLP_* variables (headers, timeout) itself.
	// Neither set: tracing is off.
	Endpoint string
	// Exporter, when set, receives the spans instead, synchronously
	// (tests use tracetest.InMemoryExporter).
	Exporter sdktrace.SpanExporter
	// ServiceName is the service.name resource attribute; default
	// "cloudkey" (OTEL_SERVICE_NAME overrides it).
	ServiceName string
}

// Tracing makes OpenTelemetry spans for gRPC and HTTP calls served, and
// for Redis and access-system calls made. Off (nil, or no endpoint), it
// installs nothing at all, so the hot path pays nothing. Sampling follows
// OTEL_TRACES_SAMPLER (default: parent-based, always on).
type Tracing struct {
	tp   *sdktrace.TracerProvider
	prop propagation.TextMapPropagator
}

// Propagator is how trace context crosses processes: W3C traceparent and
// baggage headers.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// NewTracing starts tracing as cfg says; it returns nil (tracing off, and
// every method a no-op) when no exporter is configured. Shutdown flushes.
func NewTracing(ctx context.Context, cfg TracingConfig) (*Tracing, error) {
	exp := cfg.Exporter
	var opts []sdktrace.TracerProviderOption
	if exp != nil {
		opts = append(opts, sdktrace.WithSyncer(exp))
	} else {
		var eopts []otlptracegrpc.Option
		switch {
		case cfg.Endpoint != "":
			// The exporter silently ignores a URL it cannot use.
			if u, err := url.Parse(cfg.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return nil, fmt.Errorf("telemetry: OTLP endpoint %q: want http://host:port or https://host:port", cfg.Endpoint)
			}
			eopts = append(eopts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		case os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "":
		default:
			return nil, nil
		}
		e, err := otlptracegrpc.New(ctx, eopts...)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(e))
	}
	name := cfg.ServiceName
	if name == "" {
		name = "cloudkey"
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(name)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: trace resource: %w", err)
	}
	opts = append(opts, sdktrace.WithResource(res))
	return &Tracing{tp: sdktrace.NewTracerProvider(opts...), prop: Propagator}, nil
}

// Enabled reports whether spans are recorded.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// TracerProvider is the provider spans are made with; a no-op one when
// tracing is off.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if !t.Enabled() {
		return noopTracerProvider
	}
	return t.tp
}

// Shutdown flushes queued spans and stops the exporter, until ctx ends.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// GRPCStatsHandler makes a server span per RPC, continuing the caller's
// trace (traceparent metadata); nil when tracing is off, so that no
// stats handler runs at all.
func (t *Tracing) GRPCStatsHandler() stats.Handler {
	if !t.Enabled() {
		return nil
	}
	return otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.tp),
		otelgrpc.WithPropagators(t.prop),
		otelgrpc.WithMeterProvider(noopmetric.NewMeterProvider()), // metrics are Prometheus's
	)
}

// InstrumentRedis adds a span per Redis command or pipeline to rdb.
// Commands' arguments are not recorded: keys hold emails.
func (t *Tracing) InstrumentRedis(rdb redis.UniversalClient) error {
	if !t.Enabled() {
		return nil
	}
	if err := redisotel.InstrumentTracing(rdb, redisotel.WithTracerProvider(t.tp), redisotel.WithDBStatement(false)); err != nil {
		return fmt.Errorf("telemetry: trace Redis: %w", err)
	}
	return nil
}

// RoundTripper makes a client span per request to an access system,
// named by its operation (see Operation: no ids or tokens, which the
// URLs of unlock tokens carry), and sends the trace context along. next
// is returned as is when tracing is off.
func (t *Tracing) RoundTripper(system string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	if !t.Enabled() {
		return next
	}
	return &tracingTransport{tracer: t.tp.Tracer(instrumentation), system: system, prop: t.prop, next: next}
}

const instrumentation = "github.com/cloudkey/cloudkey/internal/telemetry"

type tracingTransport struct {
	tracer trace.Tracer
	system string
	prop   propagation.TextMapPropagator
	next   http.RoundTripper
}

func (t *tracingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := string(Operation(nil, req.Method, req.URL.Path))
	ctx, span := t.tracer.Start(req.Context(), op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("access.system", t.system),
			semconv.HTTPRequestMethodKey.String(req.Method),
			attribute.String("url.template", op[len(req.Method)+1:]),
			semconv.ServerAddress(req.URL.Hostname()),
		))
	defer span.End()
	// RoundTrippers must not modify the request: send a copy with the
	// trace headers.
	req = req.Clone(ctx)
	t.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		span.SetStatus(otelcodes.Error, "transport error")
		span.SetAttributes(attribute.String("error.type", errorType(err)))
		return resp, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		span.SetStatus(otelcodes.Error, strconv.Itoa(resp.StatusCode))
	}
	return resp, err
}

func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "transport"
}

// WrapTransport returns the access client's transport wrapper for system:
// spans (when t is on) around metrics (when m is set) around rt.
func WrapTransport(m *Metrics, t *Tracing, system string) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		if m != nil {
			rt = m.RoundTripper(system, rt)
		}
		return t.RoundTripper(system, rt)
	}
}
