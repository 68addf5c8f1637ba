package visitor

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// signInOnly turns invite only off: passes on sign-in only.
func signInOnly(s *Settings) { s.InviteOnly = false }

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func entryIDsOf(es []PassEntry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

// TestInvitedVisit follows one invited visitor through every event:
// invite, update, sign-in (which activates the same pass), sign-out.
func TestInvitedVisit(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()

	out := h.handle(event(t, "invite_created"))
	if out.Action != ActionIssued || out.InviteID != "9876543" || out.Visitor != "Ada Lovelace" || out.PassID == "" {
		t.Fatalf("invite_created: %+v", out)
	}
	passID := out.PassID
	msgs := h.notes.Messages()
	if len(msgs) != 1 || msgs[0].To != "ada.lovelace@example.com" || msgs[0].Subject != "Your guest pass for Harbor View Residences" ||
		!strings.Contains(msgs[0].Body, "Tue 24 Nov 2026, 09:45 (Europe/Paris)") || !strings.Contains(msgs[0].Body, "Reception is on the left.") {
		t.Fatalf("messages: %+v", msgs)
	}
	token := h.tokenOf("ada.lovelace@example.com")
	if len(token) < 22 { // 128 bits in base64url
		t.Fatalf("token %q is too short", token)
	}
	v := h.visit("9876543", "")
	if p := v.Pass; p == nil || !p.Start.Equal(ts("2026-11-24T08:45:00Z")) || !p.End.Equal(ts("2026-11-24T11:00:00Z")) ||
		!slices.Equal(entryIDsOf(p.Entries), []string{"101", "104"}) || p.State != StateUpcoming || p.NotifiedTo != "ada.lovelace@example.com" {
		t.Fatalf("pass after invite: %+v", v.Pass)
	}
	view := must[View](t)(h.svc.PassView(ctx, token))
	if view.State != StateUpcoming || view.Message != "Your pass starts at Tue 24 Nov 2026, 09:45 (Europe/Paris)" ||
		view.VisitorName != "Ada Lovelace" || view.LogoURL != "https://harbor.example/logo.png" || view.TimeZone != "Europe/Paris" ||
		view.Start.Location().String() != "Europe/Paris" || len(view.Entries) != 2 || view.Entries[0].Name != "Lobby" || view.Entries[1].Name != "Roof Deck" {
		t.Fatalf("view: %+v", view)
	}

	out = h.handle(event(t, "invite_updated"))
	if out.Action != ActionUpdated || out.PassID != passID {
		t.Fatalf("invite_updated: %+v", out)
	}
	if p := h.visit("9876543", "").Pass; !p.Start.Equal(ts("2026-11-24T10:15:00Z")) || !p.End.Equal(ts("2026-11-24T12:30:00Z")) {
		t.Fatalf("window after update: %v – %v", p.Start, p.End)
	}

	h.clock.Set(ts("2026-11-24T08:53:00Z"))
	out = h.handle(event(t, "entry_sign_in_invited"))
	if out.Action != ActionActivated || out.PassID != passID || out.EntryID != "11223399" || out.InviteID != "9876543" {
		t.Fatalf("sign-in: %+v", out)
	}
	// One pass for the visit: the sign-in joined it; its window now covers
	// the sign-in too, and the link was not sent again.
	v = h.visit("", "11223399")
	if v.Key != "inv:9876543" || !v.Pass.Start.Equal(ts("2026-11-24T08:52:40Z")) || !v.Pass.End.Equal(ts("2026-11-24T12:30:00Z")) || v.Pass.State != StateActive {
		t.Fatalf("visit after sign-in: %+v %+v", v, v.Pass)
	}
	if n := len(h.notes.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "104")); res.Status.String() != "OK" {
		t.Fatalf("unlock during the visit: %+v", res)
	}

	h.clock.Set(ts("2026-11-24T09:30:00Z"))
	out = h.handle(event(t, "entry_sign_out", id("11223399"), invite("9876543")))
	if out.Action != ActionEnded || out.PassID != passID {
		t.Fatalf("sign-out: %+v", out)
	}
	if view := must[View](t)(h.svc.PassView(ctx, token)); !reflect.DeepEqual(view, endedView()) {
		t.Errorf("view after sign-out: %+v", view)
	}
	calls := h.upstreamCalls()
	if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "104")); res.Status.String() != "DENIED" || res.Message != MessageEnded {
		t.Errorf("unlock after sign-out: %+v", res)
	}
	if h.upstreamCalls() != calls {
		t.Error("an unlock after sign-out reached the access system")
	}
	v = h.visit("9876543", "")
	if !v.Ended || v.EndReason != "the visitor signed out" || v.Pass.State != StateEnded || len(v.Decisions) != 4 {
		t.Errorf("visit after sign-out: %+v", v)
	}
}

func TestWalkIn(t *testing.T) {
	h := newHarness(t)
	h.configure(signInOnly)
	h.clock.Set(ts("2026-11-24T08:57:30Z"))
	out := h.handle(event(t, "entry_sign_in"))
	if out.Action != ActionIssued || out.EntryID != "11223344" || out.InviteID != "" {
		t.Fatalf("walk-in: %+v", out)
	}
	v := h.visit("", "11223344")
	if v.Key != "ent:11223344" || !v.Pass.Start.Equal(ts("2026-11-24T08:57:12Z")) || !v.Pass.End.Equal(ts("2026-11-24T20:57:12Z")) ||
		!slices.Equal(entryIDsOf(v.Pass.Entries), []string{"101", "102"}) || v.Pass.State != StateActive {
		t.Fatalf("walk-in pass: %+v", v.Pass)
	}
	token := h.tokenOf("grace@example.org")
	if res := must[Result](t)(h.svc.GuestUnlock(context.Background(), token, "102")); res.Status.String() != "OK" {
		t.Fatalf("walk-in unlock: %+v", res)
	}
	out = h.handle(event(t, "entry_sign_out"))
	if out.Action != ActionEnded {
		t.Fatalf("sign-out: %+v", out)
	}
	if res := must[Result](t)(h.svc.GuestUnlock(context.Background(), token, "102")); res.Message != MessageEnded {
		t.Errorf("after sign-out: %+v", res)
	}
}

// TestRefusals covers each reason for no pass; the reason is recorded on
// the visit and in the location's log.
func TestRefusals(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	tests := []struct {
		name     string
		settings func(*Settings) // nil: the defaults
		body     []byte
		action   Action
		reason   string
	}{
		{"blocked walk-in", nil, event(t, "entry_sign_in", id("e1"), flow("Banned")), ActionRefused, "visitor type “Banned” is blocked"},
		{"blocked invite", nil, event(t, "invite_created", id("i1"), flow("banned ")), ActionRefused, "is blocked"},
		{"blocked though mapped", func(s *Settings) { s.BlockedVisitorTypes = []string{"Contractor"} },
			event(t, "entry_sign_in", id("e2")), ActionRefused, "visitor type “Contractor” is blocked"},
		{"unmapped type", signInOnly, event(t, "entry_sign_in", id("e3"), flow("Delivery")), ActionRefused, "is not mapped to any entry"},
		{"no type", signInOnly, event(t, "entry_sign_in", id("e4"), attr("flow-name", nil)), ActionRefused, "no visitor type"},
		{"invite only without invite", func(s *Settings) { s.InviteOnly = true },
			event(t, "entry_sign_in", id("e5")), ActionRefused, "invite only"},
		{"invite only with invite", func(s *Settings) { s.InviteOnly = true },
			event(t, "entry_sign_in_invited", id("e6"), invite("i6")), ActionIssued, "valid"},
		{"invite only, invited", func(s *Settings) { s.InviteOnly = true },
			event(t, "invite_created", id("i7")), ActionIssued, "valid"},
		{"location without settings", nil, event(t, "entry_sign_in", id("e8"), func(m map[string]any) {
			m["meta"].(map[string]any)["location"].(map[string]any)["id"] = "999"
		}), ActionIgnored, "location 999 has no visitor settings"},
		{"unhandled event", nil, event(t, "invite_created", id("i9"), named("upcoming_visit")), ActionIgnored, "does not act on upcoming_visit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.configure(tt.settings)
			before := len(h.notes.Messages())
			out := h.handle(tt.body)
			if out.Action != tt.action || !strings.Contains(out.Reason, tt.reason) {
				t.Fatalf("outcome %+v, want %s with %q", out, tt.action, tt.reason)
			}
			sent := len(h.notes.Messages()) - before
			if (tt.action == ActionIssued) != (sent == 1) {
				t.Errorf("%d messages sent", sent)
			}
			if tt.action == ActionRefused {
				v := h.visit(out.InviteID, out.EntryID)
				if v.Pass != nil || len(v.Decisions) != 1 || v.Decisions[0].Reason != out.Reason {
					t.Errorf("visit %+v", v)
				}
			}
		})
	}
	log := must[[]Outcome](t)(h.svc.Decisions(context.Background(), loc, 100))
	refusals := 0
	for _, o := range log {
		if o.Action == ActionRefused {
			refusals++
		}
	}
	if refusals != 6 {
		t.Errorf("the log holds %d refusals, want 6: %+v", refusals, log)
	}
}

// TestBlockingRevokes: an existing pass whose type becomes blocked ends.
func TestBlockingRevokes(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	if out := h.handle(event(t, "invite_created")); out.Action != ActionIssued {
		t.Fatal(out)
	}
	out := h.handle(event(t, "invite_updated", flow("Banned")))
	if out.Action != ActionEnded || !strings.Contains(out.Reason, "blocked") {
		t.Fatalf("update to a blocked type: %+v", out)
	}
	// Ended is final: an update back to an allowed type changes nothing.
	out = h.handle(event(t, "invite_updated", flow("Visitor"), at("expected-arrival-time", ts("2026-11-24T11:00:00Z"))))
	if out.Action != ActionRefused || !strings.Contains(out.Reason, "already ended") {
		t.Fatalf("update after revocation: %+v", out)
	}
}

func TestRedelivery(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	body := event(t, "invite_created")
	first := h.handle(body)
	again := h.handle(body)
	if !again.Duplicate || again.PassID != first.PassID || again.Action != ActionIssued {
		t.Fatalf("redelivery: %+v", again)
	}
	// Envoy re-signs each delivery with a fresh meta (job, auth token):
	// the same payload is still the same event.
	fresh := h.handle(event(t, "invite_created", metaJob("job-99999")))
	if !fresh.Duplicate {
		t.Fatalf("redelivery with a new meta: %+v", fresh)
	}
	if n := len(h.notes.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}

	// Many concurrent deliveries of one sign-in: exactly one handles it,
	// the others are duplicates or told to come back.
	h.configure(signInOnly)
	body = event(t, "entry_sign_in")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var issued, dup, busy int
	for range 8 {
		wg.Go(func() {
			out, err := h.svc.HandleEvent(context.Background(), body)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrEventInProgress):
				busy++
			case err != nil:
				t.Error(err)
			case out.Duplicate:
				dup++
			case out.Action == ActionIssued:
				issued++
			}
		})
	}
	wg.Wait()
	if issued != 1 || issued+dup+busy != 8 {
		t.Errorf("issued %d, duplicates %d, in progress %d", issued, dup, busy)
	}
	if n := len(h.notes.Messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

// TestIdempotentWithoutDedup deletes the event marks: the state machine on
// its own still makes no second pass and sends no second link.
func TestIdempotentWithoutDedup(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	first := h.handle(event(t, "invite_created"))
	forget := func() {
		keys := must[[]string](t)(h.rdb.Keys(context.Background(), h.key("evt", "*")).Result())
		if len(keys) > 0 {
			h.rdb.Del(context.Background(), keys...)
		}
	}
	forget()
	again := h.handle(event(t, "invite_created"))
	if again.Duplicate || again.Action != ActionUnchanged || again.PassID != first.PassID {
		t.Fatalf("replay without the mark: %+v", again)
	}
	h.handle(event(t, "entry_sign_in_invited"))
	forget()
	if out := h.handle(event(t, "entry_sign_in_invited")); out.Action != ActionActivated || out.PassID != first.PassID {
		t.Fatalf("sign-in replayed: %+v", out)
	}
	if n := len(h.notes.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

// TestOutOfOrder delivers events in the wrong order; each sequence must
// end in the state the right order gives.
func TestOutOfOrder(t *testing.T) {
	tests := []struct {
		name   string
		events func(t *testing.T) [][]byte
		last   Action // the outcome of the last event
		reason string
		pass   bool      // a pass that has not ended remains
		end    time.Time // and its window ends then
	}{
		{"sign-out before sign-in (walk-in)", func(t *testing.T) [][]byte {
			return [][]byte{event(t, "entry_sign_out"), event(t, "entry_sign_in")}
		}, ActionRefused, "signed out", false, time.Time{}},
		{"sign-out before sign-in (invited)", func(t *testing.T) [][]byte {
			return [][]byte{
				event(t, "invite_created"),
				event(t, "entry_sign_out", id("11223399"), invite("9876543")),
				event(t, "entry_sign_in_invited"),
			}
		}, ActionRefused, "signed out", false, time.Time{}},
		{"sign-out naming no invite before an invited sign-in", func(t *testing.T) [][]byte {
			return [][]byte{
				event(t, "invite_created"),
				event(t, "entry_sign_out", id("11223399")),
				event(t, "entry_sign_in_invited"),
			}
		}, ActionEnded, "the visitor signed out", false, time.Time{}},
		{"update after removal", func(t *testing.T) [][]byte {
			return [][]byte{event(t, "invite_created"), event(t, "invite_removed"), event(t, "invite_updated")}
		}, ActionRefused, "the invite was removed", false, time.Time{}},
		{"removal before creation", func(t *testing.T) [][]byte {
			return [][]byte{event(t, "invite_removed"), event(t, "invite_created")}
		}, ActionRefused, "the invite was removed", false, time.Time{}},
		{"sign-in after removal", func(t *testing.T) [][]byte {
			return [][]byte{event(t, "invite_removed"), event(t, "entry_sign_in_invited")}
		}, ActionRefused, "the invite was removed", false, time.Time{}},
		{"update before creation", func(t *testing.T) [][]byte {
			return [][]byte{event(t, "invite_updated"), event(t, "invite_created")}
		}, ActionUnchanged, "valid", true, ts("2026-11-24T12:30:00Z")},
		{"sign-in before its invite", func(t *testing.T) [][]byte {
			return [][]byte{event(t, "entry_sign_in_invited"), event(t, "invite_created")}
		}, ActionUpdated, "valid", true, ts("2026-11-24T11:00:00Z")},
		{"sign-out after removal", func(t *testing.T) [][]byte {
			return [][]byte{event(t, "invite_created"), event(t, "invite_removed"), event(t, "entry_sign_out", id("11223399"), invite("9876543"))}
		}, ActionUnchanged, "already ended", false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.configure(nil)
			h.clock.Set(ts("2026-11-24T08:55:00Z"))
			var out Outcome
			for _, b := range tt.events(t) {
				out = h.handle(b)
			}
			if out.Action != tt.last || !strings.Contains(out.Reason, tt.reason) {
				t.Fatalf("last outcome %+v, want %s (%q)", out, tt.last, tt.reason)
			}
			v := h.visit(out.InviteID, out.EntryID)
			usable := v.Pass != nil && v.Pass.State != StateEnded
			if usable != tt.pass {
				t.Errorf("usable pass = %v, want %v: %+v", usable, tt.pass, v)
			}
			if tt.pass {
				// The window is what the right order gives.
				if !v.Pass.End.Equal(tt.end) {
					t.Errorf("window %v – %v, want the end at %v", v.Pass.Start, v.Pass.End, tt.end)
				}
			}
		})
	}
}

func TestMalformedEvents(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	tests := []struct {
		name  string
		body  []byte
		field string
	}{
		{"not json", []byte("{"), "body"},
		{"no arrival", event(t, "invite_created", attr("expected-arrival-time", nil)), "payload.attributes.expected-arrival-time"},
		{"bad sign-in time", event(t, "entry_sign_in", attr("signed-in-at", "soon")), "payload.attributes.signed-in-at"},
		{"no id", event(t, "entry_sign_in", func(m map[string]any) { delete(payloadOf(m), "id") }), "payload.id"},
		{"employee without email", event(t, "employee_entry_sign_in", attr("email", "")), "payload.attributes.email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.svc.HandleEvent(context.Background(), tt.body)
			var fe *envoy.FieldError
			if !errors.Is(err, envoy.ErrMalformed) || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want a FieldError for %s", err, tt.field)
			}
		})
	}
	if keys := must[[]string](t)(h.rdb.Keys(context.Background(), h.key("visit", "*")).Result()); len(keys) != 0 {
		t.Errorf("malformed events stored visits: %v", keys)
	}
	// The good version is then handled normally.
	h.configure(signInOnly)
	if out := h.handle(event(t, "entry_sign_in")); out.Action != ActionIssued {
		t.Errorf("good event: %+v", out)
	}
}
