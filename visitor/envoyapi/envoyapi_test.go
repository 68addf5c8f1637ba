package envoyapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/visitor/envoy"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
	"github.com/cloudkey/cloudkey/visitor/envoysim/envoyshape"
)

// fixture is the Envoy simulator, a client whose traffic is checked
// against the SDK's shapes, and a webhook receiver that verifies and
// parses events with visitor/envoy, as cloudkey's webhook does.
type fixture struct {
	sim    *envoysim.Server
	client *Client
	events chan envoy.Event
	logs   *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	sim, err := envoysim.Start(envoysim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sim: sim, events: make(chan envoy.Event, 16), logs: &lockedBuffer{}}
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, envoy.MaxBodyBytes))
		if err != nil || !envoy.VerifySignature(body, r.Header.Get(envoy.SignatureHeader), []byte(envoysim.DemoClientSecret)) {
			t.Errorf("webhook does not verify")
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		ev, err := envoy.Parse(body)
		if err != nil {
			t.Errorf("envoy.Parse: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.events <- ev
	}))
	t.Cleanup(rs.Close)
	t.Cleanup(func() { _ = sim.Close() })
	sim.SetWebhookURL(rs.URL)
	cfg := Config{
		BaseURL: sim.URL, ClientID: envoysim.DemoClientID, ClientSecret: envoysim.DemoClientSecret,
		HTTPClient: &http.Client{Transport: envoyshape.Transport(t, nil)},
		Logger:     slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	if f.client, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(f.logs.String(), envoysim.DemoClientSecret) {
			t.Errorf("the log holds the client secret:\n%s", f.logs.String())
		}
	})
	return f
}

func (f *fixture) next(t *testing.T) envoy.Event {
	t.Helper()
	select {
	case ev := <-f.events:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook received")
		return envoy.Event{}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

var arrival = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func newInvite() NewInvite {
	off := false
	return NewInvite{
		LocationID: envoysim.DemoLocationID, FlowID: envoysim.DemoContractorFlow, FullName: "Ada Lovelace",
		Email: "ada@example.com", Phone: "+33612345678", ExpectedArrival: arrival, ExpectedDeparture: arrival.Add(2 * time.Hour),
		UserData: map[string]string{TagField: "tile-7f3a"}, NotifyVisitor: &off,
	}
}

func TestCreateAndDeleteInvite(t *testing.T) {
	for _, before := range []bool{false, true} {
		t.Run(map[bool]string{false: "webhook after the answer", true: "webhook before the answer"}[before], func(t *testing.T) {
			f := newFixture(t, nil)
			f.sim.SetWebhookBeforeAnswer(before)
			inv, err := f.client.CreateInvite(ctx(t), newInvite())
			if err != nil {
				t.Fatal(err)
			}
			if inv.ID == "" || inv.Tag() != "tile-7f3a" || inv.LocationID != envoysim.DemoLocationID || inv.FlowID != envoysim.DemoContractorFlow ||
				!inv.ExpectedArrival.Equal(arrival) || inv.Phone != "+33612345678" {
				t.Fatalf("CreateInvite = %+v", inv)
			}
			// The webhook, verified and parsed as cloudkey's webhook does,
			// carries the tag back: the phone is found under it.
			ev := f.next(t)
			if ev.Name != envoy.InviteCreated || ev.ID != inv.ID || Tag(ev.Payload) != "tile-7f3a" || ev.Flow != "Contractor" {
				t.Errorf("invite_created = %+v, tag %q", ev, Tag(ev.Payload))
			}
			sent, ok := f.sim.Invite(inv.ID)
			if !ok || sent.NotifyVisitor || !sent.ExpectedDeparture.Equal(arrival.Add(2*time.Hour)) || sent.Email != "ada@example.com" {
				t.Errorf("simulator holds %+v", sent)
			}
			if err := f.client.DeleteInvite(ctx(t), inv.ID); err != nil {
				t.Fatal(err)
			}
			if ev := f.next(t); ev.Name != envoy.InviteRemoved || ev.ID != inv.ID {
				t.Errorf("invite_removed = %+v", ev)
			}
			if err := f.client.DeleteInvite(ctx(t), inv.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("second delete = %v, want ErrNotFound", err)
			}
			if _, err := f.client.GetInvite(ctx(t), inv.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("get removed = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestSignInAndOutReachTheWebhook(t *testing.T) {
	f := newFixture(t, nil)
	inv, err := f.client.CreateInvite(ctx(t), newInvite())
	if err != nil {
		t.Fatal(err)
	}
	f.next(t)
	entry, err := f.sim.SignIn(inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev := f.next(t); ev.Name != envoy.EntrySignIn || ev.InviteID != inv.ID || ev.ID != entry || Tag(ev.Payload) != "tile-7f3a" {
		t.Errorf("entry_sign_in = %+v", ev)
	}
	if err := f.sim.SignOut(entry); err != nil {
		t.Fatal(err)
	}
	if ev := f.next(t); ev.Name != envoy.EntrySignOut || ev.ID != entry || ev.SignedOutAt.IsZero() {
		t.Errorf("entry_sign_out = %+v", ev)
	}
	if got, err := f.client.GetInvite(ctx(t), inv.ID); err != nil || !got.Arrived {
		t.Errorf("GetInvite = %+v, %v", got, err)
	}
}

func TestTokenCachedAndRefreshedOnce(t *testing.T) {
	f := newFixture(t, nil)
	for range 3 {
		if _, err := f.client.Locations(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.sim.Calls(envoysim.OpToken); n != 1 {
		t.Fatalf("%d token calls for three API calls, want 1", n)
	}
	if !f.client.TokenValid() {
		t.Error("TokenValid = false with a cached token")
	}
	f.sim.ExpireTokens() // Envoy revokes it: the next call gets 401
	locs, err := f.client.Locations(ctx(t))
	if err != nil || len(locs) != 1 || locs[0].Name != "Harbor View Residences" || locs[0].TimeZone != "Europe/Paris" {
		t.Fatalf("Locations after expiry = %+v, %v", locs, err)
	}
	if n := f.sim.Calls(envoysim.OpToken); n != 2 {
		t.Errorf("%d token calls, want 2 (one refresh)", n)
	}
	if n := f.sim.Calls(envoysim.OpListLocations); n != 5 {
		t.Errorf("%d location calls, want 5 (the refused one retried once)", n)
	}
}

func TestUnauthorized(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.ClientSecret = "wrong-secret" })
	_, err := f.client.CreateInvite(ctx(t), newInvite())
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("CreateInvite = %v, want ErrUnauthorized without the secret", err)
	}
	if err := f.client.Check(ctx(t)); !errors.Is(err, ErrUnauthorized) || f.client.TokenValid() {
		t.Errorf("Check = %v", err)
	}
	if n := len(f.sim.Invites()); n != 0 {
		t.Errorf("%d invites", n)
	}
	good := newFixture(t, nil)
	if err := good.client.Check(ctx(t)); err != nil || !good.client.TokenValid() {
		t.Errorf("Check = %v", err)
	}
}

func TestRefused(t *testing.T) {
	f := newFixture(t, nil)
	in := newInvite()
	in.FlowID = envoysim.DemoEmployeeFlowID
	_, err := f.client.CreateInvite(ctx(t), in)
	var api *APIError
	if !errors.As(err, &api) || api.HTTPStatus != 422 || !strings.Contains(err.Error(), "visitor flow") || !strings.Contains(err.Error(), "visitor type settings") {
		t.Fatalf("CreateInvite = %v, want a 422 naming the flow", err)
	}
	bad := []func(*NewInvite){
		func(n *NewInvite) { n.LocationID = "" },
		func(n *NewInvite) { n.FullName = " " },
		func(n *NewInvite) { n.ExpectedArrival = time.Time{} },
		func(n *NewInvite) { n.ExpectedDeparture = n.ExpectedArrival },
	}
	for i, edit := range bad {
		n := newInvite()
		edit(&n)
		if _, err := f.client.CreateInvite(ctx(t), n); err == nil {
			t.Errorf("bad invite %d accepted", i)
		}
	}
	if got := f.sim.Calls(envoysim.OpCreateInvite); got != 1 {
		t.Errorf("%d create calls, want 1 (the others are refused before sending)", got)
	}
}

func TestUnavailable(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.sim.SetFaults(envoysim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.CreateInvite(ctx(t), newInvite())
	var api *APIError
	if !errors.As(err, &api) || !api.Temporary() || !strings.Contains(err.Error(), "try again") {
		t.Fatalf("CreateInvite = %v, want a temporary APIError", err)
	}
}

func TestFlows(t *testing.T) {
	f := newFixture(t, nil)
	flows, err := f.client.Flows(ctx(t), envoysim.DemoLocationID)
	if err != nil || len(flows) != 3 {
		t.Fatalf("Flows = %+v, %v", flows, err)
	}
	if flows[0].Name != "Visitor" || flows[0].EmployeeCentric || !flows[2].EmployeeCentric || flows[1].LocationID != envoysim.DemoLocationID {
		t.Errorf("Flows = %+v", flows)
	}
	if other, err := f.client.Flows(ctx(t), "1"); err != nil || len(other) != 0 {
		t.Errorf("Flows(other) = %+v, %v", other, err)
	}
}

func TestUserData(t *testing.T) {
	tests := []struct {
		payload string
		want    map[string]string
	}{
		{`{"attributes":{"user-data":[{"field":"cloudkey-ref","value":"t1"},{"field":"Company","value":null}]}}`, map[string]string{TagField: "t1", "Company": ""}},
		{`{"attributes":{"user-data":{"cloudkey-ref":"t2"}}}`, map[string]string{TagField: "t2"}},
		{`{"attributes":{}}`, map[string]string{}},
		{`{"attributes":{"user-data":null}}`, map[string]string{}},
	}
	for _, tt := range tests {
		got, err := UserData(json.RawMessage(tt.payload))
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("UserData(%s) = %v, %v", tt.payload, got, err)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("UserData(%s)[%s] = %q, want %q", tt.payload, k, got[k], v)
			}
		}
	}
	if _, err := UserData(json.RawMessage(`{"attributes":{"user-data":"x"}}`)); err == nil {
		t.Error("a string user-data was read")
	}
	if Tag(json.RawMessage(`not json`)) != "" {
		t.Error("Tag of garbage")
	}
}

func TestConfig(t *testing.T) {
	cfg := Config{ClientID: "id", ClientSecret: "s3cret"}
	if strings.Contains(cfg.String(), "s3cret") {
		t.Errorf("String() = %q", cfg.String())
	}
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "envoy", cfg)
	if strings.Contains(b.String(), "s3cret") {
		t.Errorf("logged: %s", b.String())
	}
	for _, c := range []Config{{ClientID: "id"}, {ClientSecret: "s"}, {ClientID: "id", ClientSecret: "s", BaseURL: "ftp://x"}} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%v) accepted", c)
		}
	}
}
