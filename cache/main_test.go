package cache

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// No goroutine may outlive the tests; the shared Redis Cluster is stopped
// first.
func TestMain(m *testing.M) {
	code := m.Run()
	redistest.CloseShared()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
