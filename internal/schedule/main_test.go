package schedule

import (
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// No goroutine (a run, a lease renewal) may outlive the tests.
func TestMain(m *testing.M) { redistest.Main(m) }
