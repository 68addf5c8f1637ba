package server_test

import (
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// totalCalls is every request the simulator received since its last Reset.
func totalCalls(s *sim.Server) int64 {
	var n int64
	for _, op := range sim.Ops() {
		n += s.Calls(op)
	}
	return n
}

// TestAccessOutageFailsFastAndRecovers: with the access system failing
// every request (slowly, with 503 or 429), a cold ListEntries answers UNAVAILABLE
// (ACCESS_UNAVAILABLE, HTTP 503) promptly and an Unlock answers UNAVAILABLE
// per entry; the breaker soon opens and calls stop reaching the access
// system at all; once the access system is back, cloudkey recovers by
// itself. No unlock is ever sent twice.
func TestAccessOutageFailsFastAndRecovers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults sim.Faults
	}{
		// Slow too: a call that reached the access system (three
		// attempts for a read) could not be fast.
		{"503", sim.Faults{ErrorRate: 1, Latency: 200 * time.Millisecond}},
		{"429", sim.Faults{RateLimitRate: 1, Latency: 200 * time.Millisecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newStack(t, stackOpts{breakerOpen: time.Second})
			alice := st.as(t, "alice@example.com")
			if _, err := st.client.ListEntries(alice, &pb.ListEntriesRequest{}); err != nil {
				t.Fatal(err) // alice is cached; erin stays cold
			}
			if err := st.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			st.sim.Reset()

			// Sent, and answered 503 or 429: UNAVAILABLE, once per entry.
			resp, err := st.client.Unlock(alice, &pb.UnlockRequest{EntryIds: []string{"101", "102"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.Results {
				if r.Status != pb.UnlockStatus_UNLOCK_STATUS_UNAVAILABLE {
					t.Errorf("result %+v, want UNAVAILABLE", r)
				}
			}
			if got := st.sim.Calls(sim.OpUnlock); got != 2 {
				t.Errorf("Calls(OpUnlock) = %d for 2 entries, want 2: unlocks are not retried", got)
			}

			start := time.Now()
			_, err = st.client.ListEntries(st.as(t, "erin@example.com"), &pb.ListEntriesRequest{})
			if status.Code(err) != codes.Unavailable || reason(err) != "ACCESS_UNAVAILABLE" {
				t.Fatalf("cold ListEntries: %v, want UNAVAILABLE with ACCESS_UNAVAILABLE", err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("cold ListEntries took %v", took)
			}
			if code, _ := st.rest(t, "GET", "/v1/me/entries", "erin@example.com", ""); code != http.StatusServiceUnavailable {
				t.Errorf("REST cold list: HTTP %d, want 503", code)
			}

			// Soon the breaker opens: unlocks are still UNAVAILABLE, and sent nowhere.
			for try := 0; ; try++ {
				before := st.sim.Calls(sim.OpUnlock)
				resp, err = st.client.Unlock(alice, &pb.UnlockRequest{EntryIds: []string{"101", "102"}})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range resp.Results {
					if r.Status != pb.UnlockStatus_UNLOCK_STATUS_UNAVAILABLE {
						t.Errorf("result %+v, want UNAVAILABLE", r)
					}
				}
				sent := st.sim.Calls(sim.OpUnlock) - before
				if sent > 2 {
					t.Fatalf("%d unlock requests for 2 entries", sent)
				}
				if sent == 0 {
					break // the breaker is open: nothing reaches the access system
				}
				if try == 10 {
					t.Fatal("the breaker never opened")
				}
			}
			st.sim.Reset()
			start = time.Now()
			_, err = st.client.ListEntries(st.as(t, "erin@example.com"), &pb.ListEntriesRequest{})
			if status.Code(err) != codes.Unavailable || reason(err) != "ACCESS_UNAVAILABLE" {
				t.Errorf("cold ListEntries with the breaker open: %v", err)
			}
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("with the breaker open, a cold ListEntries took %v: it must fail fast", took)
			}
			if n := totalCalls(st.sim); n != 0 {
				t.Errorf("%d requests reached the access system through an open breaker", n)
			}

			// The access system is back: cloudkey recovers with no help.
			if err := st.sim.SetFaults(sim.Faults{}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, err := st.client.ListEntries(st.as(t, "erin@example.com"), &pb.ListEntriesRequest{})
				if err == nil {
					break
				}
				if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
					t.Fatalf("after the faults cleared: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			resp, err = st.client.Unlock(alice, &pb.UnlockRequest{EntryIds: []string{"101"}})
			if err != nil || resp.Results[0].Status != pb.UnlockStatus_UNLOCK_STATUS_OK {
				t.Fatalf("unlock after recovery: %v %v", resp, err)
			}
			if got := len(st.sim.Unlocks()); got != 1 {
				t.Errorf("%d doors opened, want 1 (only the unlock after recovery)", got)
			}
			if got := st.sim.Calls(sim.OpUnlock); got != 1 {
				t.Errorf("Calls(OpUnlock) after recovery = %d, want 1", got)
			}
		})
	}
}
