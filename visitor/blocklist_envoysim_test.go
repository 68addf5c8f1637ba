package visitor

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/visitor/envoyapi"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
)

// TestBlocklistThroughEnvoySim drives Envoy's block list end to end: the
// Envoy simulator creates an invite (REST API) and delivers its signed
// webhooks to a receiver that verifies them and hands them to the
// service, as the server's webhook does. A flagged sign-in holds the
// invited visitor's pass, the denial ends it (the guest page says so, the
// unlock is refused without asking the access system); a flagged walk-in
// gets no pass until a manager approves it.
func TestBlocklistThroughEnvoySim(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !VerifySignature(body, r.Header.Get("X-Envoy-Signature"), []byte(envoysim.DemoClientSecret)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if _, err := h.svc.HandleEvent(r.Context(), body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(hook.Close)
	envoy, err := envoysim.Start(envoysim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = envoy.Close() })
	envoy.SetWebhookURL(hook.URL)
	api, err := envoyapi.New(envoyapi.Config{BaseURL: envoy.URL, ClientID: envoysim.DemoClientID, ClientSecret: envoysim.DemoClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := api.CreateInvite(ctx, envoyapi.NewInvite{
		LocationID: envoysim.DemoLocationID, FlowID: envoysim.DemoVisitorFlowID, FullName: "Mallory Example",
		Email: "mallory@example.com", ExpectedArrival: t0.Add(3 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	envoy.WaitWebhooks()
	if v := h.visit(inv.ID, ""); v.Pass == nil || v.Pass.State != StateUpcoming {
		t.Fatalf("after invite_created: %+v", v)
	}
	token := h.tokenOf("mallory@example.com")
	h.clock.Set(t0.Add(3 * time.Hour))

	entry, err := envoy.SignInFlagged(inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	walkIn, err := envoy.WalkInFlagged(envoysim.DemoLocationID, envoysim.Visitor{FullName: "Eve Example", Email: "eve@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		act     func() error
		visit   func() VisitInfo
		action  Action // the visit's last decision
		state   State  // of the invitee's guest page
		message string
		unlock  unlock.Status
	}{
		{"flagged sign-in holds the pass", func() error { return nil }, func() VisitInfo { return h.visit("", entry) },
			ActionHeld, StateUpcoming, messageHeld, unlock.Denied},
		{"denial ends it", func() error { return envoy.Deny(entry) }, func() VisitInfo { return h.visit("", entry) },
			ActionEnded, StateEnded, MessageEnded, unlock.Denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.act(); err != nil {
				t.Fatal(err)
			}
			v := tt.visit()
			if v.Key != "inv:"+inv.ID || v.Decisions[len(v.Decisions)-1].Action != tt.action {
				t.Fatalf("visit %+v", v)
			}
			view := must[View](t)(h.svc.PassView(ctx, token))
			if view.State != tt.state || view.Message != tt.message {
				t.Errorf("guest page %+v", view)
			}
			calls := h.upstreamCalls()
			if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "101")); res.Status != tt.unlock {
				t.Errorf("unlock %+v", res)
			}
			if h.upstreamCalls() != calls {
				t.Error("a refused unlock reached the access system")
			}
		})
	}
	if view := must[View](t)(h.svc.PassView(ctx, token)); !reflect.DeepEqual(view, endedView()) {
		t.Errorf("ended view %+v", view)
	}

	// The flagged walk-in (invite only: walk-ins get no pass anyway) is
	// held; a manager's approval then decides as the settings say.
	if v := h.visit("", walkIn); v.Pass != nil || v.Decisions[len(v.Decisions)-1].Action != ActionHeld {
		t.Fatalf("flagged walk-in: %+v", v)
	}
	out := must[Outcome](t)(h.svc.Approve(ctx, "", loc, walkIn))
	if out.Action != ActionRefused || out.PassID != "" {
		t.Errorf("approved walk-in under invite only: %+v", out)
	}
}
