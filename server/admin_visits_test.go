package server_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// TestApproveVisit: a manager releases a visit Envoy's block list holds
// for review, over REST; approving again, or an unknown entry, is refused.
func TestApproveVisit(t *testing.T) {
	st, mem := visitorStack(t)
	admin := []string{"x-auth-scheme", "api-token", "x-auth-apikey", st.adminKey(t, "1")}
	post := func(body []byte) string {
		t.Helper()
		code, answer := st.do(t, "POST", "/webhooks/envoy", body, envoy.SignatureHeader, envoy.Sign(body, []byte(testEnvoySecret)))
		if code != 200 {
			t.Fatalf("webhook: %d %s", code, answer)
		}
		return answer
	}
	// Signed in a minute ago, so the pass is active and its link sent.
	signIn := bytes.Replace(fixture(t, "entry_sign_in.json", time.Now()), []byte("2026-11-24 08:57:12"),
		[]byte(time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)), 1)
	review := bytes.Replace(signIn, []byte(`"entry_sign_in"`), []byte(`"`+envoy.EntryBlacklistReview+`"`), 1)
	// Walk-ins get passes only with invite only off.
	settings := strings.Replace(goodSettings, `"inviteOnly":true`, `"inviteOnly":false`, 1)
	if code, body := st.do(t, "PUT", "/v1/admin/locations/"+location+"/visitor-settings", []byte(settings), admin...); code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}
	if answer := post(review); !strings.Contains(answer, `"HELD"`) {
		t.Fatalf("review: %s", answer)
	}
	if answer := post(signIn); !strings.Contains(answer, `"HELD"`) || len(mem.Messages()) != 0 {
		t.Fatalf("sign-in while held: %s (%d links)", answer, len(mem.Messages()))
	}
	path := "/v1/admin/locations/" + location + "/entries/11223344:approve"
	if code, body := st.do(t, "POST", path, []byte(`{}`), admin...); code != 200 || !strings.Contains(body, `"ISSUED"`) {
		t.Fatalf("approve: %d %s", code, body)
	}
	// The visitor has an email and a phone: the same link by both.
	if ms := mem.Messages(); len(ms) != 2 || ms[0].To != "grace@example.org" || ms[1].To != "+33698765432" || ms[0].Link != ms[1].Link {
		t.Errorf("links after the approval: %+v", ms)
	}
	if code, body := st.do(t, "POST", path, []byte(`{}`), admin...); code != 400 || !strings.Contains(body, "not held") {
		t.Errorf("approving again: %d %s", code, body)
	}
	if code, body := st.do(t, "POST", "/v1/admin/locations/"+location+"/entries/nope:approve", []byte(`{}`), admin...); code != 404 {
		t.Errorf("unknown entry: %d %s", code, body)
	}
	if code, _ := st.do(t, "POST", path, []byte(`{}`)); code != 401 {
		t.Errorf("without a key: %d", code)
	}
}
