package unlock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/unlock"
)

// newService is a resident service on a redis-server and the simulator
// over HTTP, whose cache's loads are bounded by loadTimeout.
func newService(t *testing.T, loadTimeout time.Duration) (*unlock.Service, *sim.Server) {
	t.Helper()
	s, err := sim.Start(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := openpath.New(openpath.Config{BaseURL: s.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	store := cache.New(redistest.Start(t).Client(), cache.Config{LoadTimeout: loadTimeout})
	return unlock.NewService(c, "openpath", store, unlock.NewEngine(10*time.Second, nil), nil), s
}

// TestReadsAnswerWithinTheLoadBound: an uncached user's read (GetMe,
// ListEntries) loads the account and then the entries; together, not
// each, they are bounded by the cache's load timeout, so with a slow
// access system the answer arrives by it.
func TestReadsAnswerWithinTheLoadBound(t *testing.T) {
	const bound = time.Second
	svc, s := newService(t, bound)
	// Each load alone fits in the bound; the two do not.
	slow := map[sim.Op]time.Duration{sim.OpListUsers: 900 * time.Millisecond, sim.OpListUserEntries: 900 * time.Millisecond}
	if err := s.SetFaults(sim.Faults{OpLatency: slow}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := svc.Entries(context.Background(), "alice@example.com")
	took := time.Since(start)
	var calls int64
	for _, op := range sim.Ops() {
		calls += s.Calls(op)
	}
	t.Logf("answered in %v after %d upstream calls: %v", took.Round(time.Millisecond), calls, err)
	if took > bound+500*time.Millisecond {
		t.Errorf("answered after %v; the load bound is %v", took, bound)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
}
