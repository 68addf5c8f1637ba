package loadtest

import (
	"io"
	"testing"

	"github.com/cloudkey/cloudkey/access/sim"
)

func TestParseFlagsProperties(t *testing.T) {
	c, err := ParseFlags(nil, noEnv, io.Discard)
	if err != nil || c.Properties != 1 {
		t.Fatalf("default --properties = %d, %v; want 1", c.Properties, err)
	}
	for _, args := range [][]string{
		{"--properties", "1"},
		{"--properties", "1000", "--users", "1000"},
		{"--properties", "3", "--users", "3", "--scenario", "list,unlock,unlock-multi:rest,mix", "--baseline"},
		// A single property may run with what a portfolio cannot.
		{"--properties", "1", "--access-url", "http://127.0.0.1:8181"},
		{"--properties", "1", "--scenario", "unlock-cross"},
	} {
		if _, err := ParseFlags(args, noEnv, io.Discard); err != nil {
			t.Errorf("ParseFlags(%q): %v", args, err)
		}
	}
}

func TestSplitSeedGivesEachUserOneProperty(t *testing.T) {
	seed := sim.GenerateSeed(10, 3)
	parts := splitSeed(seed, 3)
	seen := map[string]int{}
	for k, p := range parts {
		if err := p.Validate(); err != nil {
			t.Fatalf("property %d: %v", k, err)
		}
		if len(p.Entries) != len(seed.Entries) || p.ServiceAccount != seed.ServiceAccount {
			t.Errorf("property %d: %d entries, service account %+v", k, len(p.Entries), p.ServiceAccount)
		}
		for _, u := range p.Users {
			seen[u.Email]++
			if i := u.ID - sim.LoadUserIDBase; i%3 != k || u.Email != sim.LoadUserEmail(i) {
				t.Errorf("user %d (%s) at property %d, want %d", i, u.Email, k, i%3)
			}
		}
	}
	if len(seen) != 10 {
		t.Errorf("%d users over the properties, want 10", len(seen))
	}
	for e, n := range seen {
		if n != 1 {
			t.Errorf("%s is at %d properties", e, n)
		}
	}
	if got := []int{len(parts[0].Users), len(parts[1].Users), len(parts[2].Users)}; got[0] != 4 || got[1] != 3 || got[2] != 3 {
		t.Errorf("users per property = %v, want [4 3 3]", got)
	}
	if portfolioProperty(0) != "p0000" || portfolioProperty(12) != "p0012" {
		t.Errorf("property ids %q, %q", portfolioProperty(0), portfolioProperty(12))
	}
}
