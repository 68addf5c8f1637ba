package sim

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

func tokenPath(userID, credID int) string {
	return fmt.Sprintf("%s/users/%d/credentials/%d/generateCloudKeyUnlockToken", orgPath, userID, credID)
}

func usePath(token string) string { return "/tokens/cloudKeyUnlockTokens/" + token + "/use" }

// botKey gives the demo service account a cloud key and returns its id.
func botKey(t *testing.T, f *fixture, token string) int {
	t.Helper()
	status, body := call(t, "POST", f.checked+fmt.Sprintf("%s/users/%d/credentials", orgPath, DemoServiceUserID), token,
		`{"credentialTypeId":7,"cloudKey":{"name":"cloudkey"}}`)
	if status != http.StatusCreated {
		t.Fatalf("create the bot's cloud key: %d %s", status, body)
	}
	return decode[struct{ Data struct{ ID int } }](t, body).Data.ID
}

// issue generates a token through the spec-checked server and returns it.
func issue(t *testing.T, f *fixture, session string, cred int, body string) string {
	t.Helper()
	status, b := call(t, "POST", f.checked+tokenPath(DemoServiceUserID, cred), session, body)
	if status != http.StatusCreated {
		t.Fatalf("generate: %d %s", status, b)
	}
	d := decode[struct{ Data unlockTokenJSON }](t, b).Data
	if d.CloudKeyUnlockToken == "" || !strings.HasSuffix(d.APIURL, usePath(d.CloudKeyUnlockToken)) ||
		!strings.Contains(d.FullWebURL, d.CloudKeyUnlockToken) || d.WebURL == "" {
		t.Fatalf("generate answered %+v", d)
	}
	return d.CloudKeyUnlockToken
}

func TestLoginNamesServiceUser(t *testing.T) {
	f := newFixture(t, DemoSeed())
	status, body := call(t, "POST", f.checked+"/auth/login", "",
		`{"email":"`+DemoServiceEmail+`","password":"`+DemoServicePassword+`"}`)
	got := decode[struct {
		Data struct {
			TokenScopeList []struct {
				Org  struct{ ID int }
				User *struct{ ID int }
			}
		}
	}](t, body).Data.TokenScopeList
	if status != 201 || len(got) != 1 || got[0].User == nil || got[0].User.ID != DemoServiceUserID {
		t.Fatalf("login: %d %s", status, body)
	}

	// A service account that is no user of the org is not named.
	seed := DemoSeed()
	seed.Users = seed.Users[:len(seed.Users)-1]
	other := newFixture(t, seed)
	_, body = call(t, "POST", other.checked+"/auth/login", "",
		`{"email":"`+DemoServiceEmail+`","password":"`+DemoServicePassword+`"}`)
	if strings.Contains(string(body), `"user"`) {
		t.Errorf("login names a user the seed lacks: %s", body)
	}
}

// TestUnlockTokenWindow puts the simulator's clock one second either side
// of each edge of the token's window [notBefore, expires).
func TestUnlockTokenWindow(t *testing.T) {
	f := newFixture(t, DemoSeed())
	session := login(t, f.checked)
	cred := botKey(t, f, session)
	start := time.Date(2026, 11, 23, 9, 45, 0, 0, time.UTC)
	end := start.Add(2 * time.Hour)
	token := issue(t, f, session, cred, `{"entryData":[{"entryId":101,"uiLabel":"Lobby"},{"entryId":102,"uiLabel":"Garage"}],`+
		`"notBefore":"2026-11-23T09:45:00.000Z","expires":"2026-11-23T11:45:00.000Z","description":"guest pass p-1"}`)

	var mu sync.Mutex
	now := start
	f.sim.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	tests := []struct {
		name  string
		at    time.Time
		entry int
		want  int
	}{
		{"a second before notBefore", start.Add(-time.Second), DemoLobbyID, 403},
		{"at notBefore", start, DemoLobbyID, 204},
		{"a second before expires", end.Add(-time.Second), DemoGarageID, 204},
		{"at expires", end, DemoLobbyID, 403},
		{"long after", end.Add(24 * time.Hour), DemoLobbyID, 403},
		{"an entry the token does not cover", start, DemoGymID, 403},
		{"an unknown entry", start, 999, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			now = tt.at
			mu.Unlock()
			status, body := call(t, "POST", f.checked+usePath(token), "", entryBody(tt.entry))
			if status != tt.want {
				t.Fatalf("use: %d, want %d: %s", status, tt.want, body)
			}
		})
	}
	unlocks := f.sim.Unlocks()
	if len(unlocks) != 2 || !unlocks[0].ViaToken || unlocks[0].UserID != DemoServiceUserID || unlocks[0].CredentialID != cred ||
		!unlocks[0].At.Equal(start) || unlocks[1].EntryID != DemoGarageID {
		t.Errorf("unlocks = %+v", unlocks)
	}
	toks := f.sim.UnlockTokens()
	if len(toks) != 1 || toks[0].Uses != 2 || !toks[0].NotBefore.Equal(start) || !toks[0].Expires.Equal(end) ||
		toks[0].Description != "guest pass p-1" || len(toks[0].Entries) != 2 || toks[0].Entries[1].UILabel != "Garage" {
		t.Errorf("tokens = %+v", toks)
	}
	if got := f.sim.Calls(OpUseUnlockToken); got != int64(len(tests)) {
		t.Errorf("Calls(OpUseUnlockToken) = %d, want %d", got, len(tests))
	}
}

func TestGenerateUnlockTokenRefusals(t *testing.T) {
	f := newFixture(t, DemoSeed())
	session := login(t, f.checked)
	cred := botKey(t, f, session)
	const ok = `"notBefore":"2026-11-23T09:45:00Z","expires":"2026-11-23T11:45:00Z"`
	tests := []struct {
		name       string
		user, cred int
		body       string
		raw        bool // malformed on purpose: not sent through the spec check
		want       int
	}{
		{"one entryId", DemoServiceUserID, cred, `{"entryId":101,` + ok + `}`, false, 201},
		{"open window", DemoServiceUserID, cred, `{"entryData":[{"entryId":101}],"notBefore":null,"expires":null}`, false, 201},
		{"bare dates", DemoServiceUserID, cred, `{"entryData":[{"entryId":101}],"notBefore":"2026-11-23","expires":"2026-11-24"}`, false, 201},
		{"entry the bot lacks", DemoServiceUserID, cred, `{"entryData":[{"entryId":101},{"entryId":105}],` + ok + `}`, false, 403},
		{"not the user's cloud key", DemoServiceUserID, DemoErinCloudKeyID, `{"entryId":101,` + ok + `}`, false, 403},
		{"suspended user", DemoCarolID, DemoCarolCloudKeyID, `{"entryId":101,` + ok + `}`, false, 403},
		{"unknown entry", DemoServiceUserID, cred, `{"entryId":999,` + ok + `}`, false, 404},
		{"unknown user", 999, cred, `{"entryId":101,` + ok + `}`, false, 404},
		{"no entries", DemoServiceUserID, cred, `{` + ok + `}`, false, 400},
		{"entryData without entryId", DemoServiceUserID, cred, `{"entryData":[{"uiLabel":"x"}],` + ok + `}`, false, 400},
		{"expires before notBefore", DemoServiceUserID, cred, `{"entryId":101,"notBefore":"2026-11-23T11:00:00Z","expires":"2026-11-23T10:00:00Z"}`, false, 400},
		{"expires at notBefore", DemoServiceUserID, cred, `{"entryId":101,"notBefore":"2026-11-23T11:00:00Z","expires":"2026-11-23T11:00:00Z"}`, false, 400},
		{"malformed time", DemoServiceUserID, cred, `{"entryId":101,"notBefore":"tomorrow"}`, true, 400},
		{"description too long", DemoServiceUserID, cred, `{"entryId":101,"description":"` + strings.Repeat("x", 101) + `"}`, true, 400},
		{"malformed json", DemoServiceUserID, cred, `{"entryId":`, true, 400},
	}
	issued := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := f.checked
			if tt.raw {
				base = f.raw
			}
			status, body := call(t, "POST", base+tokenPath(tt.user, tt.cred), session, tt.body)
			if status != tt.want {
				t.Fatalf("status %d, want %d: %s", status, tt.want, body)
			}
			if status == 201 {
				issued++
			}
		})
	}
	if got := len(f.sim.UnlockTokens()); got != issued {
		t.Errorf("%d tokens remembered, want %d", got, issued)
	}
	if status, _ := call(t, "POST", f.raw+tokenPath(DemoServiceUserID, cred), "", `{"entryId":101}`); status != 401 {
		t.Errorf("generate without a session token: %d, want 401", status)
	}
}

// TestUseUnlockTokenFollowsState checks that a token issued to the service
// account stops working when the account is suspended or loses the entry,
// as a cloud-key unlock would.
func TestUseUnlockTokenFollowsState(t *testing.T) {
	f := newFixture(t, DemoSeed())
	session := login(t, f.checked)
	cred := botKey(t, f, session)
	token := issue(t, f, session, cred, `{"entryData":[{"entryId":101},{"entryId":104}]}`)
	use := func(entry int) int {
		t.Helper()
		status, _ := call(t, "POST", f.checked+usePath(token), "", entryBody(entry))
		return status
	}
	steps := []struct {
		name   string
		change func() error
		entry  int
		want   int
	}{
		{"active", nil, DemoLobbyID, 204},
		{"service account suspended", func() error { return f.sim.SetUserStatus(DemoServiceEmail, access.StatusSuspended) }, DemoLobbyID, 403},
		{"reactivated", func() error { return f.sim.SetUserStatus(DemoServiceEmail, access.StatusActive) }, DemoLobbyID, 204},
		{"roof deck unassigned", func() error { return f.sim.UnassignEntry(DemoServiceEmail, DemoRoofDeckID) }, DemoRoofDeckID, 403},
	}
	for _, st := range steps {
		if st.change != nil {
			if err := st.change(); err != nil {
				t.Fatal(err)
			}
		}
		if got := use(st.entry); got != st.want {
			t.Errorf("%s: %d, want %d", st.name, got, st.want)
		}
	}
	for _, tt := range []struct {
		name, path, body string
		want             int
	}{
		{"unknown token", usePath("nope"), entryBody(DemoLobbyID), 404},
		{"no entryId", usePath(token), `{}`, 400},
		{"string entryId", usePath(token), `{"entryId":"101"}`, 400},
	} {
		if status, body := call(t, "POST", f.raw+tt.path, "", tt.body); status != tt.want {
			t.Errorf("%s: %d, want %d: %s", tt.name, status, tt.want, body)
		}
	}
}
