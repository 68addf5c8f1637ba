package tenant

import (
	"os"
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// TestMain stops the shared Redis Cluster after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	redistest.CloseShared()
	os.Exit(code)
}
