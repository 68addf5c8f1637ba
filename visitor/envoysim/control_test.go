package envoysim

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// The front desk's control paths sign an invitee in and out over HTTP,
// delivering the signed entry events as SignIn and SignOut do; unknown
// invites and entries are 404.
func TestControlSignInOut(t *testing.T) {
	f := newFixture(t)
	status, body := f.api("POST", "/api/v3/invites", f.token(), inviteBody)
	if status != http.StatusCreated {
		t.Fatalf("create = %d %s", status, body)
	}
	invite := inviteID(t, body)
	f.next() // invite_created

	control := func(path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, raw
	}
	tests := []struct {
		name, path string
		want       int
	}{
		{"unknown invite", "/_sim/invites/404/sign-in", http.StatusNotFound},
		{"unknown entry", "/_sim/entries/404/sign-out", http.StatusNotFound},
	}
	for _, tc := range tests {
		if code, b := control(tc.path); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, b, tc.want)
		}
	}

	code, b := control("/_sim/invites/" + invite + "/sign-in")
	var in struct {
		EntryID string `json:"entryId"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &in) != nil || in.EntryID == "" {
		t.Fatalf("sign-in: %d %s", code, b)
	}
	if ev := f.next().event; ev.Name != envoy.EntrySignIn || ev.ID != in.EntryID || ev.InviteID != invite {
		t.Errorf("sign-in event = %+v", ev)
	}
	if code, b := control("/_sim/entries/" + in.EntryID + "/sign-out"); code != http.StatusNoContent {
		t.Fatalf("sign-out: %d %s", code, b)
	}
	if ev := f.next().event; ev.Name != envoy.EntrySignOut || ev.ID != in.EntryID {
		t.Errorf("sign-out event = %+v", ev)
	}
	if code, _ := control("/_sim/entries/" + in.EntryID + "/sign-out"); code != http.StatusNotFound {
		t.Errorf("a second sign-out: %d, want 404", code)
	}
}
