package telemetry

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RoundTripper measures every request to an access system: the time until
// its response headers, as cloudkey_access_request_duration_seconds with
// the system, an operation derived from the method and path with ids and
// tokens replaced ("POST /orgs/:id/users/:id/credentials/:id/cloudKeyEntryUnlock")
// and the outcome. Wire it as the access client's transport wrapper.
func (m *Metrics) RoundTripper(system string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &accessTransport{m: m, system: system, next: next}
}

type accessTransport struct {
	m      *Metrics
	system string
	next   http.RoundTripper
	ops    cowMap[string, *opSeries]
}

type opSeries struct {
	op       string
	outcomes [len(outcomes)]atomic.Pointer[observer]
}

type observer struct{ prometheus.Observer }

var outcomes = [...]string{"2xx", "3xx", "4xx", "429", "5xx", "timeout", "error"}

func (t *accessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	d := time.Since(start)
	t.series(req).observe(t, outcome(req.Context(), resp, err), d)
	return resp, err
}

func (t *accessTransport) series(req *http.Request) *opSeries {
	var buf [128]byte
	op := Operation(buf[:0], req.Method, req.URL.Path)
	if m := t.ops.p.Load(); m != nil {
		if s, ok := (*m)[string(op)]; ok { // string(op) in an index does not allocate
			return s
		}
	}
	name := string(op)
	return t.ops.store(name, &opSeries{op: name})
}

func (s *opSeries) observe(t *accessTransport, o int, d time.Duration) {
	p := s.outcomes[o].Load()
	if p == nil {
		p = &observer{t.m.accessSeconds.WithLabelValues(t.system, s.op, outcomes[o])}
		s.outcomes[o].Store(p)
	}
	p.Observe(d.Seconds())
}

func outcome(ctx context.Context, resp *http.Response, err error) int {
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)):
		return 5
	case err != nil || resp == nil:
		return 6
	case resp.StatusCode == http.StatusTooManyRequests:
		return 3
	case resp.StatusCode >= 500:
		return 4
	case resp.StatusCode >= 400:
		return 2
	case resp.StatusCode >= 300:
		return 1
	}
	return 0
}

// Operation appends to dst a low-cardinality name of a request: the
// method and the path, with every segment that is not a plain word (ids,
// tokens, emails) replaced by ":id", and no query. "GET" and
// "/orgs/7/users/42/entries" give "GET /orgs/:id/users/:id/entries".
func Operation(dst []byte, method, path string) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	if path == "" {
		return append(dst, '/')
	}
	for i := 0; i < len(path); {
		if path[i] == '/' {
			dst = append(dst, '/')
			i++
			continue
		}
		j := i
		for j < len(path) && path[j] != '/' {
			j++
		}
		if seg := path[i:j]; isWord(seg) {
			dst = append(dst, seg...)
		} else {
			dst = append(dst, ":id"...)
		}
		i = j
	}
	return dst
}

// isWord reports whether seg is an API word such as "users" or
// "cloudKeyEntryUnlock": letters only, and short. Tokens are longer or
// carry digits.
func isWord(seg string) bool {
	if len(seg) == 0 || len(seg) > 32 {
		return false
	}
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
