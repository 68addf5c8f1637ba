package telemetry

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
	"unsafe"

	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var noopTracerProvider trace.TracerProvider = tracenoop.NewTracerProvider()

// RequestIDHeader carries a request's id, in and out, in HTTP headers and
// gRPC metadata.
const RequestIDHeader = "x-request-id"

// request is what telemetry keeps about one request in its context.
type request struct {
	id string
	// route is the gateway's path pattern ("/v1/me/entries"), set by
	// SetRoute during an HTTP request the gateway served.
	route string
	hdr   [1]string // backs the response header value, saving an allocation
	idBuf [16]byte  // backs a new id
	// echoed: the id went back in the gRPC response header.
	echoed bool
	// start is when the request reached cloudkey (Elapsed).
	start time.Time
}

type requestKey struct{}

func fromContext(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

// Elapsed is how long ago ctx's request reached cloudkey: the gRPC call,
// or the HTTP request a gateway call serves; 0 outside a request. It
// saves the inner layers a clock read of their own.
func Elapsed(ctx context.Context) time.Duration {
	if r := fromContext(ctx); r != nil && !r.start.IsZero() {
		return time.Since(r.start)
	}
	return 0
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if r := fromContext(ctx); r != nil {
		return r.id
	}
	return ""
}

// SetRoute names the route of the HTTP request ctx belongs to, when the
// outer mux only knows a prefix (the REST gateway under /v1/): pattern is
// the gateway's path pattern, never the raw path.
func SetRoute(ctx context.Context, pattern string) {
	if r := fromContext(ctx); r != nil && pattern != "" {
		r.route = pattern
	}
}

// validID accepts a caller's request id: 1 to 64 characters of
// [A-Za-z0-9._-], enough for UUIDs and the usual proxies' ids, and safe
// to put in a log line or a header.
func validID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// setNewID gives r a new id: 16 hex digits from the runtime's per-thread
// random source (unique enough to find a request's lines, not a secret),
// kept in r itself so that making it costs no allocation of its own.
func (r *request) setNewID() {
	const hexdigits = "0123456789abcdef"
	v := rand.Uint64()
	for i := range r.idBuf {
		r.idBuf[i] = hexdigits[v>>(60-4*i)&0xf]
	}
	r.id = unsafe.String(&r.idBuf[0], len(r.idBuf)) // idBuf is never written again
}

// init sets r's id to incoming when valid, else to a new one.
func (r *request) init(incoming string) {
	r.id = incoming
	if !validID(incoming) {
		r.setNewID()
	}
	r.hdr[0] = r.id
}

func newRequest(incoming string) *request {
	r := &request{}
	r.init(incoming)
	return r
}

// UnaryInterceptor gives every gRPC call a request id and, when m is
// set, records its RED metrics (see Metrics). The id is the caller's
// x-request-id when it is valid, else a new one; it is put in the context
// (RequestID, and every log line through LogHandler) and sent back in the
// x-request-id response header. A call the REST gateway makes in process
// keeps the HTTP request's id. transport labels where calls come from:
// "grpc" for the gRPC server, "rest" for the gateway's connection. Put it
// first in the chain, so it sees the status the caller gets. It is one
// interceptor, not two, because each link of grpc-go's chain costs an
// allocation per call.
func UnaryInterceptor(m *Metrics, transport string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		var r *request
		if fromContext(ctx) == nil {
			ctx, r = withRequestID(ctx)
			r.start = start
		}
		resp, err := handler(ctx, req)
		if r != nil && err != nil && !r.echoed {
			// A failed call tells its id, so the caller can quote it.
			_ = grpc.SetTrailer(ctx, metadata.MD{RequestIDHeader: r.hdr[:]})
		}
		if m != nil {
			s := m.rpc(info.FullMethod, transport)
			s.seconds.Observe(time.Since(start).Seconds())
			s.inc(status.Code(err))
		}
		return resp, err
	}
}

// withRequestID gives a gRPC call its request id. A caller that sent an
// x-request-id gets it back in the response header; for the others the id
// goes out only in the trailer of a failed call (UnaryInterceptor):
// sending a header on every successful call costs the hot path about nine
// allocations, for an id nobody asked for.
func withRequestID(ctx context.Context) (context.Context, *request) {
	var incoming string
	if v := metadata.ValueFromIncomingContext(ctx, RequestIDHeader); len(v) > 0 {
		incoming = v[0]
	}
	r := newRequest(incoming)
	if incoming != "" && grpc.ServerTransportStreamFromContext(ctx) != nil { // else there is no header to send
		_ = grpc.SetHeader(ctx, metadata.MD{RequestIDHeader: r.hdr[:]})
		r.echoed = true
	}
	return context.WithValue(ctx, requestKey{}, r), r
}

// HTTPHandler wraps the HTTP mux: a request id per request (the caller's
// X-Request-Id when valid, else new; echoed in the response), a server
// span when tracing is on, and RED metrics by route pattern when m is
// set. Routes come from ServeMux's r.Pattern (and SetRoute for the
// gateway), never from the raw path, which holds guest tokens.
func HTTPHandler(next http.Handler, m *Metrics, t *Tracing) http.Handler {
	h := &httpHandler{next: next, m: m}
	if t.Enabled() {
		h.tracer, h.prop = t.tp.Tracer(instrumentation), t.prop
	}
	return h
}

type httpHandler struct {
	next   http.Handler
	m      *Metrics
	tracer trace.Tracer // nil: tracing off
	prop   propagation.TextMapPropagator
}

// httpRequest is one allocation for everything a request needs here.
type httpRequest struct {
	request
	rec statusRecorder
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	hr := &httpRequest{rec: statusRecorder{ResponseWriter: w}}
	var incoming string
	if v := r.Header["X-Request-Id"]; len(v) > 0 {
		incoming = v[0]
	}
	hr.init(incoming)
	hr.start = start
	w.Header()["X-Request-Id"] = hr.hdr[:] // canonical key: Set would allocate
	ctx := context.WithValue(r.Context(), requestKey{}, &hr.request)
	var span trace.Span
	if h.tracer != nil {
		ctx = h.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		ctx, span = h.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method)))
	}
	r = r.WithContext(ctx)
	h.next.ServeHTTP(&hr.rec, r)

	code := hr.rec.code
	if code == 0 {
		code = http.StatusOK
	}
	method, route := httpMethod(r.Method), httpRoute(r.Pattern, hr.route)
	if h.m != nil {
		h.m.ObserveHTTP(method, route, code, time.Since(start))
	}
	if span != nil {
		span.SetName(method + " " + route)
		span.SetAttributes(semconv.HTTPRoute(route), semconv.HTTPResponseStatusCode(code))
		if code >= 500 {
			span.SetStatus(otelcodes.Error, http.StatusText(code))
		}
		span.End()
	}
}

// httpRoute is the route label: the gateway's pattern under its prefix,
// else ServeMux's pattern without its method ("GET /g/{token}" →
// "/g/{token}"), or "unmatched".
func httpRoute(muxPattern, gateway string) string {
	if gateway != "" {
		return gateway
	}
	if muxPattern == "" {
		return "unmatched"
	}
	if i := strings.IndexByte(muxPattern, ' '); i >= 0 {
		return muxPattern[i+1:]
	}
	return muxPattern
}

// httpMethod bounds the method label: anything unusual is "OTHER".
func httpMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// statusRecorder remembers the status code written.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush passes flushes on (the gateway flushes streamed answers).
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
