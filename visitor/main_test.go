package visitor

import (
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// No goroutine may outlive the tests; the shared Redis Cluster is stopped
// first.
func TestMain(m *testing.M) { redistest.Main(m) }

// TestOnRedisCluster runs the tests of Redis-heavy paths (multi-key
// transactions over visits, the Protect scheduler's Lua claim, locks)
// against a real three-master Redis Cluster: every key must be in the
// slot its transaction or script needs.
func TestOnRedisCluster(t *testing.T) {
	onCluster = true
	defer func() { onCluster = false }()
	for name, test := range map[string]func(*testing.T){
		"InvitedVisit":        TestInvitedVisit,
		"OutOfOrder":          TestOutOfOrder,
		"Redelivery":          TestRedelivery,
		"WindowEdges":         TestWindowEdges,
		"Protect":             TestProtect,
		"SchedulerRunsOnce":   TestSchedulerRunsOnce,
		"Rescheduling":        TestRescheduling,
		"Registration":        TestRegistration,
		"UpdateSettingsSaves": TestUpdateSettingsSaves,
	} {
		t.Run(name, test)
	}
}
