package sim

import (
	"net/http"

	"github.com/cloudkey/cloudkey/access/simfault"
)

// Faults make the simulator behave like a slow or failing Openpath (see
// simfault.Faults); the login operations are POST /auth/login and its
// token refresh.
type Faults = simfault.Faults[Op]

// Known reports whether op is one of the simulator's operations.
func (op Op) Known() bool { return op >= 0 && op < numOps }

// newFaults is the simulator's fault injector, with no faults.
func newFaults(closed <-chan struct{}) *simfault.Injector[Op] {
	return simfault.NewInjector("sim", func(op Op) bool { return op == OpLogin || op == OpRefreshLogin }, closed, simfault.Answers{Write: writeError, Codes: map[int]string{
		http.StatusInternalServerError: "InternalServerError",
		http.StatusBadGateway:          "BadGatewayError",
		http.StatusServiceUnavailable:  "ServiceUnavailableError",
		http.StatusGatewayTimeout:      "GatewayTimeoutError",
		http.StatusTooManyRequests:     "TooManyRequestsError",
	}})
}

// SetFaults replaces the injected faults; it is safe to call while the
// simulator serves. Requests already delayed keep their delay.
func (s *Sim) SetFaults(f Faults) error { return s.faults.Set(f) }

// Faults returns the faults in force.
func (s *Sim) Faults() Faults { return s.faults.Get() }
