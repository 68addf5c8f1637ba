package sim

import (
	"net/http"
	"sync/atomic"
)

// inFlight counts the requests being served and the most served at once,
// so tests can check that a client's upstream concurrency stays bounded.
type inFlight struct {
	now, max atomic.Int64
}

func (f *inFlight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.now.Add(1)
		defer f.now.Add(-1)
		for m := f.max.Load(); n > m && !f.max.CompareAndSwap(m, n); m = f.max.Load() {
		}
		h.ServeHTTP(w, r)
	})
}

// InFlight returns how many requests the simulator is serving now (of any
// operation, faults' delays included).
func (s *Sim) InFlight() int64 { return s.load.now.Load() }

// MaxInFlight returns the most requests served at once since the start
// or the last ResetMaxInFlight.
func (s *Sim) MaxInFlight() int64 { return s.load.max.Load() }

// ResetMaxInFlight restarts MaxInFlight from the requests in flight now.
func (s *Sim) ResetMaxInFlight() { s.load.max.Store(s.load.now.Load()) }
