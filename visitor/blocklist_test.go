package visitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// step is one event (or a manager's approval) of a sequence and what it
// must decide.
type step struct {
	name    string
	at      string // the clock, RFC 3339; "" leaves it
	body    []byte // nil: approve entry
	approve string // entry id a manager approves
	action  Action
	reason  string // a substring of the outcome's reason
	sent    int    // messages sent by this step
}

// checkPass says what the guest's link must do after the sequence.
type checkPass struct {
	to      string // the link's recipient; "" when no link may exist
	state   State
	message string
	unlock  string // OK, DENIED
}

func approvedStatus() edit {
	return attr("approval-status", map[string]any{"status": "approved"})
}

// TestVisitSequences follows event sequences through the state machine:
// Envoy's block list (deny, review then approval), invite only off and on
// as Openpath's Envoy integration has them, sign-out and the sign-in
// pass's safety maximum.
func TestVisitSequences(t *testing.T) {
	deny := func(edits ...edit) []byte {
		return event(t, "entry_sign_in_invited", append([]edit{named(envoy.EntryBlacklistDeny)}, edits...)...)
	}
	review := func(fixture string, edits ...edit) []byte {
		return event(t, fixture, append([]edit{named(envoy.EntryBlacklistReview)}, edits...)...)
	}
	tests := []struct {
		name     string
		settings func(*Settings)
		steps    []step
		pass     checkPass
	}{
		{"deny after invite ends the pass", nil, []step{
			{name: "invite", body: event(t, "invite_created"), action: ActionIssued, sent: 1},
			{name: "deny", at: "2026-11-24T08:53:00Z", body: deny(), action: ActionEnded, reason: denyReason},
			{name: "deny replayed", body: deny(metaJob("again")), action: ActionEnded, reason: denyReason},
			{name: "sign-in after the denial", body: event(t, "entry_sign_in_invited"), action: ActionRefused, reason: "already ended: " + denyReason},
			{name: "invite update after the denial", body: event(t, "invite_updated"), action: ActionRefused, reason: "already ended"},
		}, checkPass{to: "ada.lovelace@example.com", state: StateEnded, message: MessageEnded, unlock: "DENIED"}},

		{"deny before the sign-in that names the invite", nil, []step{
			{name: "invite", body: event(t, "invite_created"), action: ActionIssued, sent: 1},
			{name: "deny naming no invite", at: "2026-11-24T08:53:00Z", body: deny(invite("")), action: ActionEnded, reason: denyReason},
			{name: "sign-in", body: event(t, "entry_sign_in_invited"), action: ActionEnded, reason: denyReason},
		}, checkPass{to: "ada.lovelace@example.com", state: StateEnded, message: MessageEnded, unlock: "DENIED"}},

		{"deny of a walk-in", signInOnly, []step{
			{name: "deny", at: "2026-11-24T08:57:30Z", body: event(t, "entry_sign_in", named(envoy.EntryBlacklistDeny)), action: ActionEnded, reason: denyReason},
			{name: "sign-in", body: event(t, "entry_sign_in"), action: ActionRefused, reason: "already ended"},
		}, checkPass{}},

		{"review then approved by Envoy", signInOnly, []step{
			{name: "review", at: "2026-11-24T08:57:30Z", body: review("entry_sign_in"), action: ActionHeld, reason: "held"},
			{name: "review replayed", body: review("entry_sign_in", metaJob("again")), action: ActionHeld},
			{name: "sign-in while held", body: event(t, "entry_sign_in"), action: ActionHeld, reason: "held"},
			{name: "approved", body: event(t, "entry_sign_in", approvedStatus()), action: ActionIssued, sent: 1},
		}, checkPass{to: "grace@example.org", state: StateActive, unlock: "OK"}},

		{"review then approved by a manager", signInOnly, []step{
			{name: "review", at: "2026-11-24T08:57:30Z", body: review("entry_sign_in"), action: ActionHeld},
			{name: "manager approves", approve: "11223344", action: ActionIssued, sent: 1},
			{name: "review replayed", body: review("entry_sign_in"), action: ActionHeld}, // a duplicate: the first outcome
		}, checkPass{to: "grace@example.org", state: StateActive, unlock: "OK"}},

		{"review holds an invited pass", nil, []step{
			{name: "invite", body: event(t, "invite_created"), action: ActionIssued, sent: 1},
			{name: "review", at: "2026-11-24T08:53:00Z", body: review("entry_sign_in_invited"), action: ActionHeld},
		}, checkPass{to: "ada.lovelace@example.com", state: StateUpcoming, message: messageHeld, unlock: "DENIED"}},

		{"review of an invited pass, then approved", nil, []step{
			{name: "invite", body: event(t, "invite_created"), action: ActionIssued, sent: 1},
			{name: "review", at: "2026-11-24T08:53:00Z", body: review("entry_sign_in_invited"), action: ActionHeld},
			{name: "approved sign-in", body: event(t, "entry_sign_in_invited", approvedStatus()), action: ActionActivated},
		}, checkPass{to: "ada.lovelace@example.com", state: StateActive, unlock: "OK"}},

		{"review denied", signInOnly, []step{
			{name: "review", at: "2026-11-24T08:57:30Z", body: review("entry_sign_in"), action: ActionHeld},
			{name: "denied", body: review("entry_sign_in", attr("approval-status", map[string]any{"status": "denied"})), action: ActionEnded, reason: denyReason},
		}, checkPass{}},

		{"invite only off: the invite issues nothing, the sign-in does", signInOnly, []step{
			{name: "invite", body: event(t, "invite_created"), action: ActionRefused, reason: "invite only is off"},
			{name: "sign-in", at: "2026-11-24T08:53:00Z", body: event(t, "entry_sign_in_invited"), action: ActionIssued, reason: "valid 2026-11-24 08:52:40Z to 2026-11-24 20:52:40Z", sent: 1},
		}, checkPass{to: "ada.lovelace@example.com", state: StateActive, unlock: "OK"}},

		{"invite only off: walk-in", signInOnly, []step{
			{name: "sign-in", at: "2026-11-24T08:57:30Z", body: event(t, "entry_sign_in"), action: ActionIssued, sent: 1},
		}, checkPass{to: "grace@example.org", state: StateActive, unlock: "OK"}},

		{"invite only on: invite issues, sign-in activates", nil, []step{
			{name: "invite", body: event(t, "invite_created"), action: ActionIssued, sent: 1},
			{name: "sign-in", at: "2026-11-24T08:53:00Z", body: event(t, "entry_sign_in_invited"), action: ActionActivated},
		}, checkPass{to: "ada.lovelace@example.com", state: StateActive, unlock: "OK"}},

		{"invite only on: walk-in gets none", nil, []step{
			{name: "sign-in", at: "2026-11-24T08:57:30Z", body: event(t, "entry_sign_in"), action: ActionRefused, reason: "walk-ins get no pass"},
		}, checkPass{}},

		{"sign-out ends a sign-in pass", signInOnly, []step{
			{name: "sign-in", at: "2026-11-24T08:57:30Z", body: event(t, "entry_sign_in"), action: ActionIssued, sent: 1},
			{name: "sign-out", at: "2026-11-24T09:30:00Z", body: event(t, "entry_sign_out"), action: ActionEnded, reason: "signed out"},
		}, checkPass{to: "grace@example.org", state: StateEnded, message: MessageEnded, unlock: "DENIED"}},

		{"safety maximum without sign-out", func(s *Settings) { s.InviteOnly, s.SignInMaxDuration = false, 3*time.Hour }, []step{
			{name: "sign-in", at: "2026-11-24T08:57:30Z", body: event(t, "entry_sign_in"), action: ActionIssued, reason: "to 2026-11-24 11:57:12Z", sent: 1},
			{name: "still inside", at: "2026-11-24T11:57:11Z", body: event(t, "invite_created", id("other")), action: ActionRefused},
			{name: "past the maximum", at: "2026-11-24T11:57:12Z", body: event(t, "invite_created", id("other2")), action: ActionRefused},
		}, checkPass{to: "grace@example.org", state: StateEnded, message: MessageEnded, unlock: "DENIED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.configure(tt.settings)
			ctx := context.Background()
			for _, s := range tt.steps {
				if s.at != "" {
					h.clock.Set(ts(s.at))
				}
				before := len(h.notes.Messages())
				var out Outcome
				if s.body != nil {
					out = h.handle(s.body)
				} else {
					out = must[Outcome](t)(h.svc.Approve(ctx, "", loc, s.approve))
				}
				if out.Action != s.action || !strings.Contains(out.Reason, s.reason) {
					t.Fatalf("%s: outcome %+v, want %s with %q", s.name, out, s.action, s.reason)
				}
				if n := len(h.notes.Messages()) - before; n != s.sent {
					t.Fatalf("%s: %d messages sent, want %d", s.name, n, s.sent)
				}
			}
			if tt.pass.to == "" {
				if n := len(h.notes.Messages()); n != 0 {
					t.Fatalf("%d links sent, want none", n)
				}
				return
			}
			token := h.tokenOf(tt.pass.to)
			view := must[View](t)(h.svc.PassView(ctx, token))
			if view.State != tt.pass.state || view.Message != tt.pass.message {
				t.Errorf("view %+v, want %s %q", view, tt.pass.state, tt.pass.message)
			}
			calls := h.upstreamCalls()
			res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "101"))
			if res.Status.String() != tt.pass.unlock {
				t.Errorf("unlock %+v, want %s", res, tt.pass.unlock)
			}
			if tt.pass.unlock != "OK" && h.upstreamCalls() != calls {
				t.Error("a refused guest unlock reached the access system")
			}
		})
	}
}

func TestApproveRefusals(t *testing.T) {
	h := newHarness(t)
	h.configure(signInOnly)
	ctx := context.Background()
	h.clock.Set(ts("2026-11-24T08:57:30Z"))
	h.handle(event(t, "entry_sign_in"))
	if _, err := h.svc.Approve(ctx, "", loc, "11223344"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("approving a visit not held: %v", err)
	}
	if _, err := h.svc.Approve(ctx, "", loc, "nope"); !errors.Is(err, ErrNoVisit) {
		t.Errorf("approving an unknown entry: %v", err)
	}
	if _, err := h.svc.Approve(ctx, "", "other-location", "11223344"); !errors.Is(err, ErrNoSettings) {
		t.Errorf("approving at a location without settings: %v", err)
	}
	if _, err := h.svc.Approve(ctx, "foundry-lofts", loc, "11223344"); !errors.Is(err, ErrOtherProperty) {
		t.Errorf("approving at another property's location: %v", err)
	}
	h.handle(event(t, "entry_sign_in", named(envoy.EntryBlacklistDeny)))
	out := must[Outcome](t)(h.svc.Approve(ctx, "", loc, "11223344"))
	if out.Action != ActionRefused || !strings.Contains(out.Reason, denyReason) {
		t.Errorf("approving a denied visit: %+v", out)
	}
}

func TestSignInMaxDurationSetting(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		change  func(*Settings)
		wantErr string
		want    time.Duration
		warning string
	}{
		{"default", func(s *Settings) { s.InviteOnly = false }, "", DefaultSignInMaxDuration, "advance access and access duration apply only"},
		{"set", func(s *Settings) { s.InviteOnly, s.SignInMaxDuration = false, 4*time.Hour }, "", 4 * time.Hour, "at most signInMaxDuration 4h0m0s"},
		{"too long", func(s *Settings) { s.InviteOnly, s.SignInMaxDuration = false, 25*time.Hour }, "sign_in_max_duration", 0, ""},
		{"too short", func(s *Settings) { s.SignInMaxDuration = time.Second }, "sign_in_max_duration", 0, ""},
		{"set with invite only", func(s *Settings) { s.SignInMaxDuration = 4 * time.Hour }, "", 4 * time.Hour, "signInMaxDuration does not apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := defaultSettings()
			tt.change(&st)
			res, err := h.svc.UpdateSettings(ctx, "", loc, st)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidSettings) || !strings.Contains(res.ErrorMsg, tt.wantErr) {
					t.Fatalf("err %v, result %+v", err, res)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Settings.SignInMaxDuration != tt.want || !strings.Contains(strings.Join(res.Warnings, "\n"), tt.warning) {
				t.Errorf("result %+v", res)
			}
			got := must[Settings](t)(h.svc.Settings(ctx, "", loc))
			if got.SignInMaxDuration != tt.want {
				t.Errorf("saved %v, want %v", got.SignInMaxDuration, tt.want)
			}
		})
	}
}

// TestLinkByEmailAndSMS: a visitor with an email and a phone gets the
// same link by both; each message's state is kept with the pass, and
// status reports move it forward only.
func TestLinkByEmailAndSMS(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	out := h.handle(event(t, "invite_created"))
	if out.Action != ActionIssued || !strings.Contains(out.Reason, "link sent by email and sms") || strings.Contains(out.Reason, "@") {
		t.Fatalf("invite: %+v", out)
	}
	mail, ok1 := h.notes.Last("ada.lovelace@example.com")
	text, ok2 := h.sms.Last("+33612345678")
	if !ok1 || !ok2 || mail.Link != text.Link || !strings.Contains(text.Body, "Harbor View Residences") || len(text.Text()) > 1600 {
		t.Fatalf("email %+v, text %+v", mail, text)
	}
	v := h.visit("9876543", "")
	if p := v.Pass; p.NotifiedTo != "ada.lovelace@example.com" || p.NotifiedAlso != "+33612345678" || len(p.Deliveries) != 2 ||
		p.Deliveries[0].Channel != ChannelEmail || p.Deliveries[1].Channel != ChannelSMS || p.Deliveries[1].Status != DeliveryHandedOver {
		t.Fatalf("pass: %+v", v.Pass)
	}
	// The update changes nothing for the contacts: no second link.
	h.handle(event(t, "invite_updated"))
	if len(h.notes.Messages()) != 1 || len(h.sms.Messages()) != 1 {
		t.Errorf("links resent: %d emails, %d texts", len(h.notes.Messages()), len(h.sms.Messages()))
	}
	if err := h.svc.UpdateDelivery(ctx, "SM00000000000000000000000000000000", "delivered", 0, ""); err != nil {
		t.Errorf("an unknown message: %v", err)
	}

	// An SMS refused for good is recorded with its code and not retried.
	h.configure(signInOnly)
	h.sms.SetErr(fmt.Errorf("%w: %w", notify.ErrInvalidMessage, refusal21211{}))
	h.clock.Set(ts("2026-11-24T08:57:30Z"))
	out = h.handle(event(t, "entry_sign_in"))
	if out.Action != ActionIssued || !strings.Contains(out.Reason, "not delivered by sms") {
		t.Fatalf("walk-in: %+v", out)
	}
	p := h.visit("", "11223344").Pass
	if len(p.Deliveries) != 2 || p.Deliveries[0].Status != DeliveryHandedOver || p.Deliveries[1].Status != DeliveryFailed || p.Deliveries[1].ErrorCode != 21211 {
		t.Fatalf("deliveries: %+v", p.Deliveries)
	}
}

type refusal21211 struct{}

func (refusal21211) Error() string     { return "the phone number is not a valid number" }
func (refusal21211) DeliveryCode() int { return 21211 }

// TestLinkSentBeforeSMS: a pass whose link went by email before links
// went to both contacts keeps its link: the phone gets no new one, which
// would replace it.
func TestLinkSentBeforeSMS(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	h.handle(event(t, "invite_created", attr("phone-number", nil)))
	token := h.tokenOf("ada.lovelace@example.com")
	// Make the stored pass look as it did before: no deliveries recorded.
	key := h.key("visit", "inv:9876543")
	var v map[string]any
	if err := json.Unmarshal([]byte(must[string](t)(h.rdb.Get(ctx, key).Result())), &v); err != nil {
		t.Fatal(err)
	}
	delete(v["pass"].(map[string]any), "deliveries")
	b, _ := json.Marshal(v)
	if err := h.rdb.Set(ctx, key, b, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	h.handle(event(t, "invite_updated")) // now with the phone
	if n := len(h.sms.Messages()); n != 0 {
		t.Errorf("%d texts replaced the link sent before", n)
	}
	if view := must[View](t)(h.svc.PassView(ctx, token)); view.State == StateEnded {
		t.Error("the link sent before stopped working")
	}
}
