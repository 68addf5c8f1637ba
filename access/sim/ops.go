package sim

import (
	"fmt"
	"strings"
)

// Op is one simulated Openpath operation. Its String is the operationId of
// the published Openpath spec.
type Op int

// The simulated operations.
const (
	OpLogin               Op = iota // POST /auth/login
	OpRefreshLogin                  // POST /auth/accessTokens/refresh (also /auth/refreshLogin)
	OpListUsers                     // GET /orgs/{orgId}/users: how clients find a user by email
	OpSetUserStatus                 // PUT /orgs/{orgId}/users/{userId}/status
	OpListCredentialTypes           // GET /orgs/{orgId}/credentialTypes
	OpListCredentials               // GET /orgs/{orgId}/users/{userId}/credentials
	OpCreateCredential              // POST /orgs/{orgId}/users/{userId}/credentials
	OpListUserEntries               // GET /orgs/{orgId}/users/{userId}/entries
	OpListEntries                   // GET /orgs/{orgId}/entries
	OpUnlock                        // POST /orgs/{orgId}/users/{userId}/credentials/{credentialId}/cloudKeyEntryUnlock
	OpGenerateUnlockToken           // POST /orgs/{orgId}/users/{userId}/credentials/{credentialId}/generateCloudKeyUnlockToken
	OpUseUnlockToken                // POST /tokens/cloudKeyUnlockTokens/{token}/use (no session token)

	numOps
)

var opNames = [numOps]string{
	"login",
	"refreshLogin",
	"listUsers",
	"setUserStatus",
	"listCredentialTypes",
	"listCredentials",
	"createCredential",
	"listUserEntries",
	"listEntries",
	"cloudKeyEntryUnlock",
	"generateCloudKeyUnlockToken",
	"useCloudKeyUnlockToken",
}

// Ops lists every operation, in declaration order.
func Ops() []Op {
	ops := make([]Op, numOps)
	for i := range ops {
		ops[i] = Op(i)
	}
	return ops
}

func (op Op) String() string {
	if op < 0 || op >= numOps {
		return fmt.Sprintf("Op(%d)", int(op))
	}
	return opNames[op]
}

// ParseOp returns the operation named by its operationId, case-insensitively
// ("listUsers", "cloudkeyentryunlock"); "unlock" is accepted for OpUnlock.
func ParseOp(name string) (Op, error) {
	if strings.EqualFold(name, "unlock") {
		return OpUnlock, nil
	}
	for i, n := range opNames {
		if strings.EqualFold(name, n) {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("sim: unknown operation %q (want one of %s)", name, strings.Join(opNames[:], ", "))
}

// MarshalText makes Op usable as a JSON object key and with flag.TextVar.
func (op Op) MarshalText() ([]byte, error) {
	if op < 0 || op >= numOps {
		return nil, fmt.Errorf("sim: invalid operation %d", int(op))
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
