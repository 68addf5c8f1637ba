package sim

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// orgPath is the demo org's path prefix.
const orgPath = "/orgs/1"

func TestLogin(t *testing.T) {
	f := newFixture(t, DemoSeed())
	tests := []struct {
		name        string
		base        string // checked or raw
		contentType string
		body        string
		wantStatus  int
		wantError   string
	}{
		{"json", f.checked, "application/json", `{"email":"bot@cloudkey.local","password":"demo-password"}`, 201, ""},
		{"email case and spaces", f.checked, "application/json", `{"email":" BOT@cloudkey.local ","password":"demo-password"}`, 201, ""},
		// The published spec consumes only JSON; one real client sends a form.
		{"form", f.raw, "application/x-www-form-urlencoded", "email=bot%40cloudkey.local&password=demo-password", 201, ""},
		{"wrong password", f.checked, "application/json", `{"email":"bot@cloudkey.local","password":"nope"}`, 401, "InvalidCredentialsError"},
		{"wrong email", f.checked, "application/json", `{"email":"alice@example.com","password":"demo-password"}`, 401, "InvalidCredentialsError"},
		// A look-alike is not the service account (EqualFold folds the
		// Kelvin sign to k).
		{"Kelvin sign email", f.checked, "application/json", `{"email":"bot@cloud\u212aey.local","password":"demo-password"}`, 401, "InvalidCredentialsError"},
		{"form wrong password", f.raw, "application/x-www-form-urlencoded", "email=bot%40cloudkey.local&password=x", 401, "InvalidCredentialsError"},
		{"missing password", f.raw, "application/json", `{"email":"bot@cloudkey.local"}`, 400, "BadRequestError"},
		{"malformed json", f.raw, "application/json", `{"email":`, 400, "BadRequestError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			resp, err := http.Post(tt.base+"/auth/login", tt.contentType, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := readAll(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			if tt.wantError != "" {
				if got := errorName(t, body); got != tt.wantError {
					t.Errorf("error name %q, want %q", got, tt.wantError)
				}
				return
			}
			got := decode[struct {
				Data struct {
					Token          string
					ExpiresAt      time.Time
					TokenScopeList []struct{ Org struct{ ID int } }
				}
			}](t, body).Data
			if got.Token == "" || len(got.TokenScopeList) != 1 || got.TokenScopeList[0].Org.ID != DemoOrgID {
				t.Errorf("login data = %+v", got)
			}
			if ttl := got.ExpiresAt.Sub(before); ttl < DefaultTokenTTL-time.Minute || ttl > DefaultTokenTTL+time.Minute {
				t.Errorf("token lives %v, want about %v", ttl, DefaultTokenTTL)
			}
			// The token works.
			if status, b := call(t, "GET", f.checked+orgPath+"/credentialTypes", got.Token, ""); status != 200 {
				t.Errorf("using the token: %d %s", status, b)
			}
		})
	}
	if n := f.sim.Calls(OpLogin); n != int64(len(tests)) {
		t.Errorf("Calls(OpLogin) = %d, want %d", n, len(tests))
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	expired := login(t, f.checked)
	f.sim.ExpireTokens()
	fresh := login(t, f.checked)
	_ = token

	tests := []struct {
		name       string
		header     string
		wantStatus int
		wantError  string
	}{
		{"raw token", fresh, 200, ""},
		{"bearer token", "Bearer " + fresh, 200, ""},
		{"bearer lower case", "bearer " + fresh, 200, ""},
		{"no header", "", 401, "TokenNotFoundError"},
		{"unknown token", "not-a-token", 401, "JsonWebTokenError"},
		{"expired token", expired, 401, "TokenExpiredError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, "GET", f.raw+orgPath+"/entries", tt.header, "")
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if tt.wantError != "" && errorName(t, body) != tt.wantError {
				t.Errorf("error %s, want %s", body, tt.wantError)
			}
		})
	}
}

func TestTokenTTL(t *testing.T) {
	f := newFixture(t, DemoSeed())
	f.sim.SetTokenTTL(150 * time.Millisecond)
	token := login(t, f.checked)
	if status, body := call(t, "GET", f.checked+orgPath+"/entries", token, ""); status != 200 {
		t.Fatalf("fresh token: %d %s", status, body)
	}
	time.Sleep(200 * time.Millisecond)
	status, body := call(t, "GET", f.raw+orgPath+"/entries", token, "")
	if status != 401 || errorName(t, body) != "TokenExpiredError" {
		t.Fatalf("after the TTL: %d %s, want 401 TokenExpiredError", status, body)
	}
}

func TestRefreshLogin(t *testing.T) {
	f := newFixture(t, DemoSeed())
	for _, path := range []string{"/auth/accessTokens/refresh", "/auth/refreshLogin"} {
		t.Run(path, func(t *testing.T) {
			old := login(t, f.checked)
			base := f.checked
			if path == "/auth/refreshLogin" {
				base = f.raw // not in the published spec
			}
			status, body := call(t, "POST", base+path, old, "")
			if status != 201 {
				t.Fatalf("refresh: %d %s", status, body)
			}
			fresh := decode[struct{ Data struct{ Token string } }](t, body).Data.Token
			if s, _ := call(t, "GET", f.raw+orgPath+"/entries", fresh, ""); s != 200 {
				t.Errorf("new token: %d", s)
			}
			if s, _ := call(t, "GET", f.raw+orgPath+"/entries", old, ""); s != 401 {
				t.Errorf("old token after refresh: %d, want 401", s)
			}
		})
	}
}

// maliceSeed adds users whose emails contain alice@example.com, and two
// users sharing an email.
func maliceSeed() Seed {
	seed := DemoSeed()
	seed.Users = append(seed.Users,
		User{ID: 211, Email: "malice@example.com", FirstName: "Mal", LastName: "Ice", EntryIDs: []int{DemoGymID}},
		User{ID: 212, Email: "Alice@Example.com.au", FirstName: "Alice", LastName: "Aus", Status: "I"},
		User{ID: 213, Email: "dup@example.com", FirstName: "Dup", LastName: "One"},
		User{ID: 214, Email: "DUP@example.com", FirstName: "Dup", LastName: "Two"},
	)
	return seed
}

func TestListUsersFilter(t *testing.T) {
	f := newFixture(t, maliceSeed())
	token := login(t, f.checked)
	all := len(maliceSeed().Users)
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{"contains match", "identity.email:(alice@example.com)", []string{"alice@example.com", "malice@example.com", "Alice@Example.com.au"}},
		{"case-insensitive", "identity.email:(ALICE@EXAMPLE.COM)", []string{"alice@example.com", "malice@example.com", "Alice@Example.com.au"}},
		{"substring", "identity.email:(malice)", []string{"malice@example.com"}},
		{"domain", "identity.email:(@example.com.au)", []string{"Alice@Example.com.au"}},
		{"duplicates", "identity.email:(dup@example.com)", []string{"dup@example.com", "DUP@example.com"}},
		{"no match", "identity.email:(nobody@example.com)", []string{}},
		{"no match across two emails", "identity.email:(.commalice)", []string{}},
		{"status", "status:(S)", []string{"carol@example.com"}},
		{"email and status", "identity.email:(alice) status:(A)", []string{"alice@example.com", "malice@example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, "GET", f.checked+orgPath+"/users?filter="+url.QueryEscape(tt.filter), token, "")
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			got := decode[list[userItem]](t, body)
			if !slices.Equal(emailsOf(got.Data), tt.want) {
				t.Errorf("emails %v, want %v", emailsOf(got.Data), tt.want)
			}
			if got.TotalCount != all || got.FilteredCount != len(tt.want) {
				t.Errorf("totalCount %d filteredCount %d, want %d and %d", got.TotalCount, got.FilteredCount, all, len(tt.want))
			}
		})
	}

	t.Run("identity id differs from user id", func(t *testing.T) {
		_, body := call(t, "GET", f.checked+orgPath+"/users?filter="+url.QueryEscape("identity.email:(bob@)"), token, "")
		u := decode[list[userItem]](t, body).Data[0]
		if u.ID != DemoBobID || u.Identity.ID == u.ID || u.Status != "A" {
			t.Errorf("bob = %+v", u)
		}
	})

	t.Run("pages", func(t *testing.T) {
		var seen []string
		for offset := 0; ; offset += 3 {
			status, body := call(t, "GET", f.checked+orgPath+"/users?limit=3&offset="+strconv.Itoa(offset), token, "")
			if status != 200 {
				t.Fatalf("status %d: %s", status, body)
			}
			page := decode[list[userItem]](t, body)
			seen = append(seen, emailsOf(page.Data)...)
			if page.FilteredCount != all || page.Cursors == nil || page.Cursors.HasNextPage != (len(seen) < all) {
				t.Fatalf("page at %d: %+v", offset, page)
			}
			if !page.Cursors.HasNextPage {
				break
			}
		}
		if len(seen) != all {
			t.Errorf("paged through %d users, want %d", len(seen), all)
		}
	})

	bad := []struct{ name, query, wantError string }{
		{"unknown field", "filter=" + url.QueryEscape("identity.phone:(1)"), "BadRequestError"},
		{"malformed filter", "filter=" + url.QueryEscape("identity.email:alice"), "BadRequestError"},
		{"unclosed filter", "filter=" + url.QueryEscape("identity.email:(alice"), "BadRequestError"},
		{"limit zero", "limit=0", "BadRequestError"},
		{"limit too big", "limit=1001", "BadRequestError"},
		{"negative offset", "offset=-1", "BadRequestError"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, "GET", f.raw+orgPath+"/users?"+tt.query, token, "")
			if status != 400 || errorName(t, body) != tt.wantError {
				t.Errorf("got %d %s, want 400 %s", status, body, tt.wantError)
			}
		})
	}
}

func TestNotFoundAndBadPaths(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
	}{
		{"unknown org", "GET", "/orgs/2/users", "", 404},
		{"unknown org unlock", "POST", "/orgs/2/users/204/credentials/304/cloudKeyEntryUnlock", `{"entryId":101}`, 404},
		{"non-numeric org", "GET", "/orgs/abc/users", "", 400},
		{"unknown user", "GET", orgPath + "/users/999/entries", "", 404},
		{"non-numeric user", "GET", orgPath + "/users/x/credentials", "", 400},
		{"unknown path", "GET", "/nope", "", 404},
		{"operation not simulated", "DELETE", orgPath + "/entries", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, tt.method, f.raw+tt.path, token, tt.body)
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
		})
	}
}

func TestSetUserStatus(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	path := orgPath + "/users/" + strconv.Itoa(DemoAliceID) + "/status"
	for _, st := range []string{"S", "I", "A"} {
		if status, body := call(t, "PUT", f.checked+path, token, `{"status":"`+st+`"}`); status != 204 {
			t.Fatalf("set %s: %d %s", st, status, body)
		}
		if u, _ := f.sim.User("alice@example.com"); string(u.Status) != st {
			t.Errorf("status %s after setting %s", u.Status, st)
		}
	}
	bad := []struct{ name, path, body string }{
		{"bad status", path, `{"status":"X"}`},
		{"no status", path, `{}`},
		{"malformed json", path, `{"status":`},
		{"wrong type", path, `{"status":1}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := call(t, "PUT", f.raw+tt.path, token, tt.body); status != 400 {
				t.Errorf("status %d, want 400: %s", status, body)
			}
		})
	}
	if status, _ := call(t, "PUT", f.raw+orgPath+"/users/999/status", token, `{"status":"A"}`); status != 404 {
		t.Errorf("unknown user: %d, want 404", status)
	}
	if n := f.sim.Calls(OpSetUserStatus); n != 8 {
		t.Errorf("Calls(OpSetUserStatus) = %d, want 8", n)
	}
}

func TestCredentials(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)

	status, body := call(t, "GET", f.checked+orgPath+"/credentialTypes", token, "")
	if status != 200 {
		t.Fatalf("credential types: %d %s", status, body)
	}
	types := decode[list[struct {
		ID        int
		ModelName string
	}]](t, body)
	if !slices.ContainsFunc(types.Data, func(ct struct {
		ID        int
		ModelName string
	}) bool {
		return ct.ID == DemoCloudKeyTypeID && ct.ModelName == "cloudKey"
	}) || types.TotalCount != len(types.Data) {
		t.Errorf("credential types = %+v", types)
	}

	alice := orgPath + "/users/" + strconv.Itoa(DemoAliceID) + "/credentials"
	listCreds := func() []credentialItem {
		t.Helper()
		status, body := call(t, "GET", f.checked+alice, token, "")
		if status != 200 {
			t.Fatalf("list credentials: %d %s", status, body)
		}
		return decode[list[credentialItem]](t, body).Data
	}
	if got := listCreds(); len(got) != 1 || got[0].ID != DemoAliceMobileID || got[0].CredentialType.ModelName != "mobile" || got[0].CloudKey != nil {
		t.Fatalf("alice's credentials = %+v", got)
	}

	status, body = call(t, "POST", f.checked+alice, token, `{"credentialTypeId":7,"cloudKey":{"name":" my key "}}`)
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	created := decode[struct{ Data credentialItem }](t, body).Data
	if created.ID <= DemoErinCloudKeyID || created.CredentialType.ID != 7 || created.CredentialType.ModelName != "cloudKey" ||
		created.CredentialType.Name != "Cloud Key" || created.CloudKey == nil || created.CloudKey.Name != "my key" {
		t.Errorf("created %+v", created)
	}
	if got := listCreds(); len(got) != 2 || got[1].ID != created.ID {
		t.Errorf("after create: %+v", got)
	}

	// A second create answers another id; the simulator does not dedupe.
	_, body = call(t, "POST", f.checked+alice, token, `{"credentialTypeId":7}`)
	if second := decode[struct{ Data credentialItem }](t, body).Data; second.ID == created.ID || second.CloudKey.Name != "Cloud Key" {
		t.Errorf("second create: %+v", second)
	}

	bad := []struct{ name, body string }{
		{"unknown type", `{"credentialTypeId":99,"cloudKey":{"name":"x"}}`},
		{"no type", `{"cloudKey":{"name":"x"}}`},
		{"type not a number", `{"credentialTypeId":"7"}`},
		{"empty name", `{"credentialTypeId":7,"cloudKey":{"name":"  "}}`},
		{"malformed json", `{"credentialTypeId":`},
		{"trailing data", `{"credentialTypeId":7} {}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := call(t, "POST", f.raw+alice, token, tt.body); status != 400 {
				t.Errorf("status %d, want 400: %s", status, body)
			}
		})
	}
	if got, want := f.sim.Calls(OpCreateCredential), int64(2+len(bad)); got != want {
		t.Errorf("Calls(OpCreateCredential) = %d, want %d", got, want)
	}
	if got := f.sim.Calls(OpListCredentials); got != 2 {
		t.Errorf("Calls(OpListCredentials) = %d, want 2", got)
	}
}

func TestEntries(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	userEntries := func(id int) list[entryItem] {
		t.Helper()
		status, body := call(t, "GET", f.checked+orgPath+"/users/"+strconv.Itoa(id)+"/entries", token, "")
		if status != 200 {
			t.Fatalf("user %d entries: %d %s", id, status, body)
		}
		return decode[list[entryItem]](t, body)
	}
	names := func(es []entryItem) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}

	alice := userEntries(DemoAliceID)
	if !slices.Equal(names(alice.Data), []string{"Lobby", "Garage", "Gym"}) || alice.TotalCount != 3 || alice.FilteredCount != 3 {
		t.Errorf("alice's entries = %+v", alice)
	}
	lobby := alice.Data[0]
	if lobby.ID != DemoLobbyID || lobby.Zone.Name != "Ground Floor" || lobby.Zone.ID == 0 || lobby.Zone.Site.Name != "Harbor View" || lobby.Zone.Site.ID == 0 {
		t.Errorf("lobby = %+v", lobby)
	}
	if bob := userEntries(DemoBobID); len(bob.Data) != 0 || bob.TotalCount != 0 {
		t.Errorf("bob's entries = %+v", bob)
	}
	if erin := userEntries(DemoErinID); !slices.Equal(names(erin.Data), []string{"Lobby", "Roof Deck"}) {
		t.Errorf("erin's entries = %v", names(erin.Data))
	}

	status, body := call(t, "GET", f.checked+orgPath+"/entries", token, "")
	if all := decode[list[entryItem]](t, body); status != 200 || len(all.Data) != 5 || all.Data[4].Name != "Server Room" {
		t.Errorf("org entries: %d %+v", status, all)
	}
	status, body = call(t, "GET", f.checked+orgPath+"/entries?limit=2&offset=3", token, "")
	if page := decode[list[entryItem]](t, body); status != 200 || !slices.Equal(names(page.Data), []string{"Roof Deck", "Server Room"}) || page.TotalCount != 5 {
		t.Errorf("org entries page: %d %+v", status, page)
	}
	status, body = call(t, "GET", f.checked+orgPath+"/entries?filter="+url.QueryEscape("name:(room)"), token, "")
	if page := decode[list[entryItem]](t, body); status != 200 || !slices.Equal(names(page.Data), []string{"Server Room"}) || page.FilteredCount != 1 {
		t.Errorf("entries by name: %d %+v", status, page)
	}
	if status, _ := call(t, "GET", f.raw+orgPath+"/entries?filter="+url.QueryEscape("zone:(x)"), token, ""); status != 400 {
		t.Errorf("unknown entry filter: %d, want 400", status)
	}

	// A user with more entries than a page.
	big := newFixture(t, GenerateSeed(1, 1500))
	bigToken := login(t, big.checked)
	var seen []int
	for offset := 0; offset < 1500; offset += 1000 {
		status, body := call(t, "GET", big.raw+orgPath+"/users/"+strconv.Itoa(LoadUserIDBase)+"/entries?offset="+strconv.Itoa(offset), bigToken, "")
		page := decode[list[entryItem]](t, body)
		if status != 200 || page.TotalCount != 1500 {
			t.Fatalf("page at %d: %d total %d", offset, status, page.TotalCount)
		}
		for _, e := range page.Data {
			seen = append(seen, e.ID)
		}
	}
	if len(seen) != 1500 || len(slices.Compact(slices.Sorted(slices.Values(seen)))) != 1500 {
		t.Errorf("paged through %d entries (%d distinct), want 1500", len(seen), len(slices.Compact(slices.Sorted(slices.Values(seen)))))
	}
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
