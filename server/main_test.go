package server_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Every stack a test starts is stopped with all its goroutines: servers,
// the audit writer, the cache subscription, the visitor scheduler.
// Started as a child of a test (childEnv set), the binary serves instead.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(serveChild())
	}
	goleak.VerifyTestMain(m)
}
