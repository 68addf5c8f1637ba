package kisi

import (
	"context"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/kisisim"
)

func TestListUsers(t *testing.T) {
	tests := []struct {
		name  string
		seed  func() kisisim.Seed
		key   string
		setup func(t *testing.T, s *kisisim.Server)
		want  []access.DirectoryUser
	}{
		{
			name: "demo harbor", seed: quietSeed, key: kisisim.DemoHarborAPIKey,
			want: []access.DirectoryUser{
				{ID: id(kisisim.DemoHarborFrankID), Email: kisisim.DemoFrankEmail, Name: "Frank", Status: access.StatusActive, HasEntries: true},
				{ID: id(kisisim.DemoGinaID), Email: kisisim.DemoGinaEmail, Name: "Gina", Status: access.StatusActive, HasEntries: true},
			},
		},
		{
			name: "suspended and without doors", seed: quietSeed, key: kisisim.DemoHarborAPIKey,
			setup: func(t *testing.T, s *kisisim.Server) {
				if err := s.SetUserAccess(kisisim.DemoHarborOrgID, kisisim.DemoFrankEmail, false); err != nil {
					t.Fatal(err)
				}
				if err := s.Revoke(kisisim.DemoGinaEmail, kisisim.DemoPoolID); err != nil {
					t.Fatal(err)
				}
			},
			want: []access.DirectoryUser{
				{ID: id(kisisim.DemoHarborFrankID), Email: kisisim.DemoFrankEmail, Name: "Frank", Status: access.StatusSuspended, HasEntries: true},
				{ID: id(kisisim.DemoGinaID), Email: kisisim.DemoGinaEmail, Name: "Gina", Status: access.StatusActive, HasEntries: false},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.seed(), tt.key, Config{})
			if tt.setup != nil {
				tt.setup(t, e.srv)
			}
			got, err := e.client.ListUsers(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ListUsers = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("user %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			for _, r := range e.sent() {
				if r.method != "GET" {
					t.Errorf("ListUsers sent %s %s: it must only read", r.method, r.path)
				}
			}
		})
	}
}

// TestListUsersPages reads a directory larger than a page of users and of
// role assignments, and asks each group's locks once.
func TestListUsersPages(t *testing.T) {
	const n = 230
	e := newEnv(t, kisisim.GenerateSeed(n, 2), kisisim.LoadAPIKey, Config{})
	got, err := e.client.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("ListUsers returned %d users, want %d", len(got), n)
	}
	seen := map[string]bool{}
	for i, u := range got {
		if u.Email != kisisim.LoadUserEmail(i) || !u.HasEntries || u.Status != access.StatusActive {
			t.Errorf("user %d = %+v", i, u)
		}
		seen[u.ID] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct ids, want %d", len(seen), n)
	}
	if calls := e.srv.Calls(kisisim.OpFetchUsers); calls != 3 {
		t.Errorf("GET /users called %d times, want 3 pages of 100", calls)
	}
	if calls := e.srv.Calls(kisisim.OpFetchRoleAssignments); calls != 2 {
		t.Errorf("GET /role_assignments called %d times, want 2 pages of 250", calls)
	}
	if calls, groups := e.srv.Calls(kisisim.OpFetchGroupLocks), int64(16); calls > groups {
		t.Errorf("GET /group_locks called %d times, want at most once per group (%d)", calls, groups)
	}
	if e.srv.Calls(kisisim.OpCreateLogin) != 0 {
		t.Error("ListUsers created a login")
	}
}
