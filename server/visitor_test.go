package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

const testEnvoySecret = "test-envoy-secret-0123456789"

const location = "152347" // the Envoy location of visitor/testdata

// fixture reads an Envoy event from visitor/testdata with its times moved
// to now, so the pass it makes is active.
func fixture(t testing.TB, name string, now time.Time) []byte {
	t.Helper()
	b, err := os.ReadFile("../visitor/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.ReplaceAll(b, []byte("2026-11-24T09:00:00.000Z"), []byte(now.UTC().Format(time.RFC3339)))
}

func (s *stack) adminKey(t testing.TB, org string) string {
	t.Helper()
	key, _, err := adminkey.NewStore(s.redis.Client(), cache.DefaultPrefix).Create(context.Background(), org, "test")
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// send sends an HTTP request with headers (name, value, ...) and returns
// the response, its body read.
func (s *stack) send(t testing.TB, method, path string, body []byte, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.http+path, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// do sends an HTTP request with headers and returns status and body.
func (s *stack) do(t testing.TB, method, path string, body []byte, headers ...string) (int, string) {
	t.Helper()
	resp, b := s.send(t, method, path, body, headers...)
	// protojson varies its spacing on purpose; compact it so tests can
	// look for fragments.
	var c bytes.Buffer
	if json.Compact(&c, b) == nil {
		b = c.Bytes()
	}
	return resp.StatusCode, string(b)
}

const goodSettings = `{"inviteOnly":true,"advanceAccess":"900s","accessDuration":"7200s",
 "entries":[{"entryId":"101","visitorTypes":["Visitor","Contractor"]}],
 "blockedVisitorTypes":["Interview"],"logoUrl":"https://example.com/logo.png",
 "additionalInstructions":"Take the lift to floor 4.","timeZone":"Europe/Paris",
 "protect":{"enabled":false}}`

func TestAdminVisitorSettings(t *testing.T) {
	st := newStack(t, stackOpts{notifier: &notify.Memory{}})
	key := st.adminKey(t, "1")
	otherOrg := st.adminKey(t, "2")
	path := "/v1/admin/locations/" + location + "/visitor-settings"
	auth := func(k string) []string { return []string{"x-auth-scheme", "api-token", "x-auth-apikey", k} }
	tests := []struct {
		name     string
		method   string
		body     string
		headers  []string
		wantCode int
		wantIn   string
	}{
		{"no key", "PUT", goodSettings, nil, 401, "x-auth-apikey"},
		{"wrong scheme", "PUT", goodSettings, []string{"x-auth-scheme", "basic", "x-auth-apikey", key}, 401, "x-auth-scheme"},
		{"unknown key", "PUT", goodSettings, auth("ckadm_nope"), 401, "unknown"},
		{"other organisation", "PUT", goodSettings, auth(otherOrg), 403, "organisation"},
		{"other organisation cannot read", "GET", "", auth(otherOrg), 403, "organisation"},
		{"no settings yet", "GET", "", auth(key), 404, "NO_SETTINGS"},
		{"unknown entry", "PUT", strings.Replace(goodSettings, `"101"`, `"999"`, 1), auth(key), 400, "999"},
		{"bad duration", "PUT", strings.Replace(goodSettings, `"7200s"`, `"-5s"`, 1), auth(key), 400, "UpdateVisitorSettingsResponse"},
		{"bad time zone", "PUT", strings.Replace(goodSettings, "Europe/Paris", "Mars/Base", 1), auth(key), 400, "Mars/Base"},
		{"still nothing saved", "GET", "", auth(key), 404, "NO_SETTINGS"},
		{"good", "PUT", goodSettings, auth(key), 200, `"name":"Lobby"`},
		{"read back", "GET", "", auth(key), 200, `"timeZone":"Europe/Paris"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := st.do(t, tt.method, path, []byte(tt.body), tt.headers...)
			if code != tt.wantCode || !strings.Contains(body, tt.wantIn) {
				t.Errorf("%s = %d %s; want %d containing %q", tt.method, code, body, tt.wantCode, tt.wantIn)
			}
		})
	}
}

// visitorStack is a stack whose test location has goodSettings, and the
// notifier that receives its guest links.
func visitorStack(t *testing.T) (*stack, *notify.Memory) {
	t.Helper()
	return visitorStackWith(t, stackOpts{})
}

func visitorStackWith(t *testing.T, o stackOpts) (*stack, *notify.Memory) {
	t.Helper()
	mem := &notify.Memory{}
	o.notifier = mem
	st := newStack(t, o)
	key := st.adminKey(t, "1")
	if code, body := st.do(t, "PUT", "/v1/admin/locations/"+location+"/visitor-settings", []byte(goodSettings),
		"x-auth-scheme", "api-token", "x-auth-apikey", key); code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}
	return st, mem
}

func TestEnvoyWebhookAndGuestPass(t *testing.T) {
	st, mem := visitorStack(t)
	invite := fixture(t, "invite_created.json", time.Now())
	sig := envoy.Sign(invite, []byte(testEnvoySecret))
	altered := bytes.Replace(invite, []byte("Ada Lovelace"), []byte("Eve Mallory"), 1)

	// Refused deliveries record nothing.
	for _, tt := range []struct {
		name    string
		body    []byte
		headers []string
	}{
		{"unsigned", invite, nil},
		{"wrong signature", invite, []string{envoy.SignatureHeader, envoy.Sign(invite, []byte("other-secret"))}},
		{"not base64", invite, []string{envoy.SignatureHeader, "%%%"}},
		{"body altered", altered, []string{envoy.SignatureHeader, sig}},
	} {
		if code, body := st.do(t, "POST", "/webhooks/envoy", tt.body, tt.headers...); code != 401 {
			t.Errorf("%s: %d %s, want 401", tt.name, code, body)
		}
	}
	if n := len(mem.Messages()); n != 0 {
		t.Fatalf("refused webhooks sent %d links", n)
	}
	if code, body := st.do(t, "POST", "/webhooks/envoy", []byte(`{"meta":`), envoy.SignatureHeader, envoy.Sign([]byte(`{"meta":`), []byte(testEnvoySecret))); code != 400 {
		t.Errorf("malformed signed body: %d %s, want 400", code, body)
	}

	// A signed invite issues a pass and sends the link, once.
	for i, wantDup := range []bool{false, true} {
		code, body := st.do(t, "POST", "/webhooks/envoy", invite, envoy.SignatureHeader, sig)
		var out struct {
			Action    string
			Duplicate bool
		}
		json.Unmarshal([]byte(body), &out)
		if code != 200 || out.Duplicate != wantDup || (i == 0 && out.Action != "ISSUED") {
			t.Fatalf("delivery %d: %d %s", i, code, body)
		}
	}
	// The visitor has an email and a phone: the same link by both.
	msgs := mem.Messages()
	if len(msgs) != 2 || msgs[0].To != "ada.lovelace@example.com" || msgs[1].To != "+33612345678" || msgs[1].Link != msgs[0].Link {
		t.Fatalf("links sent: %+v", msgs)
	}
	link := msgs[0].Link
	if !strings.HasPrefix(link, st.http+"/g/") {
		t.Fatalf("link %q does not point at this server", link)
	}
	token := strings.TrimPrefix(link, st.http+"/g/")

	// The guest page.
	code, page := st.do(t, "GET", "/g/"+token, nil)
	for _, want := range []string{"Welcome, Ada Lovelace", "Open Lobby", "https://example.com/logo.png", "Take the lift", "CET"} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("guest page lacks %q (%d):\n%s", want, code, page)
		}
	}
	unknownCode, unknownPage := st.do(t, "GET", "/g/"+strings.Repeat("A", len(token)), nil)
	if unknownCode != 200 || !strings.Contains(unknownPage, "This pass has ended") || strings.Contains(unknownPage, "Open ") {
		t.Errorf("unknown token page: %d\n%s", unknownCode, unknownPage)
	}

	// Unlock through the API the page uses.
	guestUnlock := func(entry string) string {
		_, body := st.do(t, "POST", "/v1/guest/unlock", []byte(`{"token":"`+token+`","entryId":"`+entry+`"}`), "Content-Type", "application/json")
		return body
	}
	if body := guestUnlock("101"); !strings.Contains(body, "UNLOCK_STATUS_OK") {
		t.Fatalf("guest unlock of Lobby: %s", body)
	}
	if body := guestUnlock("102"); !strings.Contains(body, "UNLOCK_STATUS_DENIED") {
		t.Errorf("guest unlock of Garage (not on the pass): %s", body)
	}
	unlocks := st.sim.Unlocks()
	if len(unlocks) != 1 || !unlocks[0].ViaToken || unlocks[0].EntryID != 101 {
		t.Errorf("simulator unlocks: %+v; want one Lobby unlock through an unlock token", unlocks)
	}

	// Removing the invite ends the pass at once.
	removed := fixture(t, "invite_removed.json", time.Now())
	if code, body := st.do(t, "POST", "/webhooks/envoy", removed, envoy.SignatureHeader, envoy.Sign(removed, []byte(testEnvoySecret))); code != 200 {
		t.Fatalf("invite_removed: %d %s", code, body)
	}
	if body := guestUnlock("101"); !strings.Contains(body, "This pass has ended") {
		t.Errorf("unlock after removal: %s", body)
	}
	if _, page := st.do(t, "GET", "/g/"+token, nil); !strings.Contains(page, "This pass has ended") {
		t.Errorf("page after removal:\n%s", page)
	}
}
