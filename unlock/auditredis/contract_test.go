package auditredis_test

import (
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest/backends"
)

// TestContract is the audit stores' contract (unlock.Auditor written by
// StreamAuditor, unlock.AuditReader read by AuditLog), run on a
// redis-server, a three-master Cluster and the embedded Redis. The
// writer's outage tests (Redis killed and restarted) need a process to
// kill and run on redis-server only.
func TestContract(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		t.Run("drains on close", func(t *testing.T) { testStreamAuditorDrainsOnClose(t, dial(t)) })
		t.Run("filters and pages", func(t *testing.T) { testAuditLogFiltersAndPages(t, dial(t)) })
		t.Run("kinds", func(t *testing.T) { testAuditKinds(t, dial(t)) })
	})
}
