package kisisim

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

// The simulator keeps a user's access per lock; Kisi grants it through
// groups. Each lock is therefore shown as one group ("<lock> access",
// GroupID), each grant as one role assignment of its user to that group
// (roleAssignmentID), and each group's one lock as one group lock
// (groupLockID): what a reader of /role_assignments and /group_locks
// expects, with nothing stored twice.

// groupIDBase offsets a lock's id into its group's id.
const groupIDBase = 900_000

// GroupID is the id of the group that grants lockID.
func GroupID(lockID int) int { return groupIDBase + lockID }

func roleAssignmentID(userID, lockID int) int64 { return int64(userID)*1_000_000 + int64(lockID) }
func groupLockID(lockID int) int                { return 800_000 + lockID }

const (
	resourceTypeGroup          = "Group"
	resourceTypeRoleAssignment = "RoleAssignment"
	resourceTypeGroupLock      = "GroupLock"
	maxRoleAssignmentsLimit    = 250
	maxGroupLocksLimit         = 250
	roleGroupBasic             = "group_basic"
)

type groupRefJSON struct {
	ID           int    `json:"id"`
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
}

type userRefJSON struct {
	ID           int    `json:"id"`
	ResourceType string `json:"resource_type"`
	Email        string `json:"email"`
	Name         string `json:"name"`
}

// roleAssignmentJSON is a Group Role Assignment of Kisi's description.
type roleAssignmentJSON struct {
	ID             int64        `json:"id"`
	ResourceType   string       `json:"resource_type"`
	CreatedAt      string       `json:"created_at"`
	UpdatedAt      string       `json:"updated_at"`
	RoleID         string       `json:"role_id"`
	Notify         bool         `json:"notify"`
	AppliesToType  string       `json:"applies_to_type"`
	AppliesToID    int          `json:"applies_to_id"`
	AppliesTo      groupRefJSON `json:"applies_to"`
	AssigneeType   string       `json:"assignee_type"`
	AssigneeID     int          `json:"assignee_id"`
	Assignee       userRefJSON  `json:"assignee"`
	CreatedByType  *string      `json:"created_by_type"`
	CreatedByID    *int         `json:"created_by_id"`
	UserID         *int         `json:"user_id"`
	AssigneeTeamID *int         `json:"assignee_team_id"`
	GuestID        *int         `json:"guest_id"`
	IssuedByID     *int         `json:"issued_by_id"`
	Type           string       `json:"type"`
	Scope          string       `json:"scope"`
	GroupID        int          `json:"group_id"`
	Group          groupRefJSON `json:"group"`
	ValidFrom      *string      `json:"valid_from"`
	ValidUntil     *string      `json:"valid_until"`
}

type lockRefJSON struct {
	ID          int     `json:"id"`
	Description *string `json:"description"`
	Name        string  `json:"name"`
}

type placeNameJSON struct {
	ID           int    `json:"id"`
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
}

type groupLockJSON struct {
	ID           int           `json:"id"`
	ResourceType string        `json:"resource_type"`
	CreatedAt    string        `json:"created_at"`
	UpdatedAt    string        `json:"updated_at"`
	GroupID      int           `json:"group_id"`
	Group        groupRefJSON  `json:"group"`
	LockID       int           `json:"lock_id"`
	Lock         lockRefJSON   `json:"lock"`
	PlaceID      int           `json:"place_id"`
	Place        placeNameJSON `json:"place"`
}

func groupRef(l *lock) groupRefJSON {
	return groupRefJSON{ID: GroupID(l.id), ResourceType: resourceTypeGroup, Name: l.name + " access"}
}

// fetchRoleAssignments serves GET /role_assignments with the
// organisation's API key: one Group role assignment per grant of a user of
// the organisation, users in seed order and each user's locks by id.
// assignee_type, applies_to_type, assignee_id (or the deprecated user_id)
// and group_id filter; other assignee or target types have none.
func (s *Sim) fetchRoleAssignments(w http.ResponseWriter, r *http.Request, caller *login) {
	limit, offset, ok := page(w, r, maxRoleAssignmentsLimit)
	if !ok {
		return
	}
	if !caller.orgKey {
		writeError(w, http.StatusForbidden, codeForbidden, "Only an organization's administrators can list its role assignments.")
		return
	}
	q := r.URL.Query()
	none := (q.Has("assignee_type") && q.Get("assignee_type") != "User") ||
		(q.Has("applies_to_type") && q.Get("applies_to_type") != "Group")
	userFilter, groupFilter := -1, -1
	for _, name := range []string{"assignee_id", "user_id"} {
		if v := q.Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, codeBadRequest, name+" must be an integer")
				return
			}
			userFilter = n
		}
	}
	if v := q.Get("group_id"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "group_id must be an integer")
			return
		}
		groupFilter = n
	}
	// Only the page asked for is rendered: a reader pages through
	// thousands of assignments.
	out, total := []roleAssignmentJSON{}, 0
	s.mu.RLock()
	if !none {
		for _, u := range caller.user.org.users {
			if userFilter >= 0 && u.id != userFilter {
				continue
			}
			ids := make([]int, 0, len(u.access))
			for id := range u.access {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				l := s.locksByID[id]
				if l == nil || l.org != caller.user.org || (groupFilter >= 0 && GroupID(id) != groupFilter) {
					continue
				}
				if total >= offset && total < offset+limit {
					out = append(out, s.roleAssignmentToJSON(u, l, u.access[id]))
				}
				total++
			}
		}
	}
	s.mu.RUnlock()
	writePage(w, out, limit, offset, total)
}

func (s *Sim) roleAssignmentToJSON(u *user, l *lock, g grant) roleAssignmentJSON {
	uid := u.id
	ref := groupRef(l)
	j := roleAssignmentJSON{
		ID: roleAssignmentID(u.id, l.id), ResourceType: resourceTypeRoleAssignment,
		CreatedAt: s.stamp, UpdatedAt: s.stamp, RoleID: roleGroupBasic,
		AppliesToType: resourceTypeGroup, AppliesToID: ref.ID, AppliesTo: ref,
		AssigneeType: resourceTypeUser, AssigneeID: u.id,
		Assignee: userRefJSON{ID: u.id, ResourceType: resourceTypeUser, Email: u.email, Name: u.name},
		UserID:   &uid, Type: "group", Scope: "group", GroupID: ref.ID, Group: ref,
	}
	j.ValidFrom = optionalTime(g.from)
	j.ValidUntil = optionalTime(g.until)
	return j
}

func optionalTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := timestamp(t)
	return &s
}

// fetchGroupLocks serves GET /group_locks?group_id=… with the
// organisation's API key: the group's one lock (none for another
// organisation's group or an unknown one), lock_id filtering.
func (s *Sim) fetchGroupLocks(w http.ResponseWriter, r *http.Request, caller *login) {
	limit, offset, ok := page(w, r, maxGroupLocksLimit)
	if !ok {
		return
	}
	if !caller.orgKey {
		writeError(w, http.StatusForbidden, codeForbidden, "Only an organization's administrators can list group locks.")
		return
	}
	q := r.URL.Query()
	gid, err := strconv.Atoi(q.Get("group_id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "group_id is required and must be an integer")
		return
	}
	var out []groupLockJSON
	if l := s.locksByID[gid-groupIDBase]; l != nil && l.org == caller.user.org {
		if v := q.Get("lock_id"); v == "" || v == strconv.Itoa(l.id) {
			out = append(out, groupLockJSON{
				ID: groupLockID(l.id), ResourceType: resourceTypeGroupLock, CreatedAt: s.stamp, UpdatedAt: s.stamp,
				GroupID: gid, Group: groupRef(l), LockID: l.id, Lock: lockRefJSON{ID: l.id, Name: l.name},
				PlaceID: l.place.id, Place: placeNameJSON{ID: l.place.id, ResourceType: resourceTypePlace, Name: l.place.name},
			})
		}
	}
	if out == nil {
		out = []groupLockJSON{}
	}
	lo, hi := window(len(out), limit, offset)
	writePage(w, out[lo:hi], limit, offset, len(out))
}
