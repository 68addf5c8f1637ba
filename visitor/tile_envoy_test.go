package visitor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/visitor/envoyapi"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
)

const tileWebhookSecret = "tile-test-webhook-secret"

// envoyLoop is the harness with the Envoy simulator connected at loc: the
// service registers tile visitors there through envoyapi, and the
// simulator's signed webhooks come back to the service over HTTP, as
// cloudkey's webhook receives them.
type envoyLoop struct {
	*harness
	envoy  *envoysim.Server
	client *envoyapi.Client
}

func newEnvoyLoop(t *testing.T) *envoyLoop {
	t.Helper()
	h := newHarness(t)
	seed := envoysim.DemoSeed()
	seed.WebhookSecret = tileWebhookSecret
	srv, err := envoysim.Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	client, err := envoyapi.New(envoyapi.Config{BaseURL: srv.URL, ClientID: seed.ClientID, ClientSecret: seed.ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	l := &envoyLoop{harness: h, envoy: srv, client: client}
	h.svc = l.newService()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !VerifySignature(body, r.Header.Get("X-Envoy-Signature"), []byte(tileWebhookSecret)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if _, err := h.svc.HandleEvent(r.Context(), body); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hook.Close)
	srv.SetWebhookURL(hook.URL)
	return l
}

// newService is the harness's service with the Envoy connection at loc.
func (l *envoyLoop) newService() *Service {
	l.t.Helper()
	svc, err := New(Config{
		Store: l.store, Access: OneSystem(l.access), Notifier: notify.Router{Email: l.notes, Phone: l.sms}, BaseURL: "https://ck.example.com/",
		Audit: l.audit, Now: l.clock.Now, AccessTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
		Envoy: func(property, location string) (EnvoyInvites, bool) {
			return l.client, location == loc
		},
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return svc
}

// tileVisitor is a phone-only visitor: Envoy's invite payload carries no
// phone, so the link reaches them only through the tag.
func tileVisitor() Registration {
	return Registration{
		Location: loc, FullName: "Ada Lovelace", Phone: "+12025550143", VisitorType: "visitor",
		ExpectedArrival: t0.Add(time.Hour), Host: "Pat@Acme.example", BuildingName: "Acme Tower",
	}
}

func (l *envoyLoop) tags() []string {
	l.t.Helper()
	keys, err := l.rdb.Keys(context.Background(), l.key("tag", "*")).Result()
	if err != nil {
		l.t.Fatal(err)
	}
	return keys
}

func (l *envoyLoop) webhooks(event string) int {
	n := 0
	for _, w := range l.envoy.Webhooks() {
		if w.Event == event {
			n++
		}
	}
	return n
}

// A tile registration at a connected location is an Envoy invite; the
// pass comes from invite_created, with the phone the tag kept, whether
// the webhook arrives after Envoy's answer or before it. A replayed
// invite_created issues no second pass and sends no second link; the
// host lists and cancels the visitor; cancel deletes the invite in Envoy
// and ends the pass.
func TestTileRegistersInEnvoy(t *testing.T) {
	for _, before := range []bool{false, true} {
		name := map[bool]string{false: "webhook after the answer", true: "webhook before the answer"}[before]
		t.Run(name, func(t *testing.T) {
			l := newEnvoyLoop(t)
			l.configure(nil) // invite only
			l.envoy.SetWebhookBeforeAnswer(before)
			ctx := context.Background()

			id, out, err := l.svc.Register(ctx, tileVisitor())
			if err != nil {
				t.Fatalf("Register: %v", err)
			}
			l.envoy.WaitWebhooks()
			if strings.HasPrefix(id, inviteIDPrefix) {
				t.Fatalf("the tile issued its own pass (%s) at a connected location", id)
			}
			// After the answer, the webhook may still beat the visit's
			// read-back; before it, it always does.
			if out.InviteID != id || (out.Action != ActionIssued && (before || out.Action != ActionPending)) {
				t.Errorf("Register's outcome = %+v", out)
			}
			inv, ok := l.envoy.Invite(id)
			if !ok || inv.FlowID != envoysim.DemoVisitorFlowID || inv.UserData[envoyapi.TagField] == "" || inv.NotifyVisitor {
				t.Fatalf("Envoy's invite = %+v (found %v)", inv, ok)
			}

			v := l.visit(id, "")
			if v.Pass == nil || v.Phone != "+12025550143" {
				t.Fatalf("visit = %+v", v)
			}
			msgs := l.sms.Messages()
			if len(msgs) != 1 || msgs[0].To != "+12025550143" || len(l.notes.Messages()) != 0 {
				t.Fatalf("texts = %+v, emails = %+v: want one text", msgs, l.notes.Messages())
			}
			if !strings.Contains(msgs[0].Subject+msgs[0].Body, "Acme Tower") {
				t.Errorf("the text does not name the tenant building: %+v", msgs[0])
			}

			// Envoy redelivers invite_created: nothing new.
			var created []byte
			for _, w := range l.envoy.Webhooks() {
				if w.Event == "invite_created" {
					created = w.Body
				}
			}
			again, err := l.svc.HandleEvent(ctx, created)
			if err != nil || !again.Duplicate {
				t.Errorf("replayed invite_created = %+v, %v", again, err)
			}
			if n := len(l.sms.Messages()); n != 1 || l.visit(id, "").Pass.ID != v.Pass.ID {
				t.Errorf("after the replay: %d texts, pass %s (was %s)", n, l.visit(id, "").Pass.ID, v.Pass.ID)
			}

			regs, err := l.svc.Registrations(ctx, loc, "pat@acme.example", t0)
			if err != nil || len(regs) != 1 || regs[0].InviteID != id {
				t.Fatalf("Registrations = %+v, %v", regs, err)
			}

			if _, err := l.svc.Cancel(ctx, loc, "pat@acme.example", id); err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			l.envoy.WaitWebhooks()
			if inv, _ := l.envoy.Invite(id); !inv.Removed {
				t.Error("cancel left the invite in Envoy")
			}
			if v := l.visit(id, ""); !v.Ended || v.Pass.State != StateEnded {
				t.Errorf("after cancel: %+v", v)
			}
			if n := len(l.sms.Messages()); n != 1 {
				t.Errorf("%d texts after cancel", n)
			}
		})
	}
}

// With invite only off, the tile's invite issues no pass: the contact is
// told the link comes at the front desk, and the visitor's sign-in issues
// the one pass (by text, through the tag), which Envoy's sign-out ends.
func TestTileEnvoyInviteOnlyOff(t *testing.T) {
	l := newEnvoyLoop(t)
	l.configure(func(st *Settings) { st.InviteOnly = false })
	ctx := context.Background()
	id, out, err := l.svc.Register(ctx, tileVisitor())
	if err != nil || out.Action != ActionPending || out.Reason != pendingSignIn {
		t.Fatalf("Register = %+v, %v", out, err)
	}
	l.envoy.WaitWebhooks()
	if l.webhooks("invite_created") != 1 {
		t.Fatalf("webhooks = %+v", l.envoy.Webhooks())
	}
	if v := l.visit(id, ""); v.Pass != nil || len(l.sms.Messages()) != 0 {
		t.Fatalf("a pass on the invite with invite only off: %+v", v)
	}
	l.clock.Set(t0.Add(50 * time.Minute))
	entry, err := l.envoy.SignIn(id)
	if err != nil {
		t.Fatal(err)
	}
	v := l.visit(id, "")
	if v.Pass == nil || v.EntryID != entry {
		t.Fatalf("after the sign-in: %+v", v)
	}
	if msgs := l.sms.Messages(); len(msgs) != 1 || msgs[0].To != "+12025550143" {
		t.Fatalf("texts = %+v", msgs)
	}
	if err := l.envoy.SignOut(entry); err != nil {
		t.Fatal(err)
	}
	if v := l.visit(id, ""); !v.Ended {
		t.Errorf("after the sign-out: %+v", v)
	}
}

// Envoy failing gives the tile ErrEnvoyUnavailable and leaves nothing:
// no tag, no registration, no pass, no message. A creation that timed out
// is not repeated (Envoy may have made it).
func TestTileEnvoyDown(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(l *envoyLoop)
		wantPosts int64
	}{
		{"Envoy hangs", func(l *envoyLoop) {
			if err := l.envoy.SetFaults(envoysim.Faults{OpLatency: map[envoysim.Op]time.Duration{envoysim.OpCreateInvite: time.Hour}}); err != nil {
				t.Fatal(err)
			}
		}, 1},
		{"Envoy busy", func(l *envoyLoop) {
			if err := l.envoy.SetFaults(envoysim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"Envoy unreachable", func(l *envoyLoop) { l.envoy.Close() }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newEnvoyLoop(t)
			l.configure(nil)
			tc.fail(l)
			ctx := context.Background()
			_, _, err := l.svc.Register(ctx, tileVisitor())
			if !errors.Is(err, ErrEnvoyUnavailable) {
				t.Fatalf("Register: %v, want ErrEnvoyUnavailable", err)
			}
			l.envoy.WaitWebhooks()
			if tags := l.tags(); len(tags) != 0 {
				t.Errorf("tags left: %v", tags)
			}
			if regs, err := l.svc.Registrations(ctx, loc, "pat@acme.example", t0); err != nil || len(regs) != 0 {
				t.Errorf("Registrations = %+v, %v", regs, err)
			}
			if n := l.envoy.Calls(envoysim.OpCreateInvite); n != tc.wantPosts {
				t.Errorf("%d invite creations tried, want %d", n, tc.wantPosts)
			}
			if len(l.envoy.Invites()) != 0 || len(l.sms.Messages()) != 0 {
				t.Errorf("invites %+v, texts %+v", l.envoy.Invites(), l.sms.Messages())
			}
		})
	}
}

// Envoy busy for a moment: the look-up is tried again and the visitor is
// registered once.
func TestTileEnvoyRetried(t *testing.T) {
	l := newEnvoyLoop(t)
	l.configure(nil)
	if err := l.envoy.SetFaults(envoysim.Faults{ErrorRate: 1, ErrorStatus: 503, MaxFaults: 2}); err != nil {
		t.Fatal(err)
	}
	id, _, err := l.svc.Register(context.Background(), tileVisitor())
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	l.envoy.WaitWebhooks()
	if len(l.envoy.Invites()) != 1 || l.visit(id, "").Pass == nil || len(l.sms.Messages()) != 1 {
		t.Errorf("invites %+v, texts %+v", l.envoy.Invites(), l.sms.Messages())
	}
}

// A cancel Envoy does not take changes nothing: the pass still works and
// the tile may try again.
func TestTileEnvoyCancelFails(t *testing.T) {
	l := newEnvoyLoop(t)
	l.configure(nil)
	ctx := context.Background()
	id, _, err := l.svc.Register(ctx, tileVisitor())
	if err != nil {
		t.Fatal(err)
	}
	l.envoy.WaitWebhooks()
	if err := l.envoy.SetFaults(envoysim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.Cancel(ctx, loc, "pat@acme.example", id); !errors.Is(err, ErrEnvoyUnavailable) {
		t.Fatalf("Cancel: %v, want ErrEnvoyUnavailable", err)
	}
	if v := l.visit(id, ""); v.Ended || v.Pass == nil {
		t.Errorf("a failed cancel changed the visit: %+v", v)
	}
	if err := l.envoy.SetFaults(envoysim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.Cancel(ctx, loc, "pat@acme.example", id); err != nil {
		t.Fatalf("Cancel again: %v", err)
	}
	if v := l.visit(id, ""); !v.Ended {
		t.Errorf("after cancel: %+v", v)
	}
}

// Without an Envoy connection at the location the tile issues the pass
// itself, whatever invite only says, and Envoy hears nothing.
func TestTileWithoutEnvoy(t *testing.T) {
	for _, inviteOnly := range []bool{true, false} {
		l := newEnvoyLoop(t)
		l.configure(func(st *Settings) { st.InviteOnly = inviteOnly })
		r := tileVisitor()
		r.Location = "999"
		if res, err := l.svc.UpdateSettings(context.Background(), "", "999", withInviteOnly(inviteOnly)); err != nil {
			t.Fatalf("UpdateSettings: %v (%+v)", err, res)
		}
		id, out, err := l.svc.Register(context.Background(), r)
		if err != nil || out.Action != ActionIssued || !strings.HasPrefix(id, inviteIDPrefix) {
			t.Fatalf("invite only %v: Register = %q, %+v, %v", inviteOnly, id, out, err)
		}
		if len(l.envoy.Invites()) != 0 || len(l.sms.Messages()) != 1 {
			t.Errorf("invite only %v: invites %+v, texts %+v", inviteOnly, l.envoy.Invites(), l.sms.Messages())
		}
	}
}

func withInviteOnly(on bool) Settings {
	st := defaultSettings()
	st.InviteOnly = on
	return st
}

// The settings answer's connection state: a token after a call, an auth
// error when Envoy refuses the credentials; no state where the location
// is not connected.
func TestEnvoyState(t *testing.T) {
	l := newEnvoyLoop(t)
	l.configure(nil)
	if _, ok := l.svc.EnvoyState("", "999"); ok {
		t.Error("a state at a location without Envoy")
	}
	if _, _, err := l.svc.Register(context.Background(), tileVisitor()); err != nil {
		t.Fatal(err)
	}
	st, ok := l.svc.EnvoyState("", loc)
	if !ok || !st.TokenValid || st.AuthError || st.LastError != "" {
		t.Errorf("after a registration: %+v, %v", st, ok)
	}
	bad, err := envoyapi.New(envoyapi.Config{BaseURL: l.envoy.URL, ClientID: envoysim.DemoClientID, ClientSecret: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	l.client = bad
	if _, _, err := l.svc.Register(context.Background(), tileVisitor()); !errors.Is(err, ErrEnvoyUnavailable) {
		t.Fatalf("with a wrong secret: %v", err)
	}
	st, _ = l.svc.EnvoyState("", loc)
	if st.TokenValid || !st.AuthError || !strings.Contains(st.LastError, "OAuth client id and secret") || strings.Contains(st.LastError, "wrong") {
		t.Errorf("with a wrong secret: %+v", st)
	}
}
