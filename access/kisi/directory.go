package kisi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

// usersPageSize is GET /users' largest page.
const usersPageSize = 100

var _ access.Directory = (*Client)(nil)

// roleAssignmentItem is what the directory reads of a role assignment.
type roleAssignmentItem struct {
	AppliesToType string     `json:"applies_to_type"`
	AppliesToID   int64      `json:"applies_to_id"`
	AssigneeType  string     `json:"assignee_type"`
	AssigneeID    int64      `json:"assignee_id"`
	ValidFrom     *time.Time `json:"valid_from"`
	ValidUntil    *time.Time `json:"valid_until"`
}

// groupLockItem is what the directory reads of a group lock.
type groupLockItem struct {
	LockID  int64 `json:"lock_id"`
	PlaceID int64 `json:"place_id"`
}

// ListUsers lists the organisation's users (GET /users, every page) with
// the organisation key, and whether each has a door of this connection:
// a role assignment in force on the organisation or one of the
// connection's places, or on a group with at least one lock of those
// places (GET /role_assignments, then GET /group_locks once per group).
// It never creates a login: a user who never used the app stays unknown
// to Kisi's login list.
func (c *Client) ListUsers(ctx context.Context) ([]access.DirectoryUser, error) {
	users, err := listPages[userItem](ctx, c, call{op: "list users", method: http.MethodGet, path: "/users", auth: c.orgKey, limiter: c.orgLimiter}, usersPageSize)
	if err != nil {
		return nil, fmt.Errorf("kisi: list users: %w", err)
	}
	places, err := c.placeSet(ctx)
	if err != nil {
		return nil, fmt.Errorf("kisi: list users: %w", err)
	}
	ras, err := listAll[roleAssignmentItem](ctx, c, call{op: "list role assignments", method: http.MethodGet,
		path: "/role_assignments?assignee_type=User", auth: c.orgKey, limiter: c.orgLimiter})
	if err != nil {
		return nil, fmt.Errorf("kisi: list users' role assignments: %w", err)
	}
	now := time.Now()
	groupsOf := map[int64][]int64{}
	hasDoor := map[int64]bool{}
	for _, ra := range ras {
		if ra.AssigneeType != "User" || (ra.ValidFrom != nil && now.Before(*ra.ValidFrom)) || (ra.ValidUntil != nil && !now.Before(*ra.ValidUntil)) {
			continue
		}
		switch ra.AppliesToType {
		case "Organization":
			hasDoor[ra.AssigneeID] = true
		case "Place":
			if places[ra.AppliesToID] {
				hasDoor[ra.AssigneeID] = true
			}
		case "Group":
			groupsOf[ra.AssigneeID] = append(groupsOf[ra.AssigneeID], ra.AppliesToID)
		}
	}
	// groupHasLock caches each group's answer: many users share a group.
	groupHasLock := map[int64]bool{}
	lookup := func(gid int64) (bool, error) {
		if v, ok := groupHasLock[gid]; ok {
			return v, nil
		}
		gls, err := listAll[groupLockItem](ctx, c, call{op: "list group locks", method: http.MethodGet,
			path: "/group_locks?group_id=" + strconv.FormatInt(gid, 10), auth: c.orgKey, limiter: c.orgLimiter})
		if err != nil {
			return false, fmt.Errorf("kisi: list the locks of group %d: %w", gid, err)
		}
		v := false
		for _, gl := range gls {
			if places[gl.PlaceID] {
				v = true
				break
			}
		}
		groupHasLock[gid] = v
		return v, nil
	}
	out := make([]access.DirectoryUser, 0, len(users))
	for _, u := range users {
		au := u.user()
		d := access.DirectoryUser{ID: au.ID, Email: au.Email, Name: au.Name, Status: au.Status, HasEntries: hasDoor[u.ID]}
		for _, gid := range groupsOf[u.ID] {
			if d.HasEntries {
				break
			}
			if d.HasEntries, err = lookup(gid); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}
