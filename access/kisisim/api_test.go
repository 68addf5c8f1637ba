package kisisim

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

func TestAuth(t *testing.T) {
	f := demo(t)
	tests := []struct {
		name, path, header string
	}{
		{"no header", "/locks", ""},
		{"other scheme", "/locks", "Bearer " + DemoHarborAPIKey},
		{"empty secret", "/users", "KISI-LOGIN "},
		{"unknown secret", "/locks", "KISI-LOGIN nope"},
		{"unknown secret on users", "/users", "KISI-LOGIN nope"},
		{"unknown secret on login", "/login", "KISI-LOGIN nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", f.srv.URL+tt.path, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			client := f.checked
			if tt.header == "" || tt.header[:10] != "KISI-LOGIN" || tt.header == "KISI-LOGIN " {
				client = f.raw // the request itself breaks the spec's security
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	f := demo(t)
	gina, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	tests := []struct {
		name, query, secret string
		status              int
		emails              []string
		rng                 string
	}{
		{"all", "", DemoHarborAPIKey, 200, []string{DemoFrankEmail, DemoGinaEmail}, "0-49/2"},
		{"email", "?email=gina@example.com", DemoHarborAPIKey, 200, []string{DemoGinaEmail}, "0-49/1"},
		{"email case-insensitive", "?email=GINA@Example.COM&limit=2", DemoHarborAPIKey, 200, []string{DemoGinaEmail}, "0-1/1"},
		{"no partial match", "?email=gina@example", DemoHarborAPIKey, 200, nil, "0-49/0"},
		{"other org's user", "?email=hank@example.com", DemoHarborAPIKey, 200, nil, "0-49/0"},
		{"same email other org", "?email=frank@example.com", DemoFoundryAPIKey, 200, []string{DemoFrankEmail}, "0-49/1"},
		{"admin not listed", "?email=admin@harbor-view.example", DemoHarborAPIKey, 200, nil, "0-49/0"},
		{"page", "?limit=1&offset=1", DemoHarborAPIKey, 200, []string{DemoGinaEmail}, "1-1/2"},
		{"past the end", "?limit=1&offset=5", DemoHarborAPIKey, 200, nil, "5-5/2"},
		{"user login", "", gina, 403, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, "GET", "/users"+tt.query, tt.secret, "")
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.status != 200 {
				if e := a.apiErr(t); e.Code == "" {
					t.Fatal("no error code")
				}
				return
			}
			var users []userJSON
			a.decode(t, &users)
			var emails []string
			for _, u := range users {
				emails = append(emails, u.Email)
				if !u.AccessEnabled || !u.SCIMAccessEnabled {
					t.Errorf("%s not enabled", u.Email)
				}
			}
			if !slices.Equal(emails, tt.emails) {
				t.Errorf("emails %v, want %v", emails, tt.emails)
			}
			if got := a.header.Get("X-Collection-Range"); got != tt.rng {
				t.Errorf("X-Collection-Range %q, want %q", got, tt.rng)
			}
		})
	}
	t.Run("limit over 100", func(t *testing.T) {
		if a := f.send(t, f.raw, "GET", "/users?limit=101", DemoHarborAPIKey, ""); a.status != 400 {
			t.Fatalf("status %d", a.status)
		}
	})
}

// GET /users/{id}: the key's own organisation's user, else 404; a user's
// login may not read users.
func TestFetchUser(t *testing.T) {
	f := demo(t)
	path := "/users/" + strconv.Itoa(DemoGinaID)
	if a := f.do(t, "GET", path, DemoHarborAPIKey, ""); a.status != 200 || !contains(a.body, `"email":"gina@example.com"`) {
		t.Fatalf("gina: %d %s", a.status, a.body)
	}
	gina, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	for _, tc := range []struct {
		name, path, secret string
		status             int
	}{
		{"other org's key", path, DemoFoundryAPIKey, 404},
		{"unknown user", "/users/999999", DemoHarborAPIKey, 404},
		{"the admin", "/users/" + strconv.Itoa(DemoHarborAdminID), DemoHarborAPIKey, 404},
		{"a user's login", path, gina, 403},
	} {
		if a := f.do(t, "GET", tc.path, tc.secret, ""); a.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, a.status, a.body, tc.status)
		}
	}
}

func TestUpdateUser(t *testing.T) {
	f := demo(t)
	gina, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	path := "/users/" + strconv.Itoa(DemoGinaID)
	if a := f.do(t, "PATCH", path, DemoHarborAPIKey, `{"user":{"access_enabled":false}}`); a.status != 204 {
		t.Fatalf("suspend: %d %s", a.status, a.body)
	}
	a := f.do(t, "POST", unlockPath(DemoPoolID), gina, "")
	if a.status != 403 || a.apiErr(t).Code != "fcd8ff" {
		t.Fatalf("unlock while suspended: %d %s", a.status, a.body)
	}
	if a := f.do(t, "GET", "/users?email="+DemoGinaEmail, DemoHarborAPIKey, ""); !contains(a.body, `"access_enabled":false`) {
		t.Fatalf("user after suspend: %s", a.body)
	}
	if a := f.do(t, "PATCH", path, DemoHarborAPIKey, `{"user":{"access_enabled":true}}`); a.status != 204 {
		t.Fatalf("restore: %d %s", a.status, a.body)
	}
	if a := f.do(t, "POST", unlockPath(DemoPoolID), gina, ""); a.status != 200 {
		t.Fatalf("unlock after restore: %d %s", a.status, a.body)
	}
	refusals := []struct {
		name, path, secret string
		status             int
	}{
		{"other org's key", path, DemoFoundryAPIKey, 404},
		{"unknown user", "/users/999999", DemoHarborAPIKey, 404},
		{"admin", "/users/" + strconv.Itoa(DemoHarborAdminID), DemoHarborAPIKey, 404},
		{"user login", path, gina, 403},
		{"unknown secret", path, "nope", 401},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, "PATCH", tt.path, tt.secret, `{"user":{"access_enabled":false}}`)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			a.apiErr(t)
		})
	}
	if u, _ := f.srv.User(DemoHarborOrgID, DemoGinaEmail); u.AccessDisabled {
		t.Fatal("a refused PATCH changed the user")
	}
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

func TestLogins(t *testing.T) {
	f := demo(t)
	secret, id := f.login(t, DemoHarborAPIKey, "Gina@Example.com")
	_ = secret
	t.Run("answer", func(t *testing.T) {
		a := f.do(t, "POST", "/logins", DemoHarborAPIKey, loginBody(DemoFrankEmail))
		var l createdLoginJSON
		a.decode(t, &l)
		if l.Type != "device" || l.Expire || l.UserID != DemoHarborFrankID || l.User.ID != DemoHarborFrankID ||
			l.User.Name != "Frank" || l.Secret == "" || l.Secret == secret {
			t.Fatalf("login %s", a.body)
		}
	})
	t.Run("current login", func(t *testing.T) {
		s, id := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
		a := f.do(t, "GET", "/login", s, "")
		var l loginJSON
		a.decode(t, &l)
		if a.status != 200 || l.ID != id || l.UserID != DemoGinaID || contains(a.body, s) {
			t.Fatalf("GET /login: %d %s", a.status, a.body)
		}
		a = f.do(t, "GET", "/login", DemoFoundryAPIKey, "")
		a.decode(t, &l)
		if a.status != 200 || l.ID != DemoFoundryKeyLoginID || l.UserID != DemoFoundryAdminID || l.Type != "api" {
			t.Fatalf("GET /login with the API key: %d %s", a.status, a.body)
		}
	})
	t.Run("delete by key", func(t *testing.T) {
		s, id := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
		if a := f.do(t, "DELETE", "/logins/"+strconv.Itoa(id), DemoHarborAPIKey, ""); a.status != 204 {
			t.Fatalf("delete: %d %s", a.status, a.body)
		}
		if a := f.do(t, "GET", "/locks", s, ""); a.status != 401 {
			t.Fatalf("deleted login: %d %s", a.status, a.body)
		}
	})
	t.Run("delete itself", func(t *testing.T) {
		s, id := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
		if a := f.do(t, "DELETE", "/logins/"+strconv.Itoa(id), s, ""); a.status != 204 {
			t.Fatalf("delete: %d %s", a.status, a.body)
		}
		if a := f.do(t, "POST", unlockPath(DemoPoolID), s, ""); a.status != 401 {
			t.Fatalf("deleted login: %d %s", a.status, a.body)
		}
	})
	refusals := []struct {
		name, method, path, secret, body string
		status                           int
	}{
		{"unknown email", "POST", "/logins", DemoHarborAPIKey, loginBody("nobody@example.com"), 404},
		{"other org's user", "POST", "/logins", DemoHarborAPIKey, loginBody(DemoHankEmail), 404},
		{"api login", "POST", "/logins", DemoHarborAPIKey, `{"login":{"type":"api","email":"gina@example.com"},"user":{}}`, 403},
		{"by a user's login", "POST", "/logins", secret, loginBody(DemoFrankEmail), 403},
		{"no key", "POST", "/logins", "nope", loginBody(DemoGinaEmail), 401},
		{"delete other org's login", "DELETE", "/logins/" + strconv.Itoa(id), DemoFoundryAPIKey, "", 404},
		{"delete another user's login", "DELETE", "/logins/" + strconv.Itoa(id), mustLogin(t, f, DemoFrankEmail), "", 404},
		{"delete the API key", "DELETE", "/logins/" + strconv.Itoa(DemoHarborKeyLoginID), DemoHarborAPIKey, "", 403},
		{"delete unknown", "DELETE", "/logins/1", DemoHarborAPIKey, "", 404},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, tt.method, tt.path, tt.secret, tt.body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			a.apiErr(t)
		})
	}
	t.Run("body without user", func(t *testing.T) {
		body := `{"login":{"type":"device","email":"gina@example.com","expire":false}}`
		if a := f.send(t, f.raw, "POST", "/logins", DemoHarborAPIKey, body); a.status != 400 {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	})
}

func mustLogin(t *testing.T, f *fixture, email string) string {
	s, _ := f.login(t, DemoHarborAPIKey, email)
	return s
}

func TestLoginLRUCap(t *testing.T) {
	f := demo(t)
	first, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	second, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	for range MaxDeviceLogins - 2 {
		f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	}
	if n := f.srv.Logins(DemoGinaEmail); n != MaxDeviceLogins {
		t.Fatalf("%d logins, want %d", n, MaxDeviceLogins)
	}
	// Using the first makes the second the least recently used.
	if a := f.do(t, "GET", "/login", first, ""); a.status != 200 {
		t.Fatalf("first: %d", a.status)
	}
	f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	if n := f.srv.Logins(DemoGinaEmail); n != MaxDeviceLogins {
		t.Fatalf("%d logins after one more, want %d", n, MaxDeviceLogins)
	}
	if a := f.do(t, "GET", "/login", second, ""); a.status != 401 {
		t.Fatalf("least recently used login: %d, want 401", a.status)
	}
	if a := f.do(t, "GET", "/login", first, ""); a.status != 200 {
		t.Fatalf("recently used login: %d, want 200", a.status)
	}
	if n := f.srv.OrgLogins(DemoHarborOrgID, DemoFrankEmail); n != 0 {
		t.Fatalf("frank has %d logins", n)
	}
}

func TestLocksAndPlaces(t *testing.T) {
	f := demo(t)
	frankHV, _ := f.login(t, DemoHarborAPIKey, DemoFrankEmail)
	gina, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	frankFL, _ := f.login(t, DemoFoundryAPIKey, DemoFrankEmail)
	hank, _ := f.login(t, DemoFoundryAPIKey, DemoHankEmail)
	lists := []struct {
		name, secret, query string
		want                []int
		rng                 string
	}{
		{"harbor key", DemoHarborAPIKey, "", []int{DemoPoolID, DemoPackageRoomID}, "0-49/2"},
		{"foundry key", DemoFoundryAPIKey, "", []int{DemoFrontDoorID, DemoBikeRoomID}, "0-49/2"},
		{"frank at harbor", frankHV, "", []int{DemoPoolID, DemoPackageRoomID}, "0-49/2"},
		{"gina", gina, "", []int{DemoPoolID}, "0-49/1"},
		{"frank at foundry", frankFL, "", []int{DemoFrontDoorID}, "0-49/1"},
		{"hank", hank, "", []int{DemoFrontDoorID, DemoBikeRoomID}, "0-49/2"},
		{"page", hank, "?limit=1&offset=1", []int{DemoBikeRoomID}, "1-1/2"},
		{"place", hank, "?place_id=" + strconv.Itoa(DemoFoundryPlaceID), []int{DemoFrontDoorID, DemoBikeRoomID}, "0-49/2"},
		{"other org's place", hank, "?place_id=" + strconv.Itoa(DemoHarborPlaceID), []int{}, "0-49/0"},
	}
	for _, tt := range lists {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, "GET", "/locks"+tt.query, tt.secret, "")
			if got := f.lockIDs(t, tt.secret, tt.query); !slices.Equal(got, tt.want) {
				t.Errorf("locks %v, want %v", got, tt.want)
			}
			if got := a.header.Get("X-Collection-Range"); got != tt.rng {
				t.Errorf("X-Collection-Range %q, want %q", got, tt.rng)
			}
		})
	}
	t.Run("limit over 250", func(t *testing.T) {
		if a := f.send(t, f.raw, "GET", "/locks?limit=251", hank, ""); a.status != 400 {
			t.Fatalf("status %d", a.status)
		}
	})
	gets := []struct {
		name, path, secret string
		status             int
		code               string
	}{
		{"lock", "/locks/" + strconv.Itoa(DemoPoolID), gina, 200, ""},
		{"lock not granted, same org", "/locks/" + strconv.Itoa(DemoPackageRoomID), gina, 200, ""},
		{"lock by key", "/locks/" + strconv.Itoa(DemoPackageRoomID), DemoHarborAPIKey, 200, ""},
		{"other org's lock", "/locks/" + strconv.Itoa(DemoPoolID), frankFL, 404, "fad10e"},
		{"other org's lock by key", "/locks/" + strconv.Itoa(DemoPoolID), DemoFoundryAPIKey, 404, "fad10e"},
		{"unknown lock", "/locks/424242", gina, 404, "fad10e"},
		{"places", "/places", gina, 200, ""},
		{"place", "/places/" + strconv.Itoa(DemoHarborPlaceID), gina, 200, ""},
		{"place by key", "/places/" + strconv.Itoa(DemoFoundryPlaceID), DemoFoundryAPIKey, 200, ""},
		{"other org's place", "/places/" + strconv.Itoa(DemoHarborPlaceID), frankFL, 404, ""},
		{"unknown place", "/places/424242", DemoHarborAPIKey, 404, ""},
	}
	for _, tt := range gets {
		t.Run(tt.name, func(t *testing.T) {
			a := f.do(t, "GET", tt.path, tt.secret, "")
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.status != 200 {
				if e := a.apiErr(t); tt.code != "" && e.Code != tt.code {
					t.Fatalf("code %q, want %q", e.Code, tt.code)
				}
			}
		})
	}
	t.Run("places list", func(t *testing.T) {
		var places []placeJSON
		a := f.do(t, "GET", "/places", frankFL, "")
		a.decode(t, &places)
		if len(places) != 1 || places[0].ID != DemoFoundryPlaceID || places[0].Organization.Name != "Foundry Lofts" || places[0].LocksCount != 2 {
			t.Fatalf("places %s", a.body)
		}
		if got := a.header.Get("X-Collection-Range"); got != "0-49/1" {
			t.Errorf("X-Collection-Range %q", got)
		}
	})
	t.Run("lock fields", func(t *testing.T) {
		if err := f.srv.SetLockState(DemoBikeRoomID, true, false); err != nil {
			t.Fatal(err)
		}
		var l lockJSON
		f.do(t, "GET", "/locks/"+strconv.Itoa(DemoBikeRoomID), hank, "").decode(t, &l)
		if l.Name != "Bike Room" || !l.LockedDown || l.LockedDownSince == nil || l.Online || l.PlaceID != DemoFoundryPlaceID || l.Place.Name != "Foundry Lofts" {
			t.Fatalf("lock %+v", l)
		}
	})
}

// OrgDeviceLogins counts an organisation's device logins, its users'
// together, and not the API key.
func TestOrgDeviceLogins(t *testing.T) {
	f := demo(t)
	if n := f.srv.OrgDeviceLogins(DemoHarborOrgID); n != 0 {
		t.Fatalf("seeded organisation: %d device logins", n)
	}
	_, frank := f.login(t, DemoHarborAPIKey, DemoFrankEmail)
	f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	f.login(t, DemoFoundryAPIKey, DemoHankEmail)
	if h, fl := f.srv.OrgDeviceLogins(DemoHarborOrgID), f.srv.OrgDeviceLogins(DemoFoundryOrgID); h != 2 || fl != 1 {
		t.Fatalf("device logins: Harbor View %d, Foundry Lofts %d; want 2, 1", h, fl)
	}
	if a := f.do(t, "DELETE", "/logins/"+strconv.Itoa(frank), DemoHarborAPIKey, ""); a.status != 204 {
		t.Fatalf("delete: %d %s", a.status, a.body)
	}
	if n := f.srv.OrgDeviceLogins(DemoHarborOrgID); n != 1 {
		t.Errorf("after a delete: %d", n)
	}
	if n := f.srv.OrgDeviceLogins(12345); n != 0 {
		t.Errorf("unknown organisation: %d", n)
	}
}
