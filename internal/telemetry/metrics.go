// Package telemetry is what cloudkey shows an operator about itself:
// Prometheus metrics (Metrics), OpenTelemetry traces (Tracing), and
// structured logs with request ids and redaction (LogHandler). The
// per-request parts are built for the hot path: label children are
// resolved once per method, route or operation and then read from
// immutable maps, so a call costs a map lookup, two clock reads and a few
// atomic adds, and allocates nothing.
//
// It must not import server, cache, visitor, tenant or the access-system
// adapters (it reads unlock's result types only); server and the wiring
// install it.
package telemetry

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"

	"github.com/cloudkey/cloudkey/unlock"
)

// Metrics holds cloudkey's Prometheus metrics on a registry of its own
// (not the global default), so a process, or a test, can run several
// servers. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	grpcHandled   *prometheus.CounterVec
	grpcSeconds   *prometheus.HistogramVec
	httpRequests  *prometheus.CounterVec
	httpSeconds   *prometheus.HistogramVec
	accessSeconds *prometheus.HistogramVec
	breaker       *prometheus.GaugeVec
	cacheRequests *prometheus.CounterVec
	unlockResults *prometheus.CounterVec
	connsDropped  *prometheus.CounterVec

	rpcs   cowMap[rpcKey, *rpcSeries]
	routes cowMap[routeKey, *routeSeries]

	cache     [2][3]prometheus.Counter                // [layer][result]
	unlocks   [unlock.Error + 1][2]prometheus.Counter // [status][kind]
	breakerMu sync.Mutex
	breakers  map[string]string // connection → "system\x00state", for the counts
}

// Buckets in seconds: in-process calls take well under a millisecond,
// upstream calls tens of milliseconds, and an unlock is capped at a few
// seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers cloudkey's metrics, and the Go runtime and process
// collectors, on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.grpcHandled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cloudkey_grpc_server_handled_total",
		Help: "RPCs completed, by method, status code and transport (grpc, or rest through the gateway).",
	}, []string{"method", "code", "transport"})
	m.grpcSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cloudkey_grpc_server_handling_seconds",
		Help:    "Time to handle an RPC, from the interceptor chain's start to its answer.",
		Buckets: latencyBuckets,
	}, []string{"method", "transport"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cloudkey_http_requests_total",
		Help: "HTTP requests completed, by method, route pattern (never the raw path) and status code.",
	}, []string{"method", "route", "code"})
	m.httpSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cloudkey_http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by method and route pattern.",
		Buckets: latencyBuckets,
	}, []string{"method", "route"})
	m.accessSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cloudkey_access_request_duration_seconds",
		Help:    "Time an access system took to answer, until its response headers, by system, operation (method and path with ids replaced) and outcome (2xx, 3xx, 4xx, 429, 5xx, timeout, error).",
		Buckets: latencyBuckets,
	}, []string{"system", "operation", "outcome"})
	m.breaker = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cloudkey_access_breaker_state",
		Help: "Access-system connections whose circuit breaker is in each state, by system (openpath, kisi): with one connection, 1 for its current state and 0 for the others. Per-connection states are not labels (a portfolio has thousands).",
	}, []string{"system", "state"})
	m.cacheRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cloudkey_cache_requests_total",
		Help: "Cache lookups by layer (local: process memory, redis) and result (hit, miss, error).",
	}, []string{"layer", "result"})
	m.unlockResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cloudkey_unlock_results_total",
		Help: "Unlock attempts per entry, by result and kind (resident, guest).",
	}, []string{"result", "kind"})
	m.connsDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cloudkey_connections_dropped_total",
		Help: "Connections closed by a limit, by listener (grpc, http) and reason: max and per_addr (refused over a connection cap), resets (a client resetting streams faster than any real one).",
	}, []string{"listener", "reason"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grpcHandled, m.grpcSeconds, m.httpRequests, m.httpSeconds,
		m.accessSeconds, m.breaker, m.cacheRequests, m.unlockResults, m.connsDropped,
	)
	for l, layer := range cacheLayers {
		for r, result := range cacheResults {
			m.cache[l][r] = m.cacheRequests.WithLabelValues(layer, result)
		}
	}
	for st := unlock.OK; st <= unlock.Error; st++ {
		m.unlocks[st][0] = m.unlockResults.WithLabelValues(st.String(), "resident")
		m.unlocks[st][1] = m.unlockResults.WithLabelValues(st.String(), "guest")
	}
	return m
}

// Registry is where the metrics are registered; add more collectors here.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// gRPC.

type rpcKey struct{ method, transport string }

type rpcSeries struct {
	seconds prometheus.Observer
	// handled is filled per code on first use: creating all seventeen
	// codes for every method would export hundreds of empty series.
	handled [maxCode + 1]atomic.Pointer[counter]
	vec     *prometheus.CounterVec
	method  string
	trans   string
}

type counter struct{ prometheus.Counter }

const maxCode = codes.Unauthenticated // the highest code grpc-go defines

func (s *rpcSeries) inc(c codes.Code) {
	if c > maxCode {
		c = codes.Unknown
	}
	p := s.handled[c].Load()
	if p == nil {
		p = &counter{s.vec.WithLabelValues(s.method, c.String(), s.trans)}
		s.handled[c].Store(p) // a racing store holds the same child
	}
	p.Inc()
}

func (m *Metrics) rpc(fullMethod, transport string) *rpcSeries {
	k := rpcKey{fullMethod, transport}
	if s, ok := m.rpcs.load(k); ok {
		return s
	}
	// grpc-go calls interceptors only for registered methods (and the
	// in-process connection likewise), so the set of keys is bounded.
	method := strings.TrimPrefix(fullMethod, "/")
	return m.rpcs.store(k, &rpcSeries{
		seconds: m.grpcSeconds.WithLabelValues(method, transport),
		vec:     m.grpcHandled, method: method, trans: transport,
	})
}

// HTTP.

type routeKey struct {
	method, route string
	code          int
}

type routeSeries struct {
	requests prometheus.Counter
	seconds  prometheus.Observer
}

// ObserveHTTP records one served HTTP request. route must be a pattern
// (ServeMux's or the gateway's), never a raw path: guest tokens live in
// paths.
func (m *Metrics) ObserveHTTP(method, route string, code int, d time.Duration) {
	k := routeKey{method, route, code}
	s, ok := m.routes.load(k)
	if !ok {
		s = m.routes.store(k, &routeSeries{
			requests: m.httpRequests.WithLabelValues(method, route, httpCode(code)),
			seconds:  m.httpSeconds.WithLabelValues(method, route),
		})
	}
	s.requests.Inc()
	s.seconds.Observe(d.Seconds())
}

func httpCode(c int) string {
	if c < 100 || c > 999 {
		return "other"
	}
	return string([]byte{byte('0' + c/100), byte('0' + c/10%10), byte('0' + c%10)})
}

// Breaker.

// BreakerStates are the states a breaker reports (sony/gobreaker's names).
var BreakerStates = []string{"closed", "half-open", "open"}

// SetBreakerState records that the circuit breaker of connection (an
// access-system connection of system) is now in state, one of
// BreakerStates: the gauge counts the connections of each system in each
// state, so its labels stay bounded however many connections there are.
func (m *Metrics) SetBreakerState(system, connection, state string) {
	m.breakerMu.Lock()
	defer m.breakerMu.Unlock()
	if m.breakers == nil {
		m.breakers = map[string]string{}
	}
	if prev, ok := m.breakers[connection]; ok {
		sys, st, _ := strings.Cut(prev, "\x00")
		m.breaker.WithLabelValues(sys, st).Dec()
	} else {
		for _, st := range BreakerStates { // every state shows, 0 when none
			m.breaker.WithLabelValues(system, st).Add(0)
		}
	}
	m.breakers[connection] = system + "\x00" + state
	m.breaker.WithLabelValues(system, state).Inc()
}

// Connections.

// DropConn counts a connection closed by a limit (see
// cloudkey_connections_dropped_total). Not on the hot path: it runs once
// per refused connection.
func (m *Metrics) DropConn(listener, reason string) {
	m.connsDropped.WithLabelValues(listener, reason).Inc()
}

// ObserveOpenConns exports open() as cloudkey_connections_open of
// listener, read at each scrape. A listener observed twice keeps its
// first function.
func (m *Metrics) ObserveOpenConns(listener string, open func() int) {
	m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "cloudkey_connections_open",
		Help:        "Connections open on a listener (grpc, http), under its connection caps.",
		ConstLabels: prometheus.Labels{"listener": listener},
	}, func() float64 { return float64(open()) }))
}

// Cache.

var (
	cacheLayers  = [2]string{"local", "redis"}
	cacheResults = [3]string{"hit", "miss", "error"}
)

// ObserveCache counts one cache lookup: layer "local" or "redis", result
// "hit", "miss" or "error" (cache.Config.Observe). Other values are
// ignored, so a typo cannot mint series.
func (m *Metrics) ObserveCache(layer, result string) {
	l, r := -1, -1
	for i, v := range cacheLayers {
		if v == layer {
			l = i
		}
	}
	for i, v := range cacheResults {
		if v == result {
			r = i
		}
	}
	if l >= 0 && r >= 0 {
		m.cache[l][r].Inc()
	}
}

// Unlock results.

// Auditor returns an unlock.Auditor that counts every attempt by result
// and kind (guests are audited as "guest:<pass>") and passes it to next.
func (m *Metrics) Auditor(next unlock.Auditor) unlock.Auditor {
	if next == nil {
		next = unlock.Discard{}
	}
	return countingAuditor{m: m, next: next}
}

type countingAuditor struct {
	m    *Metrics
	next unlock.Auditor
}

func (a countingAuditor) Record(at unlock.Attempt) {
	if at.Kind != "" {
		a.next.Record(at) // not an unlock: nothing to count
		return
	}
	kind := 0
	if strings.HasPrefix(at.Email, "guest:") {
		kind = 1
	}
	st := at.Status
	if st < unlock.OK || st > unlock.Error {
		st = unlock.Error
	}
	a.m.unlocks[st][kind].Inc()
	a.next.Record(at)
}

// cowMap is a copy-on-write map for label children: reads are a plain
// map lookup on an immutable map (no lock shared by all requests, no
// allocation); the rare store copies the map.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	p  atomic.Pointer[map[K]V]
}

func (c *cowMap[K, V]) load(k K) (V, bool) {
	if m := c.p.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// store adds v under k unless k is there already, and returns the value
// kept.
func (c *cowMap[K, V]) store(k K, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.p.Load()
	if old != nil {
		if have, ok := (*old)[k]; ok {
			return have
		}
	}
	n := make(map[K]V, 1+lenOf(old))
	if old != nil {
		for k2, v2 := range *old {
			n[k2] = v2
		}
	}
	n[k] = v
	c.p.Store(&n)
	return v
}

func lenOf[K comparable, V any](m *map[K]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
