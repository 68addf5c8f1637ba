package openpath

import (
	"context"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
)

func TestListUsers(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *sim.Sim)
		want  map[string]access.DirectoryUser // by email
	}{
		{
			name: "demo",
			want: map[string]access.DirectoryUser{
				"alice@example.com":  {ID: "201", Name: "Alice Anders", Status: access.StatusActive, HasEntries: true},
				"bob@example.com":    {ID: "202", Name: "Bob Brandt", Status: access.StatusActive},
				"carol@example.com":  {ID: "203", Name: "Carol Castro", Status: access.StatusSuspended},
				"erin@example.com":   {ID: "204", Name: "Erin Ekström", Status: access.StatusActive, HasEntries: true},
				"frank@example.com":  {ID: "205", Name: "Frank Fischer", Status: access.StatusActive, HasEntries: true},
				"bot@cloudkey.local": {ID: "200", Name: "Envoy Bot", Status: access.StatusActive, HasEntries: true},
			},
		},
		{
			name: "changed after seeding",
			setup: func(t *testing.T, s *sim.Sim) {
				if err := s.UnassignEntry("frank@example.com", 101); err != nil {
					t.Fatal(err)
				}
				if err := s.AssignEntry("bob@example.com", 105); err != nil {
					t.Fatal(err)
				}
				if err := s.SetUserStatus("alice@example.com", access.StatusSuspended); err != nil {
					t.Fatal(err)
				}
			},
			want: map[string]access.DirectoryUser{
				"alice@example.com":  {ID: "201", Name: "Alice Anders", Status: access.StatusSuspended},
				"bob@example.com":    {ID: "202", Name: "Bob Brandt", Status: access.StatusActive, HasEntries: true},
				"carol@example.com":  {ID: "203", Name: "Carol Castro", Status: access.StatusSuspended},
				"erin@example.com":   {ID: "204", Name: "Erin Ekström", Status: access.StatusActive, HasEntries: true},
				"frank@example.com":  {ID: "205", Name: "Frank Fischer", Status: access.StatusActive},
				"bot@cloudkey.local": {ID: "200", Name: "Envoy Bot", Status: access.StatusActive, HasEntries: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sim.DemoSeed())
			if tt.setup != nil {
				tt.setup(t, e.sim)
			}
			got, err := e.client.ListUsers(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ListUsers = %+v, want %d users", got, len(tt.want))
			}
			for _, u := range got {
				w := tt.want[u.Email]
				w.Email = u.Email
				if u != w {
					t.Errorf("%s = %+v, want %+v", u.Email, u, w)
				}
			}
			if n := e.sim.Calls(sim.OpCreateCredential); n != 0 {
				t.Errorf("ListUsers created %d credentials", n)
			}
		})
	}
}

// TestListUsersPages reads more users than one page holds, with one
// entries request per active user and none for a suspended one.
func TestListUsersPages(t *testing.T) {
	const n = 1500
	seed := sim.GenerateSeed(n, 1)
	seed.Users[7].Status = access.StatusSuspended
	e := newEnv(t, seed)
	got, err := e.client.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("ListUsers returned %d users, want %d", len(got), n)
	}
	for i, u := range got {
		if u.Email != sim.LoadUserEmail(i) || u.HasEntries != (i != 7) {
			t.Errorf("user %d = %+v", i, u)
		}
	}
	if calls := e.sim.Calls(sim.OpListUsers); calls != 2 {
		t.Errorf("list users called %d times, want 2 pages of 1000", calls)
	}
	if calls := e.sim.Calls(sim.OpListUserEntries); calls != n-1 {
		t.Errorf("user entries called %d times, want %d (not for the suspended user)", calls, n-1)
	}
}
