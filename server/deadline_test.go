package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// deadlineSlack is how late an answer may arrive after its deadline: the
// time to notice it and answer, not more upstream work.
const deadlineSlack = 500 * time.Millisecond

// TestUnlockAnswersByOneDeadline: a whole Unlock, resolving an uncached
// user (find by email, create the cloud key, list entries, under the load
// lock and the single flight) as well as the fan-out, runs under one
// deadline, the sooner of the server cap and the caller's; with the access
// system hung or slow the answer arrives by it, and no door opens after it.
func TestUnlockAnswersByOneDeadline(t *testing.T) {
	const short, long = 800 * time.Millisecond, 3 * time.Second
	hung := sim.Faults{Hang: true}
	// Each call slower than half the deadline: an uncached user's
	// resolution alone (three or four calls) outlasts it.
	slow := sim.Faults{Latency: 500 * time.Millisecond}
	for _, tt := range []struct {
		name        string
		faults      sim.Faults
		cached      bool
		cap, caller time.Duration // caller 0: no deadline of its own
	}{
		{"hung/cached/server cap", hung, true, short, 0},
		{"hung/uncached/server cap", hung, false, short, 0},
		{"hung/cached/cap sooner than caller", hung, true, short, long},
		{"hung/uncached/cap sooner than caller", hung, false, short, long},
		{"hung/cached/caller sooner than cap", hung, true, long, short},
		{"hung/uncached/caller sooner than cap", hung, false, long, short},
		{"slow/cached/server cap", slow, true, short, 0},
		{"slow/uncached/server cap", slow, false, short, 0},
		{"slow/uncached/cap sooner than caller", slow, false, short, long},
		{"slow/uncached/caller sooner than cap", slow, false, long, short},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newStack(t, stackOpts{unlockCap: tt.cap})
			ctx := st.as(t, "alice@example.com")
			if tt.cached {
				if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			st.sim.Reset()
			if tt.caller > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.caller)
				defer cancel()
			}
			wantBy := tt.cap
			if tt.caller > 0 {
				wantBy = min(wantBy, tt.caller)
			}
			start := time.Now()
			deadline := start.Add(wantBy)
			resp, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101", "102"}})
			took := time.Since(start)
			t.Logf("answered in %v: %v %v", took.Round(time.Millisecond), resp.GetResults(), err)
			if took > wantBy+deadlineSlack {
				t.Errorf("answered after %v; the deadline was %v", took, wantBy)
			}
			switch code := status.Code(err); code {
			case codes.OK:
				for _, r := range resp.Results {
					switch r.Status {
					case pb.UnlockStatus_UNLOCK_STATUS_TIMEOUT, pb.UnlockStatus_UNLOCK_STATUS_UNAVAILABLE:
					case pb.UnlockStatus_UNLOCK_STATUS_OK: // slow, not hung: in time
						if tt.faults.Hang {
							t.Errorf("result %v from a hung access system", r)
						}
					default:
						t.Errorf("result %v, want TIMEOUT or UNAVAILABLE", r)
					}
				}
			case codes.DeadlineExceeded, codes.Unavailable:
			default:
				t.Errorf("err = %v, want per-entry TIMEOUT/UNAVAILABLE, DEADLINE_EXCEEDED or UNAVAILABLE", err)
			}
			// Whatever was still in flight has ended by now.
			time.Sleep(deadlineSlack)
			for _, u := range st.sim.Unlocks() {
				if u.At.After(deadline) {
					t.Errorf("entry %d opened %v after the deadline", u.EntryID, u.At.Sub(deadline))
				}
			}
		})
	}
}
