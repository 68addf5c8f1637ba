package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every stack a test starts is stopped with all its goroutines: servers,
// the audit writer, the cache subscription, the visitor scheduler.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
