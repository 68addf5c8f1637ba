// Package simfault makes an access-system simulator slow or failing on
// demand (access/sim: Openpath, access/kisisim: Kisi): the Faults a test
// or `cloudkey sim` sets, and the Injector that applies them to each
// request before the simulator handles it.
//
// It imports the standard library only.
package simfault

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Op is a simulator's operation type.
type Op interface {
	comparable
	// Known reports whether the operation exists.
	Known() bool
}

// Faults make a simulator behave like a slow or failing access system.
// The zero value injects nothing. Faults apply to every operation except
// the simulator's login operations, unless IncludeLogin is set: a test
// usually wants a login first and the failure on the call it exercises.
//
// Faults are applied in this order, before authentication: delay
// (Latency + OpLatency[op] + a uniform random part of Jitter), then Hang,
// then ErrorRate, then RateLimitRate. Delays and hangs end early when the
// client gives up (the request's context is done) or the simulator is
// closed.
type Faults[O Op] struct {
	// Latency is added to every request.
	Latency time.Duration `json:"latency,omitempty"`
	// Jitter adds a uniformly random extra delay in [0, Jitter).
	Jitter time.Duration `json:"jitter,omitempty"`
	// OpLatency adds a delay to one operation only.
	OpLatency map[O]time.Duration `json:"opLatency,omitempty"`
	// ErrorRate is the fraction (0..1) of requests answered ErrorStatus.
	ErrorRate float64 `json:"errorRate,omitempty"`
	// ErrorStatus is the status ErrorRate answers with: 500, 502, 503 or
	// 504; 0 means 503.
	ErrorStatus int `json:"errorStatus,omitempty"`
	// RateLimitRate is the fraction (0..1) of the requests ErrorRate spared
	// that are answered 429 Too Many Requests, as the system's rate limiter
	// does.
	RateLimitRate float64 `json:"rateLimitRate,omitempty"`
	// RetryAfter is sent as the Retry-After header of 429 answers (and of
	// ErrorRate's 503s), in whole seconds rounded up; 0 sends none.
	RetryAfter time.Duration `json:"retryAfter,omitempty"`
	// MaxFaults, when positive, stops ErrorRate and RateLimitRate after
	// that many answers since SetFaults, so a test can fail exactly the
	// first n requests and see what follows.
	MaxFaults int `json:"maxFaults,omitempty"`
	// Hang makes requests block until the client gives up or the simulator
	// is closed; they then get no answer (or 503 on close).
	Hang bool `json:"hang,omitempty"`
	// IncludeLogin applies the faults to the login operations too.
	IncludeLogin bool `json:"includeLogin,omitempty"`
}

// Validate reports a negative duration or count, a rate outside 0..1, an
// unknown operation or an error status that is not a 5xx a server or
// gateway sends.
func (f Faults[O]) Validate() error {
	if f.Latency < 0 || f.Jitter < 0 || f.RetryAfter < 0 {
		return errors.New("fault latency, jitter and retry-after must not be negative")
	}
	for op, d := range f.OpLatency {
		if d < 0 || !op.Known() {
			return errors.New("per-operation latency needs a known operation and a non-negative duration")
		}
	}
	if !(f.ErrorRate >= 0 && f.ErrorRate <= 1) {
		return errors.New("fault error rate must be between 0 and 1")
	}
	if !(f.RateLimitRate >= 0 && f.RateLimitRate <= 1) {
		return errors.New("fault rate-limit rate must be between 0 and 1")
	}
	switch f.ErrorStatus {
	case 0, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		return errors.New("fault error status must be 500, 502, 503 or 504")
	}
	if f.MaxFaults < 0 {
		return errors.New("fault maxFaults must not be negative")
	}
	return nil
}

// Answers is how a simulator words an injected failure.
type Answers struct {
	// Write writes an error answer in the system's error shape.
	Write func(w http.ResponseWriter, status int, code, message string)
	// Codes are the error codes (or names) of the injected 5xx answers
	// and of 429, by status.
	Codes map[int]string
}

// Injector holds the faults in force and applies them. It is safe for
// concurrent use.
type Injector[O Op] struct {
	name    string
	login   func(O) bool
	closed  <-chan struct{}
	answers Answers
	state   atomic.Pointer[state[O]]
}

// state is the faults in force and how many answers they have failed
// since Set, for MaxFaults.
type state[O Op] struct {
	Faults[O]
	answered atomic.Int64
}

// take reports whether one more answer may be failed under MaxFaults.
func (s *state[O]) take() bool {
	return s.MaxFaults <= 0 || s.answered.Add(1) <= int64(s.MaxFaults)
}

// NewInjector returns an Injector with no faults. name prefixes errors
// ("sim"); login tells the login operations; closed is closed when the
// simulator closes, which ends delays and hangs.
func NewInjector[O Op](name string, login func(O) bool, closed <-chan struct{}, answers Answers) *Injector[O] {
	in := &Injector[O]{name: name, login: login, closed: closed, answers: answers}
	in.state.Store(&state[O]{})
	return in
}

// Set replaces the injected faults; it is safe to call while the
// simulator serves. Requests already delayed keep their delay.
func (in *Injector[O]) Set(f Faults[O]) error {
	if err := f.Validate(); err != nil {
		return errors.New(in.name + ": " + err.Error())
	}
	f.OpLatency = maps.Clone(f.OpLatency)
	in.state.Store(&state[O]{Faults: f})
	return nil
}

// Get returns the faults in force.
func (in *Injector[O]) Get() Faults[O] {
	f := in.state.Load().Faults
	f.OpLatency = maps.Clone(f.OpLatency)
	return f
}

// Apply applies the faults to one request of op. It reports whether the
// request should go on; when not, it has answered (or the client is gone).
func (in *Injector[O]) Apply(w http.ResponseWriter, r *http.Request, op O) bool {
	f := in.state.Load()
	if in.login(op) && !f.IncludeLogin {
		return true
	}
	delay := f.Latency + f.OpLatency[op]
	if f.Jitter > 0 {
		delay += rand.N(f.Jitter)
	}
	if delay > 0 && !in.sleep(r.Context(), delay) {
		in.interrupted(w)
		return false
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-in.closed:
		}
		in.interrupted(w)
		return false
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate && f.take() {
		status := f.ErrorStatus
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		if status == http.StatusServiceUnavailable {
			SetRetryAfter(w, f.RetryAfter)
		}
		in.answers.Write(w, status, in.answers.Codes[status], "injected fault: "+http.StatusText(status))
		return false
	}
	if f.RateLimitRate > 0 && rand.Float64() < f.RateLimitRate && f.take() {
		SetRetryAfter(w, f.RetryAfter)
		in.answers.Write(w, http.StatusTooManyRequests, in.answers.Codes[http.StatusTooManyRequests], "injected fault: rate limit exceeded")
		return false
	}
	return true
}

// SetRetryAfter sets Retry-After to d in whole seconds, rounded up (the
// header has no finer unit); d == 0 sets nothing.
func SetRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d <= 0 {
		return
	}
	secs := (d + time.Second - 1) / time.Second
	w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
}

// sleep waits for d, the end of ctx or the closing of the simulator, and
// reports whether the whole delay passed.
func (in *Injector[O]) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-in.closed:
		return false
	}
}

// interrupted answers a delayed or hung request whose wait ended early:
// 503 if the simulator is closing, nothing if the client left.
func (in *Injector[O]) interrupted(w http.ResponseWriter) {
	select {
	case <-in.closed:
		in.answers.Write(w, http.StatusServiceUnavailable, in.answers.Codes[http.StatusServiceUnavailable], "simulator is shutting down")
	default:
	}
}
