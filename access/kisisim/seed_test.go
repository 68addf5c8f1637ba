package kisisim

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDemoSeedMatchesProduct checks DemoSeed against PRODUCT.md ("Access
// systems and properties"), through the API: each key sees its own
// organisation's locks, each user's login the locks the product names.
func TestDemoSeedMatchesProduct(t *testing.T) {
	f := demo(t)
	type org struct {
		key, name string
		locks     []string
		users     map[string][]string // email → lock names
	}
	want := []org{
		{DemoHarborAPIKey, "Harbor View Amenities", []string{"Pool", "Package Room"}, map[string][]string{
			"frank@example.com": {"Pool", "Package Room"},
			"gina@example.com":  {"Pool"},
		}},
		{DemoFoundryAPIKey, "Foundry Lofts", []string{"Front Door", "Bike Room"}, map[string][]string{
			"frank@example.com": {"Front Door"},
			"hank@example.com":  {"Front Door", "Bike Room"},
		}},
	}
	if DemoHarborAPIKey != "demo-kisi-api-key" || DemoFoundryAPIKey != "demo-kisi-foundry-key" {
		t.Fatal("demo API keys differ from PRODUCT.md")
	}
	for _, o := range want {
		t.Run(o.name, func(t *testing.T) {
			if got := lockNames(t, f, o.key); !slices.Equal(got, o.locks) {
				t.Errorf("locks %v, want %v", got, o.locks)
			}
			var places []placeJSON
			f.do(t, "GET", "/places", o.key, "").decode(t, &places)
			if len(places) != 1 || places[0].Organization.Name != o.name {
				t.Errorf("places %+v", places)
			}
			var users []userJSON
			f.do(t, "GET", "/users", o.key, "").decode(t, &users)
			if len(users) != len(o.users) {
				t.Errorf("%d users, want %d", len(users), len(o.users))
			}
			for _, u := range users {
				if !u.AccessEnabled || !u.SCIMAccessEnabled {
					t.Errorf("%s is not active", u.Email)
				}
			}
			for email, locks := range o.users {
				secret, _ := f.login(t, o.key, email)
				if got := lockNames(t, f, secret); !slices.Equal(got, locks) {
					t.Errorf("%s: locks %v, want %v", email, got, locks)
				}
			}
		})
	}
}

func lockNames(t *testing.T, f *fixture, secret string) []string {
	t.Helper()
	var locks []lockJSON
	f.do(t, "GET", "/locks", secret, "").decode(t, &locks)
	var names []string
	for _, l := range locks {
		if !l.Online || l.LockedDown || l.ReaderRestrictionEnabled || l.GeofenceRestrictionEnabled || !l.Configured {
			t.Errorf("lock %s is not a plain online lock", l.Name)
		}
		names = append(names, l.Name)
	}
	return names
}

func TestGenerateSeed(t *testing.T) {
	seed := GenerateSeed(50, 3)
	if err := seed.Validate(); err != nil {
		t.Fatal(err)
	}
	o := seed.Orgs[0]
	if len(seed.Orgs) != 1 || o.APIKey != LoadAPIKey || len(o.Users) != 50 || len(o.Locks) != 16 {
		t.Fatalf("orgs %d, users %d, locks %d", len(seed.Orgs), len(o.Users), len(o.Locks))
	}
	for i, u := range o.Users {
		if u.Email != LoadUserEmail(i) || u.ID != LoadUserIDBase+i || len(u.Access) != 3 {
			t.Fatalf("user %d: %+v", i, u)
		}
	}
	if LoadUserEmail(7) != "user7@load.example.com" {
		t.Fatal("email scheme differs from access/sim's")
	}
	if seed.RateLimit == nil || seed.RateLimit.PerSecond != 0 {
		t.Fatal("load seed has a rate limit")
	}
	if s := GenerateSeed(0, 0); len(s.Orgs[0].Users) != 0 || s.Validate() != nil {
		t.Fatal("empty load seed")
	}
}

func TestSeedValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(s *Seed)
		want   string
	}{
		{"no orgs", func(s *Seed) { s.Orgs = nil }, "no organisation"},
		{"duplicate id across orgs", func(s *Seed) { s.Orgs[1].Locks[0].ID = DemoPoolID }, "id 7011"},
		{"duplicate key", func(s *Seed) { s.Orgs[1].APIKey = DemoHarborAPIKey }, "API key"},
		{"no key", func(s *Seed) { s.Orgs[0].APIKey = "" }, "API key"},
		{"lock in another org's place", func(s *Seed) { s.Orgs[1].Locks[0].PlaceID = DemoHarborPlaceID }, "place"},
		{"access to another org's lock", func(s *Seed) { s.Orgs[1].Users[0].Access[0].LockID = DemoPoolID }, "lock 7011"},
		{"email twice in an org", func(s *Seed) { s.Orgs[0].Users[1].Email = "FRANK@example.com" }, "twice"},
		{"bad email", func(s *Seed) { s.Orgs[0].Users[1].Email = "gina" }, "not an email"},
		{"empty window", func(s *Seed) {
			now := time.Now()
			s.Orgs[0].Users[0].Access[0].ValidFrom, s.Orgs[0].Users[0].Access[0].ValidUntil = &now, &now
		}, "ends before"},
		{"bad rate limit", func(s *Seed) { s.RateLimit = &RateLimit{PerSecond: 5} }, "burst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DemoSeed()
			tt.change(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error with %q", err, tt.want)
			}
			if _, err := New(s); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	// Same email in two organisations is fine.
	if err := DemoSeed().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSeedJSON(t *testing.T) {
	in := DemoSeed()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in.Orgs[0].Users[0].Access[0].ValidFrom = &from
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Seed
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(out)
	if string(b) != string(b2) || !strings.Contains(string(b), `"apiKey":"demo-kisi-api-key"`) {
		t.Fatalf("round trip: %s\n%s", b, b2)
	}
	s, err := New(out)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.User(DemoHarborOrgID, DemoFrankEmail)
	if err != nil || u.Access[0].ValidFrom == nil || !u.Access[0].ValidFrom.Equal(from) {
		t.Fatalf("User() = %+v, %v", u, err)
	}
}
