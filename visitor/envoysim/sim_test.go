package envoysim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/visitor/envoy"
	"github.com/cloudkey/cloudkey/visitor/envoysim/envoyshape"
)

// received is one webhook as the receiver got it.
type received struct {
	body  []byte
	event envoy.Event
}

// fixture is a simulator, a client checked against the SDK's shapes, and
// a webhook receiver that verifies each event as visitor/envoy does and
// checks its shape.
type fixture struct {
	srv    *Server
	client *http.Client
	events chan received
	t      *testing.T
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := Start(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, client: &http.Client{Transport: envoyshape.Transport(t, nil)}, events: make(chan received, 16), t: t}
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !envoy.VerifySignature(body, r.Header.Get(envoy.SignatureHeader), []byte(DemoClientSecret)) {
			t.Errorf("webhook signature does not verify")
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if err := envoyshape.CheckWebhook(body); err != nil {
			t.Errorf("webhook shape: %v\n%s", err, body)
		}
		ev, err := envoy.Parse(body)
		if err != nil {
			t.Errorf("envoy.Parse: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.events <- received{body, ev}
		w.WriteHeader(http.StatusOK)
	}))
	// Close the simulator (and its webhooks in flight) before the receiver.
	t.Cleanup(rs.Close)
	t.Cleanup(func() { _ = srv.Close() })
	srv.SetWebhookURL(rs.URL + "/envoy/webhook")
	return f
}

// next returns the next webhook received.
func (f *fixture) next() received {
	f.t.Helper()
	select {
	case r := <-f.events:
		return r
	case <-time.After(10 * time.Second):
		f.t.Fatal("no webhook received")
		return received{}
	}
}

func (f *fixture) token() string {
	f.t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/a/auth/v0/token", strings.NewReader(
		`{"grant_type":"client_credentials","client_id":"`+DemoClientID+`","client_secret":"`+DemoClientSecret+`","scope":"plugin,token.refresh"}`))
	req.SetBasicAuth(DemoClientID, DemoClientSecret)
	req.Header.Set("Content-Type", "application/json")
	status, body := f.do(req)
	if status != http.StatusOK {
		f.t.Fatalf("token = %d %s", status, body)
	}
	var a envoyshape.MetaAuth
	_ = json.Unmarshal(body, &a)
	return a.AccessToken
}

func (f *fixture) do(req *http.Request) (int, []byte) {
	f.t.Helper()
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (f *fixture) api(method, path, tok, body string) (int, []byte) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	return f.do(req)
}

const inviteBody = `{"data":{"type":"invites","attributes":{"full-name":"Ada Lovelace","email":"ada@example.com",` +
	`"phone":"+33612345678","expected-arrival-time":"2026-11-24T09:00:00Z","user-data":{"cloudkey-ref":"t-123","Purpose":null}},` +
	`"relationships":{"location":{"data":{"type":"locations","id":"` + DemoLocationID + `"}}}}}`

func inviteID(t *testing.T, body []byte) string {
	t.Helper()
	var doc struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Data.ID == "" {
		t.Fatalf("no invite id in %s", body)
	}
	return doc.Data.ID
}

func userData(t *testing.T, payload json.RawMessage) map[string]*string {
	t.Helper()
	var p struct {
		Attributes struct {
			UserData []envoyshape.UserDataItem `json:"user-data"`
		} `json:"attributes"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	out := map[string]*string{}
	for _, it := range p.Attributes.UserData {
		out[it.Field] = it.Value
	}
	return out
}

func TestInviteLifecycle(t *testing.T) {
	f := newFixture(t)
	tok := f.token()
	status, body := f.api("POST", "/api/v3/invites", tok, inviteBody)
	if status != http.StatusCreated {
		t.Fatalf("create = %d %s", status, body)
	}
	id := inviteID(t, body)
	created := f.next()
	ev := created.event
	if ev.Name != envoy.InviteCreated || ev.ID != id || ev.Location.ID != DemoLocationID || ev.Location.Name != "Harbor View Residences" ||
		ev.FullName != "Ada Lovelace" || ev.Email != "ada@example.com" || ev.Flow != "Visitor" ||
		!ev.ExpectedArrival.Equal(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("invite_created = %+v", ev)
	}
	if ev.Phone != "" {
		t.Errorf("the invite payload carries the phone %q; the SDK's InvitePayload has none", ev.Phone)
	}
	ud := userData(t, ev.Payload)
	if ud["cloudkey-ref"] == nil || *ud["cloudkey-ref"] != "t-123" || ud["Purpose"] != nil {
		t.Errorf("user-data = %v", ud)
	}

	if status, body := f.api("GET", "/api/v3/invites/"+id, tok, ""); status != http.StatusOK || !bytes.Contains(body, []byte(`"phone":"+33612345678"`)) {
		t.Errorf("get = %d %s", status, body)
	}

	entry, err := f.srv.SignIn(id)
	if err != nil {
		t.Fatal(err)
	}
	in := f.next().event
	if in.Name != envoy.EntrySignIn || in.ID != entry || in.InviteID != id || in.SignedInAt.IsZero() || in.Phone != "+33612345678" {
		t.Errorf("entry_sign_in = %+v", in)
	}
	if err := f.srv.SignOut(entry); err != nil {
		t.Fatal(err)
	}
	out := f.next().event
	if out.Name != envoy.EntrySignOut || out.ID != entry || !out.SignedOutAt.After(out.SignedInAt) {
		t.Errorf("entry_sign_out = %+v", out)
	}

	if status, body := f.api("DELETE", "/api/v3/invites/"+id, tok, ""); status != http.StatusNoContent {
		t.Fatalf("delete = %d %s", status, body)
	}
	removed := f.next().event
	if removed.Name != envoy.InviteRemoved || removed.ID != id {
		t.Errorf("invite_removed = %+v", removed)
	}
	if status, _ := f.api("DELETE", "/api/v3/invites/"+id, tok, ""); status != http.StatusNotFound {
		t.Errorf("second delete = %d", status)
	}
	if status, _ := f.api("GET", "/api/v3/invites/"+id, tok, ""); status != http.StatusNotFound {
		t.Errorf("get removed = %d", status)
	}
	f.srv.WaitWebhooks()
	whs := f.srv.Webhooks()
	if len(whs) != 4 {
		t.Fatalf("%d webhooks, want 4", len(whs))
	}
	for _, wh := range whs {
		if wh.HTTPStatus != http.StatusOK || wh.Err != nil {
			t.Errorf("webhook %s answered %d, %v", wh.Event, wh.HTTPStatus, wh.Err)
		}
	}
	if inv, ok := f.srv.Invite(id); !ok || !inv.Removed || inv.EntryID != entry {
		t.Errorf("Invite = %+v", inv)
	}
}

func TestWebhookBeforeAnswer(t *testing.T) {
	f := newFixture(t)
	f.srv.SetWebhookBeforeAnswer(true)
	status, body := f.api("POST", "/api/v3/invites", f.token(), inviteBody)
	if status != http.StatusCreated {
		t.Fatalf("create = %d %s", status, body)
	}
	// The webhook was answered before the POST was: it is already here.
	select {
	case r := <-f.events:
		if r.event.ID != inviteID(t, body) {
			t.Errorf("webhook for %s", r.event.ID)
		}
	default:
		t.Fatal("invite_created did not arrive before the answer")
	}
}

func TestWalkIn(t *testing.T) {
	f := newFixture(t)
	id, err := f.srv.WalkIn(DemoLocationID, Visitor{FullName: "Grace Hopper", Phone: "+33698765432", FlowID: DemoContractorFlow, Host: "Erin", HostEmail: "erin@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ev := f.next().event
	if ev.Name != envoy.EntrySignIn || ev.ID != id || ev.InviteID != "" || ev.Flow != "Contractor" || ev.Phone != "+33698765432" {
		t.Errorf("walk-in = %+v", ev)
	}
	if _, err := f.srv.WalkIn("nope", Visitor{FullName: "x"}); err == nil {
		t.Error("walk-in at an unknown location")
	}
}

func TestInviteRefusals(t *testing.T) {
	f := newFixture(t)
	tok := f.token()
	edit := func(from, to string) string { return strings.Replace(inviteBody, from, to, 1) }
	tests := []struct {
		name, body string
		status     int
	}{
		{"no full name", edit(`"full-name":"Ada Lovelace",`, ""), 422},
		{"bad arrival", edit(`2026-11-24T09:00:00Z`, `tomorrow`), 422},
		{"unknown location", edit(`"id":"`+DemoLocationID+`"`, `"id":"1"`), 422},
		{"employee flow", edit(`"id":"`+DemoLocationID+`"}}`, `"id":"`+DemoLocationID+`"}},"flow":{"data":{"type":"flows","id":"`+DemoEmployeeFlowID+`"}}`), 422},
		{"wrong type", edit(`"type":"invites"`, `"type":"entries"`), 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := f.rawAPI("POST", "/api/v3/invites", tok, tt.body); status != tt.status {
				t.Errorf("= %d %s, want %d", status, body, tt.status)
			}
		})
	}
	if status, _ := f.rawAPI("POST", "/api/v3/invites", "nope", inviteBody); status != http.StatusUnauthorized {
		t.Errorf("bad token = %d", status)
	}
	f.srv.ExpireTokens()
	if status, _ := f.rawAPI("GET", "/api/v3/locations", tok, ""); status != http.StatusUnauthorized {
		t.Errorf("expired token = %d", status)
	}
	if n := len(f.srv.Invites()); n != 0 {
		t.Errorf("%d invites created by refused requests", n)
	}
}

// rawAPI sends a request the shape check would reject on purpose and
// checks the answer only.
func (f *fixture) rawAPI(method, path, tok, body string) (int, []byte) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := envoyshape.CheckResponse(method, path, resp.StatusCode, b); err != nil {
		f.t.Errorf("answer shape: %v", err)
	}
	return resp.StatusCode, b
}

func TestToken(t *testing.T) {
	f := newFixture(t)
	form := func(id, secret, grant string) *http.Request {
		v := url.Values{"grant_type": {grant}, "client_id": {id}, "client_secret": {secret}}
		req, _ := http.NewRequest("POST", f.srv.URL+"/a/auth/v0/token", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	tests := []struct {
		name   string
		req    *http.Request
		status int
	}{
		{"form credentials", form(DemoClientID, DemoClientSecret, "client_credentials"), 200},
		{"wrong secret", form(DemoClientID, "nope", "client_credentials"), 401},
		{"unknown client", form("other", DemoClientSecret, "client_credentials"), 401},
		{"password grant", form(DemoClientID, DemoClientSecret, "password"), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := f.do(tt.req); status != tt.status {
				t.Errorf("= %d %s, want %d", status, body, tt.status)
			}
		})
	}
}

func TestLocationsAndFlows(t *testing.T) {
	f := newFixture(t)
	tok := f.token()
	status, body := f.api("GET", "/api/v3/locations", tok, "")
	if status != 200 || !bytes.Contains(body, []byte(`"Harbor View Residences"`)) {
		t.Errorf("locations = %d %s", status, body)
	}
	status, body = f.api("GET", "/api/v3/flows?filter[location]="+DemoLocationID, tok, "")
	var doc struct {
		Data []json.RawMessage `json:"data"`
	}
	if status != 200 || json.Unmarshal(body, &doc) != nil || len(doc.Data) != 3 {
		t.Errorf("flows = %d %s", status, body)
	}
	_, body = f.api("GET", "/api/v3/flows?filter[location]=1", tok, "")
	if json.Unmarshal(body, &doc) != nil || len(doc.Data) != 0 {
		t.Errorf("flows of another location = %s", body)
	}
}

func TestSeedValidate(t *testing.T) {
	bad := []func(*Seed){
		func(s *Seed) { s.ClientSecret = "" },
		func(s *Seed) { s.Locations = nil },
		func(s *Seed) { s.Locations[0].Flows = nil },
		func(s *Seed) { s.Locations[0].TimeZone = "Mars/Olympus" },
		func(s *Seed) { s.Locations = append(s.Locations, s.Locations[0]) },
		func(s *Seed) { s.Company.Name = "" },
	}
	for i, edit := range bad {
		s := DemoSeed()
		edit(&s)
		if _, err := New(s); err == nil {
			t.Errorf("bad seed %d accepted", i)
		}
	}
}

// TestShapesCatch shows the SDK-shape checks are not rubber stamps.
func TestShapesCatch(t *testing.T) {
	f := newFixture(t)
	_, good := f.api("POST", "/api/v3/invites", f.token(), inviteBody)
	wh := f.next().body
	tests := []struct {
		name  string
		check func([]byte) error
		body  []byte
		ok    bool
	}{
		{"invite", envoyshape.CheckInvite, good, true},
		{"invite with an unknown attribute", envoyshape.CheckInvite, bytes.Replace(good, []byte(`"full-name"`), []byte(`"name":"x","full-name"`), 1), false},
		{"invite without id", envoyshape.CheckInvite, bytes.Replace(good, []byte(`"id":"`), []byte(`"idx":"`), 1), false},
		{"creation", envoyshape.CheckInviteCreation, []byte(inviteBody), true},
		{"creation with an id", envoyshape.CheckInviteCreation, []byte(strings.Replace(inviteBody, `"type":"invites"`, `"type":"invites","id":"1"`, 1)), false},
		{"creation with user-data as a list", envoyshape.CheckInviteCreation, []byte(strings.Replace(inviteBody, `{"cloudkey-ref":"t-123","Purpose":null}`, `[{"field":"a","value":"b"}]`, 1)), false},
		{"webhook", envoyshape.CheckWebhook, wh, true},
		{"webhook without secret-token", envoyshape.CheckWebhook, dropKey(t, wh, "secret-token"), false},
		{"webhook with the phone", envoyshape.CheckWebhook, bytes.Replace(wh, []byte(`"full-name"`), []byte(`"phone-number":"+1","full-name"`), 1), false},
		{"webhook without meta.auth", envoyshape.CheckWebhook, bytes.Replace(wh, []byte(`"auth":null`), []byte(`"authx":null`), 1), false},
		{"token", envoyshape.CheckTokenResponse, []byte(`{"token_type":"Bearer","access_token":"a","expires_in":3600,"refresh_token":null,"refresh_token_expires_in":null}`), true},
		{"token without refresh_token", envoyshape.CheckTokenResponse, []byte(`{"token_type":"Bearer","access_token":"a","expires_in":3600,"refresh_token_expires_in":null}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(tt.body); (err == nil) != tt.ok {
				t.Errorf("= %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// dropKey removes key from the payload's attributes.
func dropKey(t *testing.T, body []byte, key string) []byte {
	t.Helper()
	var m map[string]map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	delete(m["payload"]["attributes"].(map[string]any), key)
	out, _ := json.Marshal(m)
	return out
}
