package openpath

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
)

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{BaseURL: "https://api.openpath.com", Email: "a@b.c", Password: "p"}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no base URL", func(c *Config) { c.BaseURL = "" }, "base URL"},
		{"relative base URL", func(c *Config) { c.BaseURL = "/api" }, "base URL"},
		{"ftp base URL", func(c *Config) { c.BaseURL = "ftp://x" }, "base URL"},
		{"no email", func(c *Config) { c.Email = "" }, "email and password"},
		{"no password", func(c *Config) { c.Password = "" }, "email and password"},
		{"org id not a number", func(c *Config) { c.OrgID = "acme" }, "org id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	c, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "https://api.openpath.com" || c.userAgent[0] != DefaultUserAgent {
		t.Errorf("client = %+v", c)
	}
	if c2, _ := New(Config{BaseURL: "http://h/api/", Email: "e", Password: "p"}); c2.base != "http://h/api" {
		t.Errorf("trailing slash kept: %s", c2.base)
	}
}

func TestFindUserByEmail(t *testing.T) {
	e := newEnv(t, testSeed())
	ctx := context.Background()
	tests := []struct {
		email   string
		want    access.User
		wantErr error
	}{
		{"alice@example.com", access.User{ID: "201", Email: "alice@example.com", Name: "Alice Anders", Status: access.StatusActive}, nil},
		{"malice@example.com", access.User{ID: "211", Email: "malice@example.com", Name: "Mal Ice", Status: access.StatusActive}, nil},
		{"carol@example.com", access.User{ID: "203", Email: "carol@example.com", Name: "Carol Castro", Status: access.StatusSuspended}, nil},
		{"a+b@example.com", access.User{ID: "215", Email: "a+b@example.com", Name: "Plus Sign", Status: access.StatusActive}, nil},
		// Openpath keeps the case it was given; cloudkey's emails are lower case.
		{"dana.mixed@example.com", access.User{ID: "216", Email: "Dana.Mixed@Example.COM", Name: "Dana Mixed", Status: access.StatusInactive}, nil},
		{"nobody@example.com", access.User{}, access.ErrNotFound},
		{"b@example.com", access.User{}, access.ErrNotFound},    // contained in bob's and a+b's, equal to neither
		{"example.com", access.User{}, access.ErrNotFound},      // contained in all
		{"dup@example.com", access.User{}, access.ErrAmbiguous}, // two users

		// Look-alikes never reach the ASCII account, nor the ASCII address
		// the look-alike one (EqualFold folds the Kelvin sign to k and ſ
		// to s; ToLower maps İ to i).
		{"kate@example.com", access.User{ID: "217", Email: "kate@example.com", Name: "Kate Ascii", Status: access.StatusActive}, nil},
		{"\u212aate@example.com", access.User{ID: "218", Email: "\u212aate@example.com", Name: "Kelvin Sign", Status: access.StatusActive}, nil},
		{"sam@example.com", access.User{ID: "219", Email: "sam@example.com", Name: "Sam Ascii", Status: access.StatusActive}, nil},
		{"\u017fam@example.com", access.User{ID: "220", Email: "\u017fam@example.com", Name: "Long S", Status: access.StatusActive}, nil},
		{"er\u0130n@example.com", access.User{}, access.ErrNotFound},   // İ: not erin
		{"\uff45rin@example.com", access.User{}, access.ErrNotFound},   // fullwidth e
		{"bot@cloud\u212aey.local", access.User{}, access.ErrNotFound}, // not the service account
		{"jos\u00e9@example.com", access.User{ID: "221", Email: "jos\u00e9@example.com", Name: "José Accent", Status: access.StatusActive}, nil},
		{"jos\u00c9@example.com", access.User{}, access.ErrNotFound}, // no Unicode case folding: only the same bytes match
	}
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			got, err := e.client.FindUserByEmail(ctx, tt.email)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("user = %+v, want %+v", got, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.email) {
				t.Errorf("error %q does not name the email", err)
			}
		})
	}
	if got := e.sim.Calls(sim.OpListUsers); got != int64(len(tests)) {
		t.Errorf("Calls(OpListUsers) = %d, want %d", got, len(tests))
	}

	before := totalCalls(e.sim)
	if _, err := e.client.FindUserByEmail(ctx, ""); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("empty email: err = %v, want ErrNotFound", err)
	}
	if totalCalls(e.sim) != before {
		t.Error("an empty email was sent to Openpath, where it would match every user")
	}
}

// TestFindUserPages puts the exact match on the second page of the
// contains-matches.
func TestFindUserPages(t *testing.T) {
	seed := sim.DemoSeed()
	for i := range 1500 {
		seed.Users = append(seed.Users, sim.User{ID: 10_000 + i, Email: "x" + strconv.Itoa(i) + ".alice@example.com"})
	}
	seed.Users = append(seed.Users, seed.Users[0]) // alice, last
	seed.Users = seed.Users[1:]
	e := newEnv(t, seed)
	u, err := e.client.FindUserByEmail(context.Background(), "alice@example.com")
	if err != nil || u.ID != strconv.Itoa(sim.DemoAliceID) {
		t.Fatalf("FindUserByEmail = %+v, %v", u, err)
	}
	if got := e.sim.Calls(sim.OpListUsers); got != 2 {
		t.Errorf("Calls(OpListUsers) = %d, want 2 pages", got)
	}
}

func TestEnsureCloudKey(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	cloudKeyOf := func(email string) []int {
		u, err := e.sim.User(email)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, c := range u.Credentials {
			if c.CredentialTypeID == sim.DemoCloudKeyTypeID {
				ids = append(ids, c.ID)
			}
		}
		return ids
	}

	// Alice has a mobile credential but no cloud key: one is created.
	id, err := e.client.EnsureCloudKey(ctx, access.User{ID: strconv.Itoa(sim.DemoAliceID)})
	if err != nil {
		t.Fatal(err)
	}
	if keys := cloudKeyOf("alice@example.com"); len(keys) != 1 || strconv.Itoa(keys[0]) != id {
		t.Fatalf("EnsureCloudKey = %s; alice's cloud keys are %v", id, keys)
	}
	// Then it is reused.
	for range 3 {
		again, err := e.client.EnsureCloudKey(ctx, access.User{ID: strconv.Itoa(sim.DemoAliceID)})
		if err != nil || again != id {
			t.Fatalf("second EnsureCloudKey = %s, %v; want %s", again, err, id)
		}
	}
	// Erin has one from the start.
	if got, err := e.client.EnsureCloudKey(ctx, access.User{ID: strconv.Itoa(sim.DemoErinID)}); err != nil || got != strconv.Itoa(sim.DemoErinCloudKeyID) {
		t.Errorf("erin: %s, %v", got, err)
	}
	// Bob gets one too; the credential type is not looked up again.
	if _, err := e.client.EnsureCloudKey(ctx, access.User{ID: strconv.Itoa(sim.DemoBobID)}); err != nil {
		t.Fatal(err)
	}
	if keys := cloudKeyOf("bob@example.com"); len(keys) != 1 {
		t.Errorf("bob's cloud keys: %v", keys)
	}
	for op, want := range map[sim.Op]int64{
		sim.OpCreateCredential:    2, // alice, bob
		sim.OpListCredentialTypes: 1, // cached
		sim.OpListCredentials:     6,
		sim.OpLogin:               1,
	} {
		if got := e.sim.Calls(op); got != want {
			t.Errorf("Calls(%s) = %d, want %d", op, got, want)
		}
	}

	if _, err := e.client.EnsureCloudKey(ctx, access.User{ID: "999"}); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	if _, err := e.client.EnsureCloudKey(ctx, access.User{ID: "x"}); !errors.Is(err, ErrInvalidID) {
		t.Errorf("bad user id: %v, want ErrInvalidID", err)
	}
}

func TestEnsureCloudKeyWithoutCloudKeyType(t *testing.T) {
	seed := sim.DemoSeed()
	seed.CredentialTypes = slices.DeleteFunc(seed.CredentialTypes, func(ct sim.CredentialType) bool { return ct.ModelName == "cloudKey" })
	for i := range seed.Users {
		seed.Users[i].Credentials = nil
	}
	e := newEnv(t, seed)
	_, err := e.client.EnsureCloudKey(context.Background(), access.User{ID: strconv.Itoa(sim.DemoAliceID)})
	if err == nil || !strings.Contains(err.Error(), "no cloudKey credential type") {
		t.Errorf("err = %v", err)
	}
}

func TestListUserEntries(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	got, err := e.client.ListUserEntries(ctx, strconv.Itoa(sim.DemoAliceID))
	if err != nil {
		t.Fatal(err)
	}
	want := []access.Entry{
		{ID: "101", Name: "Lobby", Zone: "Ground Floor", Site: "Harbor View"},
		{ID: "102", Name: "Garage", Zone: "Ground Floor", Site: "Harbor View"},
		{ID: "103", Name: "Gym", Zone: "Amenities", Site: "Harbor View"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("alice's entries = %+v, want %+v", got, want)
	}
	if got, err := e.client.ListUserEntries(ctx, strconv.Itoa(sim.DemoBobID)); err != nil || got == nil || len(got) != 0 {
		t.Errorf("bob's entries = %#v, %v; want an empty list", got, err)
	}
	_, err = e.client.ListUserEntries(ctx, "999")
	var se *access.StatusError
	if !errors.Is(err, access.ErrNotFound) || !errors.As(err, &se) || se.Status != 404 || se.Op != "list user entries" {
		t.Errorf("unknown user: %v", err)
	}

	big := newEnv(t, sim.GenerateSeed(1, 1500))
	entries, err := big.client.ListUserEntries(ctx, strconv.Itoa(sim.LoadUserIDBase))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, en := range entries {
		ids[en.ID] = true
	}
	if len(entries) != 1500 || len(ids) != 1500 {
		t.Errorf("%d entries (%d distinct), want 1500", len(entries), len(ids))
	}
	if got := big.sim.Calls(sim.OpListUserEntries); got != 2 {
		t.Errorf("Calls(OpListUserEntries) = %d, want 2 pages", got)
	}
}

func TestUnlock(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	erin, erinKey := strconv.Itoa(sim.DemoErinID), strconv.Itoa(sim.DemoErinCloudKeyID)
	if err := e.client.Unlock(ctx, erin, erinKey, strconv.Itoa(sim.DemoLobbyID)); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if u := e.sim.Unlocks(); len(u) != 1 || u[0].UserID != sim.DemoErinID || u[0].EntryID != sim.DemoLobbyID || u[0].CredentialID != sim.DemoErinCloudKeyID {
		t.Fatalf("unlocks = %+v", u)
	}

	tests := []struct {
		name               string
		user, cred, entry  string
		want               error
		wantStatus         int
		wantBodyMentions   string
		wantNotUnavailable bool
	}{
		{"entry not assigned", erin, erinKey, "105", access.ErrDenied, 403, "ForbiddenError", true},
		{"suspended user", "203", "303", "101", access.ErrDenied, 403, "not active", true},
		{"not a cloud key", "201", "301", "101", access.ErrDenied, 403, "not a cloud key", true},
		{"another user's key", erin, "303", "101", access.ErrDenied, 403, "not a cloud key", true},
		{"unknown entry", erin, erinKey, "999", access.ErrNotFound, 404, "NotFoundError", true},
		{"unknown user", "999", erinKey, "101", access.ErrNotFound, 404, "NotFoundError", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.client.Unlock(ctx, tt.user, tt.cred, tt.entry)
			var se *access.StatusError
			if !errors.Is(err, tt.want) || !errors.As(err, &se) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if se.Status != tt.wantStatus || !strings.Contains(se.Body, tt.wantBodyMentions) || se.Op != "cloud-key unlock" {
				t.Errorf("StatusError = %+v", se)
			}
			if errors.Is(err, access.ErrUnavailable) {
				t.Errorf("%v matches ErrUnavailable", err)
			}
			if !strings.Contains(err.Error(), "openpath: unlock entry "+tt.entry) {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
	if n := len(e.sim.Unlocks()); n != 1 {
		t.Errorf("%d doors opened, want 1: refusals must not open anything", n)
	}
	if got, want := e.sim.Calls(sim.OpUnlock), int64(1+len(tests)); got != want {
		t.Errorf("Calls(OpUnlock) = %d, want %d: nothing is retried", got, want)
	}
}

func TestUnlockRejectsBadIDsWithoutCalling(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	bad := []string{"", "abc", "-1", "0", "007", "1.5", "1e3", "101 ", " 101", "../101", "101/x", "12345678901234567890"}
	for _, id := range bad {
		for i, args := range [][3]string{{id, "304", "101"}, {"204", id, "101"}, {"204", "304", id}} {
			t.Run(fmt.Sprintf("%q/%d", id, i), func(t *testing.T) {
				err := e.client.Unlock(context.Background(), args[0], args[1], args[2])
				if !errors.Is(err, ErrInvalidID) || !strings.Contains(err.Error(), strconv.Quote(id)) {
					t.Errorf("err = %v, want ErrInvalidID naming %q", err, id)
				}
			})
		}
	}
	if n := totalCalls(e.sim); n != 0 {
		t.Errorf("the simulator received %d requests, want none", n)
	}
}

func TestOrgID(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	configured := newClient(t, Config{BaseURL: e.url, OrgID: "1"})
	if _, err := configured.ListUserEntries(ctx, "201"); err != nil {
		t.Errorf("org 1 configured: %v", err)
	}
	other := newClient(t, Config{BaseURL: e.url, OrgID: "2"})
	if _, err := other.ListUserEntries(ctx, "201"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("org 2 configured: %v, want ErrNotFound", err)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/login" {
			w.WriteHeader(201)
			fmt.Fprint(w, `{"data":{"token":"t","tokenScopeList":[{"org":{"id":1}}]}}`)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := newClient(t, Config{BaseURL: srv.URL})
	err := c.Unlock(context.Background(), "1", "2", "3")
	var se *access.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusTemporaryRedirect {
		t.Errorf("err = %v, want a 307 StatusError", err)
	}
}
