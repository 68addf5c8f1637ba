package reconcile

import (
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// The Kisi client keeps its logins in Redis (none are made here).
func TestMain(m *testing.M) { redistest.Main(m) }
