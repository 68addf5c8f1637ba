package sim

import (
	"testing"
	"time"
)

func TestTimings(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.raw)
	entries := f.raw + orgPath + "/entries"

	// Off by default: nothing is recorded, nothing is returned.
	if status, _ := timed(t, entries, token, 5*time.Second); status != 200 {
		t.Fatalf("status %d", status)
	}
	if got := f.sim.TakeTimings(); got != nil {
		t.Fatalf("timings off: got %v, want nil", got)
	}

	f.sim.RecordTimings(true)
	if err := f.sim.SetFaults(Faults{Latency: 30 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if status, _ := timed(t, entries, token, 5*time.Second); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	got := f.sim.TakeTimings()
	h := got[OpListEntries]
	switch {
	case len(got) != 1 || h == nil:
		t.Fatalf("timings: got ops %v, want listEntries only", got)
	case h.TotalCount() != 3:
		t.Errorf("listEntries timings: %d requests, want 3", h.TotalCount())
	case h.Min() < 30_000:
		t.Errorf("listEntries timings: min %d µs, want at least the injected 30 ms", h.Min())
	}
	// Taking starts afresh.
	if again := f.sim.TakeTimings(); len(again) != 0 {
		t.Errorf("second take: got %v, want none", again)
	}
	f.sim.RecordTimings(false)
	if status, _ := timed(t, entries, token, 5*time.Second); status != 200 {
		t.Fatalf("status %d", status)
	}
	if got := f.sim.TakeTimings(); got != nil {
		t.Errorf("timings off again: got %v, want nil", got)
	}
}
