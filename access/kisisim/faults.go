package kisisim

import (
	"net/http"

	"github.com/cloudkey/cloudkey/access/simfault"
)

// Faults make the simulator behave like a slow or failing Kisi (see
// simfault.Faults); the login operation is POST /logins. They are
// independent of the per-user rate limit (SetRateLimit), which is Kisi's
// own behaviour.
type Faults = simfault.Faults[Op]

// Known reports whether op is one of the simulator's operations.
func (op Op) Known() bool { return op >= 0 && op < numOps }

// newFaults is the simulator's fault injector, with no faults.
func newFaults(closed <-chan struct{}) *simfault.Injector[Op] {
	return simfault.NewInjector("kisisim", func(op Op) bool { return op == OpCreateLogin }, closed, simfault.Answers{Write: writeError, Codes: map[int]string{
		// "ffffff" is Kisi's "unexpected error"; the gateway statuses have
		// no Kisi code.
		http.StatusInternalServerError: "ffffff",
		http.StatusBadGateway:          "000502",
		http.StatusServiceUnavailable:  "000503",
		http.StatusGatewayTimeout:      "000504",
		http.StatusTooManyRequests:     codeRateLimited,
	}})
}

// SetFaults replaces the injected faults; it is safe to call while the
// simulator serves. Requests already delayed keep their delay.
func (s *Sim) SetFaults(f Faults) error { return s.faults.Set(f) }

// Faults returns the faults in force.
func (s *Sim) Faults() Faults { return s.faults.Get() }
