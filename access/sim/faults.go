package sim

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"net/http"
	"time"
)

// Faults make the simulator behave like a slow or failing Openpath. The zero
// value injects nothing. Faults apply to every operation except login and
// token refresh, unless IncludeLogin is set: a test usually wants a token
// first and the failure on the call it exercises.
//
// Faults are applied in this order, before authentication: delay
// (Latency + OpLatency[op] + a uniform random part of Jitter), then Hang,
// then ErrorRate. Delays and hangs end early when the client gives up (the
// request's context is done) or the simulator is closed.
type Faults struct {
	// Latency is added to every request.
	Latency time.Duration `json:"latency,omitempty"`
	// Jitter adds a uniformly random extra delay in [0, Jitter).
	Jitter time.Duration `json:"jitter,omitempty"`
	// OpLatency adds a delay to one operation only.
	OpLatency map[Op]time.Duration `json:"opLatency,omitempty"`
	// ErrorRate is the fraction (0..1) of requests answered 503.
	ErrorRate float64 `json:"errorRate,omitempty"`
	// Hang makes requests block until the client gives up or the simulator
	// is closed; they then get no answer (or 503 on close).
	Hang bool `json:"hang,omitempty"`
	// IncludeLogin applies the faults to login and token refresh too.
	IncludeLogin bool `json:"includeLogin,omitempty"`
}

// Validate reports a negative duration or an error rate outside 0..1.
func (f Faults) Validate() error {
	if f.Latency < 0 || f.Jitter < 0 {
		return errors.New("sim: fault latency and jitter must not be negative")
	}
	for op, d := range f.OpLatency {
		if d < 0 || op < 0 || op >= numOps {
			return errors.New("sim: per-operation latency needs a known operation and a non-negative duration")
		}
	}
	if !(f.ErrorRate >= 0 && f.ErrorRate <= 1) {
		return errors.New("sim: fault error rate must be between 0 and 1")
	}
	return nil
}

// SetFaults replaces the injected faults; it is safe to call while the
// simulator serves. Requests already delayed keep their delay.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	f.OpLatency = maps.Clone(f.OpLatency)
	s.faults.Store(&f)
	return nil
}

// Faults returns the faults in force.
func (s *Sim) Faults() Faults {
	f := *s.faults.Load()
	f.OpLatency = maps.Clone(f.OpLatency)
	return f
}

// injectFaults applies the configured faults to one request. It reports
// whether the request should go on; when not, it has answered (or the client
// is gone).
func (s *Sim) injectFaults(w http.ResponseWriter, r *http.Request, op Op) bool {
	f := s.faults.Load()
	if (op == OpLogin || op == OpRefreshLogin) && !f.IncludeLogin {
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
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "injected fault: service unavailable")
		return false
	}
	return true
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
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailableError", "simulator is shutting down")
	default:
	}
}
