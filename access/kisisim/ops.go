package kisisim

import (
	"fmt"
	"strings"
)

// Op is one simulated Kisi operation. Its String is the operationId of
// Kisi's API description.
type Op int

// The simulated operations.
const (
	OpCreateLogin          Op = iota // POST /logins
	OpFetchCurrentLogin              // GET /login
	OpDeleteLogin                    // DELETE /logins/{id}
	OpFetchUsers                     // GET /users: how clients find a user by email
	OpUpdateUser                     // PATCH /users/{id}
	OpFetchLocks                     // GET /locks
	OpFetchLock                      // GET /locks/{id}
	OpUnlock                         // POST /locks/{id}/unlock
	OpFetchPlaces                    // GET /places
	OpFetchPlace                     // GET /places/{id}
	OpFetchUser                      // GET /users/{id}
	OpFetchRoleAssignments           // GET /role_assignments
	OpFetchGroupLocks                // GET /group_locks

	numOps
)

var opNames = [numOps]string{
	"createLogin",
	"fetchCurrentLogin",
	"deleteLogin",
	"fetchUsers",
	"updateUser",
	"fetchLocks",
	"fetchLock",
	"unlockLock",
	"fetchPlaces",
	"fetchPlace",
	"fetchUser",
	"fetchRoleAssignments",
	"fetchGroupLocks",
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

// ParseOp returns the operation named by its operationId,
// case-insensitively ("fetchUsers", "unlocklock"); "unlock" is accepted for
// OpUnlock and "login" for OpCreateLogin.
func ParseOp(name string) (Op, error) {
	switch strings.ToLower(name) {
	case "unlock":
		return OpUnlock, nil
	case "login":
		return OpCreateLogin, nil
	}
	for i, n := range opNames {
		if strings.EqualFold(name, n) {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("kisisim: unknown operation %q (want one of %s)", name, strings.Join(opNames[:], ", "))
}

// MarshalText makes Op usable as a JSON object key and with flag.TextVar.
func (op Op) MarshalText() ([]byte, error) {
	if op < 0 || op >= numOps {
		return nil, fmt.Errorf("kisisim: invalid operation %d", int(op))
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
