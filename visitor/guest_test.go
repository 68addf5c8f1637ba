package visitor

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/unlock"
)

// TestWindowEdges puts the clock one second either side of each edge of an
// invited pass's window [08:45:00, 11:00:00): 09:00 expected, 15 min
// advance, 2 h access.
func TestWindowEdges(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	out := h.handle(event(t, "invite_created"))
	token := h.tokenOf("ada.lovelace@example.com")
	ctx := context.Background()
	start, end := ts("2026-11-24T08:45:00Z"), ts("2026-11-24T11:00:00Z")
	tests := []struct {
		name     string
		at       time.Time
		state    State
		status   unlock.Status
		message  string
		upstream bool // the access system is called
	}{
		{"a second before the start", start.Add(-time.Second), StateUpcoming, unlock.Denied, "Your pass starts at Tue 24 Nov 2026, 09:45 (Europe/Paris)", false},
		{"at the start", start, StateActive, unlock.OK, "Unlocked", true},
		{"a second before the end", end.Add(-time.Second), StateActive, unlock.OK, "Unlocked", true},
		{"at the end", end, StateEnded, unlock.Denied, MessageEnded, false},
		{"a day later", end.Add(24 * time.Hour), StateEnded, unlock.Denied, MessageEnded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.clock.Set(tt.at)
			view := must[View](t)(h.svc.PassView(ctx, token))
			if view.State != tt.state {
				t.Errorf("view state %s, want %s", view.State, tt.state)
			}
			if tt.state != StateEnded && view.Message != strings.TrimPrefix(tt.message, "Unlocked") {
				t.Errorf("view message %q", view.Message)
			}
			calls := h.sim.Calls(sim.OpUseUnlockToken)
			res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "101"))
			if res.Status != tt.status || res.Message != tt.message {
				t.Errorf("unlock = %+v, want %s %q", res, tt.status, tt.message)
			}
			if called := h.sim.Calls(sim.OpUseUnlockToken) > calls; called != tt.upstream {
				t.Errorf("access system called: %v, want %v", called, tt.upstream)
			}
		})
	}
	// One access-system token, with the pass's window, served both taps.
	toks := h.sim.UnlockTokens()
	if len(toks) != 1 || !toks[0].NotBefore.Equal(start) || !toks[0].Expires.Equal(end) || toks[0].Uses != 2 ||
		toks[0].UserID != sim.DemoServiceUserID || !strings.Contains(toks[0].Description, out.PassID) || len(toks[0].Entries) != 2 {
		t.Errorf("access-system tokens: %+v", toks)
	}
	if u := h.sim.Unlocks(); len(u) != 2 || !u[0].ViaToken || u[0].EntryID != sim.DemoLobbyID {
		t.Errorf("doors opened: %+v", u)
	}
	audits := h.audit.list()
	if len(audits) != len(tests) {
		t.Fatalf("%d audit records, want %d", len(audits), len(tests))
	}
	for i, a := range audits {
		if a.Email != "guest:"+out.PassID || a.EntryID != "101" || a.Status != tests[i].status || !a.At.Equal(tests[i].at) {
			t.Errorf("audit %d = %+v", i, a)
		}
	}
}

// TestAccessSystemEnforcesWindow: even when cloudkey's clock says the pass
// is valid, the access system refuses outside the window it was given.
func TestAccessSystemEnforcesWindow(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	h.handle(event(t, "invite_created"))
	token := h.tokenOf("ada.lovelace@example.com")
	ctx := context.Background()
	h.clock.Set(ts("2026-11-24T10:00:00Z")) // inside for cloudkey
	var simNow time.Time
	h.sim.SetClock(func() time.Time { return simNow })
	tests := []struct {
		name   string
		simAt  time.Time
		status unlock.Status
	}{
		{"the access system's clock agrees", ts("2026-11-24T10:00:00Z"), unlock.OK},
		{"its clock is past the window", ts("2026-11-24T11:00:00Z"), unlock.Denied},
		{"its clock is before the window", ts("2026-11-24T08:44:59Z"), unlock.Denied},
	}
	for _, tt := range tests {
		simNow = tt.simAt
		res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "104"))
		if res.Status != tt.status {
			t.Errorf("%s: %+v, want %s", tt.name, res, tt.status)
		}
		if tt.status == unlock.Denied && res.Message != "The door system refused this unlock" {
			t.Errorf("%s: message %q", tt.name, res.Message)
		}
	}
	if n := len(h.sim.Unlocks()); n != 1 {
		t.Errorf("%d doors opened, want 1", n)
	}
}

func TestGuestUnlockRefusals(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	h.clock.Set(ts("2026-11-24T09:00:00Z"))
	h.handle(event(t, "invite_created"))
	token := h.tokenOf("ada.lovelace@example.com")
	ctx := context.Background()

	calls := h.upstreamCalls()
	res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "102")) // Garage: not for visitors
	if res.Status != unlock.Denied || res.Message != MessageNotHere {
		t.Errorf("entry not on the pass: %+v", res)
	}
	// Unknown and malformed tokens look exactly like an ended pass.
	unknown, _ := newToken()
	for _, tok := range []string{unknown, "", "short", strings.Repeat("x", 43), token + "x", "../" + token[3:]} {
		view := must[View](t)(h.svc.PassView(ctx, tok))
		if !reflect.DeepEqual(view, endedView()) {
			t.Errorf("view of %q = %+v", tok, view)
		}
		if res := must[Result](t)(h.svc.GuestUnlock(ctx, tok, "101")); res.Status != unlock.Denied || res.Message != MessageEnded {
			t.Errorf("unlock with %q = %+v", tok, res)
		}
	}
	if h.upstreamCalls() != calls {
		t.Error("refused taps reached the access system")
	}
	// Several taps share one access-system token.
	for range 3 {
		if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "101")); res.Status != unlock.OK {
			t.Fatalf("tap: %+v", res)
		}
	}
	if n := h.sim.Calls(sim.OpGenerateUnlockToken); n != 1 {
		t.Errorf("%d tokens issued upstream, want 1", n)
	}
	// When the service account loses the entry, the access system refuses
	// and the next tap asks for a fresh token.
	if err := h.sim.UnassignEntry(sim.DemoServiceEmail, sim.DemoLobbyID); err != nil {
		t.Fatal(err)
	}
	if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "101")); res.Status != unlock.Denied {
		t.Errorf("after the bot lost the lobby: %+v", res)
	}
	if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "104")); res.Status != unlock.Denied {
		t.Errorf("a fresh token for entries the bot lacks: %+v", res) // issuing is refused: the token would cover the lobby
	}
	if n := h.sim.Calls(sim.OpGenerateUnlockToken); n != 2 {
		t.Errorf("%d tokens asked for upstream, want 2", n)
	}
	// An access system that is down is reported as such.
	if err := h.sim.AssignEntry(sim.DemoServiceEmail, sim.DemoLobbyID); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "101")); res.Status != unlock.Unavailable {
		t.Errorf("access system down: %+v", res)
	}
}

// TestRestartSurvival: a new Service on the same Redis (a restarted
// cloudkey, or another replica) sees the passes and the scheduled
// suspensions.
func TestRestartSurvival(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	h.handle(event(t, "invite_created"))
	token := h.tokenOf("ada.lovelace@example.com")
	if err := h.sim.SetUserStatus("erin@example.com", access.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if out := h.handle(event(t, "employee_entry_sign_in")); out.Action != ActionEmployeeActivated {
		t.Fatalf("Protect: %+v", out)
	}
	h.svc = nil // the first cloudkey is gone

	restarted := h.newService(nil)
	ctx := context.Background()
	h.clock.Set(ts("2026-11-24T09:00:00Z"))
	if view := must[View](t)(restarted.PassView(ctx, token)); view.State != StateActive || view.VisitorName != "Ada Lovelace" {
		t.Errorf("view after restart: %+v", view)
	}
	if res := must[Result](t)(restarted.GuestUnlock(ctx, token, "101")); res.Status != unlock.OK {
		t.Errorf("unlock after restart: %+v", res)
	}
	sus := must[[]Suspension](t)(restarted.Suspensions(ctx))
	if len(sus) != 1 || sus[0].Email != "erin@example.com" || !sus[0].Due.Equal(t0.Add(10*time.Hour)) {
		t.Fatalf("suspensions after restart: %+v", sus)
	}
	h.clock.Set(sus[0].Due)
	if n := must[int](t)(restarted.RunDue(ctx)); n != 1 {
		t.Fatalf("RunDue claimed %d", n)
	}
	if u, _ := h.sim.User("erin@example.com"); u.Status != access.StatusSuspended {
		t.Errorf("erin is %s after the scheduled suspension", u.Status)
	}
}

// TestLinkDeliveryFailure: a failing notifier fails the event, so Envoy
// redelivers it; the redelivery sends the link (a fresh token: the first
// was never delivered), on the same pass.
func TestLinkDeliveryFailure(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	h.notes.SetErr(errors.New("relay unreachable"))
	body := event(t, "invite_created")
	first, err := h.svc.HandleEvent(context.Background(), body)
	if err == nil || first.Action != ActionIssued {
		t.Fatalf("first delivery: %+v, %v", first, err)
	}
	if v := h.visit("9876543", ""); v.Pass.NotifiedTo != "" || !strings.Contains(v.Pass.NotifyError, "relay unreachable") {
		t.Errorf("pass after a failed send: %+v", v.Pass)
	}
	h.notes.SetErr(nil)
	again := h.handle(body)
	if again.Duplicate || again.PassID != first.PassID || !strings.Contains(again.Reason, "link sent") {
		t.Fatalf("redelivery: %+v", again)
	}
	token := h.tokenOf("ada.lovelace@example.com")
	h.clock.Set(ts("2026-11-24T09:00:00Z"))
	if view := must[View](t)(h.svc.PassView(context.Background(), token)); view.State != StateActive {
		t.Errorf("the resent link does not work: %+v", view)
	}

	// A recipient the notifier can never reach is recorded, not retried.
	h.notes.SetErr(notify.ErrUnsupportedRecipient)
	h.configure(signInOnly)
	out := h.handle(event(t, "entry_sign_in"))
	if out.Action != ActionIssued || !strings.Contains(out.Reason, "not delivered") {
		t.Errorf("permanent failure: %+v", out)
	}
	if v := h.visit("", "11223344"); v.Pass.NotifiedTo == "" || v.Pass.NotifyError == "" {
		t.Errorf("pass after a permanent failure: %+v", v.Pass)
	}
}
