package unlock_test

import (
	"testing"

	"go.uber.org/goleak"
)

// No goroutine may outlive the tests: the engine waits for every upstream
// call it starts, and the auditor's writer ends on Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
