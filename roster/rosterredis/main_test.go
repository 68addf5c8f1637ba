package rosterredis

import (
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// No goroutine may outlive the tests; the shared Redis Cluster is stopped
// first.
func TestMain(m *testing.M) { redistest.Main(m) }
