package buildiumsim

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudkey/cloudkey/access/simfault"
)

// Op is one simulated Buildium operation. Its String is the operationId
// of Buildium's API description.
type Op int

// The simulated operations.
const (
	OpGetLeases                      Op = iota // GET /v1/leases
	OpGetLeaseByID                             // GET /v1/leases/{leaseId}
	OpGetAllTenants                            // GET /v1/leases/tenants
	OpGetTenantByID                            // GET /v1/leases/tenants/{tenantId}
	OpGetLeaseMoveOutInformationByID           // GET /v1/leases/{leaseId}/moveouts
	OpGetLeaseMoveOutDataByTenantID            // GET /v1/leases/{leaseId}/moveouts/{tenantId}
	OpGetAllRentals                            // GET /v1/rentals
	OpGetRentalByID                            // GET /v1/rentals/{propertyId}

	numOps
)

var opNames = [numOps]string{
	"GetLeases", "GetLeaseById", "GetAllTenants", "GetTenantById",
	"GetLeaseMoveOutInformationById", "GetLeaseMoveOutDataByTenantId",
	"GetAllRentals", "GetRentalById",
}

func (op Op) String() string {
	if op < 0 || op >= numOps {
		return fmt.Sprintf("Op(%d)", int(op))
	}
	return opNames[op]
}

// Known reports whether op is one of the simulator's operations.
func (op Op) Known() bool { return op >= 0 && op < numOps }

// ParseOp returns the operation named by its operationId,
// case-insensitively.
func ParseOp(name string) (Op, error) {
	for i, n := range opNames {
		if strings.EqualFold(name, n) {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("buildiumsim: unknown operation %q (want one of %s)", name, strings.Join(opNames[:], ", "))
}

// MarshalText makes Op usable as a JSON object key.
func (op Op) MarshalText() ([]byte, error) {
	if !op.Known() {
		return nil, fmt.Errorf("buildiumsim: invalid operation %d", int(op))
	}
	return []byte(opNames[op]), nil
}

// UnmarshalText parses an operation name as ParseOp does.
func (op *Op) UnmarshalText(text []byte) error {
	parsed, err := ParseOp(string(text))
	if err != nil {
		return err
	}
	*op = parsed
	return nil
}

// Faults make the simulator behave like a slow or failing Buildium (see
// simfault.Faults). Buildium has no login operation: faults apply to
// every request.
type Faults = simfault.Faults[Op]

func newFaults(closed <-chan struct{}) *simfault.Injector[Op] {
	return simfault.NewInjector("buildiumsim", func(Op) bool { return false }, closed, simfault.Answers{
		Write: writeError,
		Codes: map[int]string{
			http.StatusInternalServerError: "InternalServerError",
			http.StatusBadGateway:          "BadGateway",
			http.StatusServiceUnavailable:  "ServiceUnavailable",
			http.StatusGatewayTimeout:      "GatewayTimeout",
			http.StatusTooManyRequests:     "TooManyRequests",
		},
	})
}

// SetFaults replaces the injected faults; it is safe to call while the
// simulator serves.
func (s *Sim) SetFaults(f Faults) error { return s.faults.Set(f) }

// Faults returns the faults in force.
func (s *Sim) Faults() Faults { return s.faults.Get() }
