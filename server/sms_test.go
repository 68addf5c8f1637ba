package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/notify/twilio"
	"github.com/cloudkey/cloudkey/internal/notify/twiliosim"
	"github.com/cloudkey/cloudkey/visitor"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// phoneInvite is the fixture's invite under another id, for a visitor
// with a phone only.
func phoneInvite(t *testing.T, inviteID, phone string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(fixture(t, "invite_created.json", time.Now()), &m); err != nil {
		t.Fatal(err)
	}
	p := m["payload"].(map[string]any)
	p["id"] = inviteID
	attrs := p["attributes"].(map[string]any)
	delete(attrs, "email")
	attrs["phone-number"] = phone
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSMSGuestLinks: with a Twilio account configured (the simulator over
// HTTP), a phone-only visitor's link goes by SMS naming the building, and
// the delivery state Twilio's signed status callbacks report is kept with
// the pass: delivered; or failed with Twilio's code and reason, for a
// number Twilio refuses (not retried) or a text the carrier drops. No
// phone number or link reaches the logs.
func TestSMSGuestLinks(t *testing.T) {
	seed := twiliosim.DemoSeed()
	seed.StepDelay = 0 // statuses move when the test settles them
	tw, err := twiliosim.Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tw.Close() })
	logs := &syncBuffer{}
	st := newStack(t, stackOpts{
		logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		twilio: twilio.Config{BaseURL: tw.URL, AccountSID: twiliosim.DemoAccountSID, AuthToken: twiliosim.DemoAuthToken, From: twiliosim.DemoFrom},
	})
	admin := []string{"x-auth-scheme", "api-token", "x-auth-apikey", st.adminKey(t, "1")}
	if code, body := st.do(t, "PUT", "/v1/admin/locations/"+location+"/visitor-settings", []byte(goodSettings), admin...); code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}
	tests := []struct {
		name, invite, phone string
		texted              bool // Twilio took the message
		status              string
		code                int
	}{
		{"delivered", "sms-1", "+14155550100", true, "delivered", 0},
		{"invalid number", "sms-2", twiliosim.DemoInvalidNumber, false, visitor.DeliveryFailed, twilio.CodeInvalidTo},
		{"not a mobile", "sms-3", twiliosim.DemoLandlineNumber, false, visitor.DeliveryFailed, twilio.CodeNotMobile},
		{"carrier filtered", "sms-4", twiliosim.DemoFilteredNumber, true, "undelivered", twilio.CodeCarrierViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := phoneInvite(t, tt.invite, tt.phone)
			code, answer := st.do(t, "POST", "/webhooks/envoy", body, envoy.SignatureHeader, envoy.Sign(body, []byte(testEnvoySecret)))
			if code != 200 || !strings.Contains(answer, `"ISSUED"`) {
				t.Fatalf("invite: %d %s", code, answer)
			}
			texts := tw.MessagesTo(tt.phone)
			if !tt.texted {
				if len(texts) != 0 {
					t.Fatalf("a refused number got %d texts", len(texts))
				}
			} else {
				if len(texts) != 1 || !strings.Contains(texts[0].Body, "Harbor View Residences") || !strings.Contains(texts[0].Body, st.http+"/g/") {
					t.Fatalf("texts: %+v", texts)
				}
				tw.Settle() // the status callbacks are posted to cloudkey, signed
			}
			v, err := st.app.Visitors.Visit(context.Background(), tt.invite, "")
			if err != nil {
				t.Fatal(err)
			}
			ds := v.Pass.Deliveries
			if len(ds) != 1 || ds[0].Channel != visitor.ChannelSMS || ds[0].Status != tt.status || ds[0].ErrorCode != tt.code {
				t.Fatalf("deliveries: %+v", ds)
			}
			if tt.code != 0 && ds[0].Reason == "" {
				t.Errorf("a failure without its reason: %+v", ds[0])
			}
			if tt.texted && ds[0].MessageID != texts[0].SID {
				t.Errorf("message id %q, want %q", ds[0].MessageID, texts[0].SID)
			}
		})
	}
	// A callback not signed with the account's token changes nothing.
	sid := tw.MessagesTo("+14155550100")[0].SID
	form := url.Values{"MessageSid": {sid}, "AccountSid": {twiliosim.DemoAccountSID}, "MessageStatus": {"failed"}, "ErrorCode": {"30006"}}
	code, _ := st.do(t, "POST", "/webhooks/twilio/status", []byte(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", twilio.SignatureHeader, twilio.Signature("wrong-token", st.http+"/webhooks/twilio/status", form))
	if code != 403 {
		t.Errorf("forged callback: HTTP %d, want 403", code)
	}
	if v, _ := st.app.Visitors.Visit(context.Background(), "sms-1", ""); v.Pass.Deliveries[0].Status != "delivered" {
		t.Errorf("a forged callback changed the state: %+v", v.Pass.Deliveries)
	}
	for _, secret := range []string{"+14155550100", twiliosim.DemoInvalidNumber, "/g/"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the logs show %q", secret)
		}
	}
}
