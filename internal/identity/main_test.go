package identity

import (
	"testing"

	"go.uber.org/goleak"
)

// The JWKS verifier's refresher must stop on Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
