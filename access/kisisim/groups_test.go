package kisisim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

// TestRoleAssignmentsAndGroupLocks reads who may open what through
// /role_assignments and /group_locks, every answer validated against
// Kisi's spec: one group per lock, one assignment per grant.
func TestRoleAssignmentsAndGroupLocks(t *testing.T) {
	f := demo(t)
	type ra struct {
		AssigneeID  int    `json:"assignee_id"`
		AppliesToID int    `json:"applies_to_id"`
		Type        string `json:"applies_to_type"`
	}
	assignments := func(t *testing.T, key, query string) []string {
		t.Helper()
		a := f.do(t, "GET", "/role_assignments"+query, key, "")
		if a.status != http.StatusOK {
			t.Fatalf("GET /role_assignments%s = %d %s", query, a.status, a.body)
		}
		var got []ra
		a.decode(t, &got)
		var out []string
		for _, r := range got {
			out = append(out, fmt.Sprintf("%d>%s:%d", r.AssigneeID, r.Type, r.AppliesToID))
		}
		return out
	}
	frank, gina := strconv.Itoa(DemoHarborFrankID), strconv.Itoa(DemoGinaID)
	pool, pkg := strconv.Itoa(GroupID(DemoPoolID)), strconv.Itoa(GroupID(DemoPackageRoomID))
	tests := []struct {
		name, key, query string
		want             []string
	}{
		{"every grant", DemoHarborAPIKey, "", []string{frank + ">Group:" + pool, frank + ">Group:" + pkg, gina + ">Group:" + pool}},
		{"users", DemoHarborAPIKey, "?assignee_type=User&applies_to_type=Group", []string{frank + ">Group:" + pool, frank + ">Group:" + pkg, gina + ">Group:" + pool}},
		{"one user", DemoHarborAPIKey, "?assignee_type=User&assignee_id=" + gina, []string{gina + ">Group:" + pool}},
		{"one group", DemoHarborAPIKey, "?group_id=" + pkg, []string{frank + ">Group:" + pkg}},
		{"paged", DemoHarborAPIKey, "?limit=1&offset=2", []string{gina + ">Group:" + pool}},
		{"teams have none", DemoHarborAPIKey, "?assignee_type=Team", nil},
		{"places have none", DemoHarborAPIKey, "?applies_to_type=Place", nil},
		{"another organisation's", DemoFoundryAPIKey, "?assignee_id=" + gina, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := assignments(t, tt.key, tt.query); !slices.Equal(got, tt.want) {
				t.Errorf("assignments = %v, want %v", got, tt.want)
			}
		})
	}
	locks := []struct {
		name, key, group string
		want             []int
	}{
		{"the group's lock", DemoHarborAPIKey, pool, []int{DemoPoolID}},
		{"another organisation's group", DemoFoundryAPIKey, pool, nil},
		{"no such group", DemoHarborAPIKey, "1", nil},
	}
	for _, tt := range locks {
		t.Run("group locks: "+tt.name, func(t *testing.T) {
			a := f.do(t, "GET", "/group_locks?group_id="+tt.group, tt.key, "")
			if a.status != http.StatusOK {
				t.Fatalf("GET /group_locks = %d %s", a.status, a.body)
			}
			var got []struct {
				LockID int `json:"lock_id"`
			}
			a.decode(t, &got)
			var ids []int
			for _, g := range got {
				ids = append(ids, g.LockID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("locks = %v, want %v", ids, tt.want)
			}
		})
	}
	// A user's own login may not list either.
	secret, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	for _, path := range []string{"/role_assignments", "/group_locks?group_id=" + pool} {
		if a := f.do(t, "GET", path, secret, ""); a.status != http.StatusForbidden {
			t.Errorf("GET %s with a user's login = %d, want 403", path, a.status)
		}
	}
	// group_id is required by the spec: sent without it, the simulator says so.
	if a := f.send(t, f.raw, "GET", "/group_locks", DemoHarborAPIKey, ""); a.status != http.StatusBadRequest {
		t.Errorf("GET /group_locks without group_id = %d, want 400", a.status)
	}
}
