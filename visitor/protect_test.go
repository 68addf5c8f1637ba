package visitor

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
)

func employeeSignIn(t *testing.T, entryID, email string, edits ...edit) []byte {
	return event(t, "employee_entry_sign_in", append([]edit{id(entryID), attr("email", email)}, edits...)...)
}

func employeeSignOut(t *testing.T, entryID, email string) []byte {
	return event(t, "employee_entry_sign_out", id(entryID), attr("email", email))
}

func (h *harness) status(email string) access.Status {
	h.t.Helper()
	u, err := h.sim.User(email)
	if err != nil {
		h.t.Fatal(err)
	}
	return u.Status
}

func TestProtect(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	for email, st := range map[string]access.Status{"erin@example.com": access.StatusSuspended, "carol@example.com": access.StatusInactive} {
		if err := h.sim.SetUserStatus(email, st); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		settings func(*Settings)
		body     []byte
		action   Action
		reason   string
		email    string        // whose status to check afterwards
		status   access.Status // expected
		calls    int64         // setUserStatus calls the event makes
	}{
		{"excluded employee", nil, employeeSignIn(t, "x1", "Alice@Example.com"), ActionIgnored, "excluded", "alice@example.com", access.StatusActive, 0},
		{"excluded employee signs out", nil, employeeSignOut(t, "x1", "alice@example.com"), ActionIgnored, "excluded", "alice@example.com", access.StatusActive, 0},
		{"failed screening", nil, employeeSignIn(t, "x2", "erin@example.com",
			attr("approval-status", map[string]any{"status": "denied"})), ActionRefused, "screening not passed", "erin@example.com", access.StatusSuspended, 0},
		{"not a screening", nil, employeeSignIn(t, "x3", "erin@example.com", attr("employee-screening-flow", false)),
			ActionRefused, "not a Protect screening", "erin@example.com", access.StatusSuspended, 0},
		{"unknown employee", nil, employeeSignIn(t, "x4", "nobody@example.com"), ActionRefused, "no access-system user", "erin@example.com", access.StatusSuspended, 0},
		{"inactive user", nil, employeeSignIn(t, "x5", "carol@example.com"), ActionRefused, "inactive", "carol@example.com", access.StatusInactive, 0},
		{"Protect off", func(s *Settings) { s.Protect.Enabled = false }, employeeSignIn(t, "x6", "erin@example.com"),
			ActionIgnored, "Protect is not enabled", "erin@example.com", access.StatusSuspended, 0},
		{"passed screening", nil, employeeSignIn(t, "x7", "erin@example.com"), ActionEmployeeActivated, "active until 2026-11-24T16:00:00Z", "erin@example.com", access.StatusActive, 1},
		{"screening without approval status", nil, employeeSignIn(t, "x8", "erin@example.com", attr("approval-status", nil)),
			ActionEmployeeActivated, "active until", "erin@example.com", access.StatusActive, 0},
		{"sign-out", nil, employeeSignOut(t, "x8", "erin@example.com"), ActionEmployeeSuspended, "signed out", "erin@example.com", access.StatusSuspended, 1},
		{"sign-out before sign-in", nil, employeeSignOut(t, "x9", "erin@example.com"), ActionRefused, "nothing to suspend", "erin@example.com", access.StatusSuspended, 0},
		{"then the sign-in", nil, employeeSignIn(t, "x9", "erin@example.com"), ActionRefused, "already signed out", "erin@example.com", access.StatusSuspended, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.configure(tt.settings)
			before := h.sim.Calls(sim.OpSetUserStatus)
			out := h.handle(tt.body)
			if out.Action != tt.action || !strings.Contains(out.Reason, tt.reason) {
				t.Fatalf("outcome %+v, want %s (%q)", out, tt.action, tt.reason)
			}
			if got := h.status(tt.email); got != tt.status {
				t.Errorf("%s is %s, want %s", tt.email, got, tt.status)
			}
			if n := h.sim.Calls(sim.OpSetUserStatus) - before; n != tt.calls {
				t.Errorf("%d status changes, want %d", n, tt.calls)
			}
		})
	}
	if sus := must[[]Suspension](t)(h.svc.Suspensions(context.Background())); len(sus) != 0 {
		t.Errorf("suspensions left: %+v", sus)
	}
	log := must[[]Outcome](t)(h.svc.Decisions(context.Background(), loc, 100))
	if len(log) != len(tests) || log[0].Employee != "erin@example.com" || log[len(log)-1].Employee != "alice@example.com" {
		t.Errorf("decision log: %+v", log)
	}
}

// TestSchedulerRunsOnce races two replicas' schedulers (and extra RunDue
// callers) over the same due suspensions: each runs exactly once.
func TestSchedulerRunsOnce(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	if err := h.sim.SetUserStatus("erin@example.com", access.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	for i, email := range []string{"erin@example.com", "bob@example.com", "carol@example.com"} {
		if out := h.handle(employeeSignIn(t, "s"+string(rune('0'+i)), email)); out.Action != ActionEmployeeActivated {
			t.Fatalf("%s: %+v", email, out)
		}
	}
	activations := h.sim.Calls(sim.OpSetUserStatus) // erin and carol; bob was active
	if activations != 2 {
		t.Fatalf("%d activations", activations)
	}
	replicas := []*Service{h.svc, h.newService(nil)}

	// Not due yet: nothing runs.
	for _, r := range replicas {
		if n := must[int](t)(r.RunDue(ctx)); n != 0 {
			t.Fatalf("claimed %d jobs before they were due", n)
		}
	}
	h.clock.Set(t0.Add(10*time.Hour - time.Second))
	if n := must[int](t)(h.svc.RunDue(ctx)); n != 0 {
		t.Fatalf("claimed %d jobs a second early", n)
	}

	h.clock.Set(t0.Add(10 * time.Hour))
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, r := range replicas {
		wg.Go(func() {
			if err := r.RunScheduler(runCtx); err != nil {
				t.Error(err)
			}
		})
		for range 3 {
			wg.Go(func() {
				for runCtx.Err() == nil {
					if _, err := r.RunDue(runCtx); err != nil && runCtx.Err() == nil {
						t.Error(err)
					}
				}
			})
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		sus := must[[]Suspension](t)(h.svc.Suspensions(ctx))
		if len(sus) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("suspensions still pending: %+v", sus)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let any stray second run show itself
	stop()
	wg.Wait()
	if n := h.sim.Calls(sim.OpSetUserStatus) - activations; n != 3 {
		t.Errorf("%d suspensions executed, want 3 (once each)", n)
	}
	for _, email := range []string{"erin@example.com", "bob@example.com", "carol@example.com"} {
		if st := h.status(email); st != access.StatusSuspended {
			t.Errorf("%s is %s", email, st)
		}
	}
	suspended := 0
	for _, o := range must[[]Outcome](t)(h.svc.Decisions(ctx, loc, 100)) {
		if o.Event == "protect_suspension" && o.Action == ActionEmployeeSuspended {
			suspended++
		}
	}
	if suspended != 3 {
		t.Errorf("%d suspensions logged, want 3", suspended)
	}
}

// TestRescheduling: a second screening pushes the suspension back; a job
// claimed before it was rescheduled or cancelled does nothing.
func TestRescheduling(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	h.handle(employeeSignIn(t, "r1", "erin@example.com"))
	h.clock.Set(t0.Add(5 * time.Hour))
	h.handle(employeeSignIn(t, "r2", "erin@example.com"))
	h.clock.Set(t0.Add(10 * time.Hour))
	if n := must[int](t)(h.svc.RunDue(ctx)); n != 0 {
		t.Fatalf("the first, replaced, suspension ran (%d)", n)
	}
	if h.status("erin@example.com") != access.StatusActive {
		t.Fatal("erin was suspended early")
	}

	// Claim the job by hand, then reschedule it before it runs: the claim
	// is stale and does nothing.
	h.clock.Set(t0.Add(15 * time.Hour))
	now := h.clock.Now()
	claimed := must[[]string](t)(h.store.ClaimJobs(ctx, now, now.Add(time.Minute), 10))
	if len(claimed) != 2 {
		t.Fatalf("claimed %v", claimed)
	}
	h.handle(employeeSignIn(t, "r3", "erin@example.com"))
	before := h.sim.Calls(sim.OpSetUserStatus)
	h.svc.runJob(ctx, claimed[0], claimed[1])
	if h.sim.Calls(sim.OpSetUserStatus) != before || h.status("erin@example.com") != access.StatusActive {
		t.Error("a stale claim suspended erin")
	}
	if sus := must[[]Suspension](t)(h.svc.Suspensions(ctx)); len(sus) != 1 || !sus[0].Due.Equal(t0.Add(25*time.Hour)) {
		t.Errorf("suspensions: %+v", sus)
	}

	// A claim whose replica died is taken over once its lease ends.
	h.clock.Set(t0.Add(25 * time.Hour))
	now = h.clock.Now()
	claimed = must[[]string](t)(h.store.ClaimJobs(ctx, now, now.Add(time.Minute), 10))
	if len(claimed) != 2 {
		t.Fatalf("claimed %v", claimed)
	}
	if n := must[int](t)(h.svc.RunDue(ctx)); n != 0 {
		t.Fatalf("a claimed job was claimed again under its lease (%d)", n)
	}
	h.clock.Set(now.Add(time.Minute))
	if n := must[int](t)(h.svc.RunDue(ctx)); n != 1 || h.status("erin@example.com") != access.StatusSuspended {
		t.Fatalf("the abandoned claim was not taken over (%d)", n)
	}

	// Excluding an employee after scheduling drops the suspension.
	if err := h.sim.SetUserStatus("erin@example.com", access.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	h.handle(employeeSignIn(t, "r4", "erin@example.com"))
	h.configure(func(s *Settings) {
		s.Protect.ExcludedEmployees = append(s.Protect.ExcludedEmployees, "erin@example.com")
	})
	h.clock.Set(t0.Add(40 * time.Hour))
	if n := must[int](t)(h.svc.RunDue(ctx)); n != 1 || h.status("erin@example.com") != access.StatusActive {
		t.Errorf("an excluded employee was suspended (%d)", n)
	}
}

func TestRunSchedulerStops(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.RunScheduler(ctx) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunScheduler = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunScheduler did not stop")
	}
}
