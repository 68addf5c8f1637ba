package kisisim

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

// Faults make the simulator behave like a slow or failing Kisi. The zero
// value injects nothing. Faults apply to every operation except POST
// /logins, unless IncludeLogin is set: a test usually wants a login first
// and the failure on the call it exercises. They are independent of the
// per-user rate limit (SetRateLimit), which is Kisi's own behaviour.
//
// Faults are applied in this order, before authentication: delay
// (Latency + OpLatency[op] + a uniform random part of Jitter), then Hang,
// then ErrorRate, then RateLimitRate. Delays and hangs end early when the
// client gives up (the request's context is done) or the simulator is
// closed.
type Faults struct {
	// Latency is added to every request.
	Latency time.Duration `json:"latency,omitempty"`
	// Jitter adds a uniformly random extra delay in [0, Jitter).
	Jitter time.Duration `json:"jitter,omitempty"`
	// OpLatency adds a delay to one operation only.
	OpLatency map[Op]time.Duration `json:"opLatency,omitempty"`
	// ErrorRate is the fraction (0..1) of requests answered ErrorStatus.
	ErrorRate float64 `json:"errorRate,omitempty"`
	// ErrorStatus is the status ErrorRate answers with: 500, 502, 503 or
	// 504; 0 means 503.
	ErrorStatus int `json:"errorStatus,omitempty"`
	// RateLimitRate is the fraction (0..1) of the requests ErrorRate spared
	// that are answered 429 Too Many Requests, as Kisi's rate limiter
	// does (without counting them against any user's quota).
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
	// IncludeLogin applies the faults to POST /logins too.
	IncludeLogin bool `json:"includeLogin,omitempty"`
}

// Validate reports a negative duration or count, a rate outside 0..1 or an
// error status that is not a 5xx a server or gateway sends.
func (f Faults) Validate() error {
	if f.Latency < 0 || f.Jitter < 0 || f.RetryAfter < 0 {
		return errors.New("kisisim: fault latency, jitter and retry-after must not be negative")
	}
	for op, d := range f.OpLatency {
		if d < 0 || op < 0 || op >= numOps {
			return errors.New("kisisim: per-operation latency needs a known operation and a non-negative duration")
		}
	}
	if !(f.ErrorRate >= 0 && f.ErrorRate <= 1) {
		return errors.New("kisisim: fault error rate must be between 0 and 1")
	}
	if !(f.RateLimitRate >= 0 && f.RateLimitRate <= 1) {
		return errors.New("kisisim: fault rate-limit rate must be between 0 and 1")
	}
	switch f.ErrorStatus {
	case 0, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		return errors.New("kisisim: fault error status must be 500, 502, 503 or 504")
	}
	if f.MaxFaults < 0 {
		return errors.New("kisisim: fault maxFaults must not be negative")
	}
	return nil
}

// faultState is the faults in force and how many answers they have failed
// since SetFaults, for MaxFaults.
type faultState struct {
	Faults
	answered atomic.Int64
}

// take reports whether one more answer may be failed under MaxFaults.
func (fs *faultState) take() bool {
	return fs.MaxFaults <= 0 || fs.answered.Add(1) <= int64(fs.MaxFaults)
}

// SetFaults replaces the injected faults; it is safe to call while the
// simulator serves. Requests already delayed keep their delay.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	f.OpLatency = maps.Clone(f.OpLatency)
	s.faults.Store(&faultState{Faults: f})
	return nil
}

// Faults returns the faults in force.
func (s *Sim) Faults() Faults {
	f := s.faults.Load().Faults
	f.OpLatency = maps.Clone(f.OpLatency)
	return f
}

// injectFaults applies the configured faults to one request. It reports
// whether the request should go on; when not, it has answered (or the client
// is gone).
func (s *Sim) injectFaults(w http.ResponseWriter, r *http.Request, op Op) bool {
	f := s.faults.Load()
	if op == OpCreateLogin && !f.IncludeLogin {
		return true
	}
	delay := f.Latency + f.OpLatency[op]
	if f.Jitter > 0 {
		delay += rand.N(f.Jitter)
	}
	if delay > 0 && !s.sleep(r.Context(), delay) {
		s.answerInterrupted(w)
		return false
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		s.answerInterrupted(w)
		return false
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate && f.take() {
		status := f.ErrorStatus
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		if status == http.StatusServiceUnavailable {
			setRetryAfter(w, f.RetryAfter)
		}
		writeError(w, status, errorCodes[status], "injected fault: "+http.StatusText(status))
		return false
	}
	if f.RateLimitRate > 0 && rand.Float64() < f.RateLimitRate && f.take() {
		setRetryAfter(w, f.RetryAfter)
		writeError(w, http.StatusTooManyRequests, codeRateLimited, "injected fault: rate limit exceeded")
		return false
	}
	return true
}

// errorCodes are the Kisi error codes of the injected 5xx answers: "ffffff"
// is Kisi's "unexpected error"; the gateway statuses have no Kisi code.
var errorCodes = map[int]string{
	http.StatusInternalServerError: "ffffff",
	http.StatusBadGateway:          "000502",
	http.StatusServiceUnavailable:  "000503",
	http.StatusGatewayTimeout:      "000504",
}

// setRetryAfter sets Retry-After to d in whole seconds, rounded up (the
// header has no finer unit); d == 0 sets nothing.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d <= 0 {
		return
	}
	secs := (d + time.Second - 1) / time.Second
	w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
}

// sleep waits for d, the end of ctx or the closing of the simulator, and
// reports whether the whole delay passed.
func (s *Sim) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// answerInterrupted answers a delayed or hung request whose wait ended
// early: 503 if the simulator is closing, nothing if the client left.
func (s *Sim) answerInterrupted(w http.ResponseWriter) {
	select {
	case <-s.closed:
		writeError(w, http.StatusServiceUnavailable, "000503", "simulator is shutting down")
	default:
	}
}
