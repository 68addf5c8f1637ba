package kisi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/identity"
)

// userItem is what cloudkey reads of Kisi's User.
type userItem struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	Email             string `json:"email"`
	AccessEnabled     bool   `json:"access_enabled"`
	SCIMAccessEnabled bool   `json:"scim_access_enabled"`
}

func (u userItem) user() access.User {
	st := access.StatusSuspended
	if u.AccessEnabled && u.SCIMAccessEnabled {
		st = access.StatusActive
	}
	return access.User{ID: strconv.FormatInt(u.ID, 10), Email: u.Email, Name: u.Name, Status: st}
}

// FindUserByEmail returns the one user whose email equals email in
// canonical form (identity.FoldEmail, as openpath compares: ASCII case
// only). It asks GET /users?email=…&limit=2 with the organisation key:
// whether Kisi's filter matches exactly or ignoring case is not
// confirmed, so the answers are compared here, and two are enough to tell
// one from several. None equal gives access.ErrNotFound, several
// access.ErrAmbiguous. The user is active when Kisi lets it open doors
// (access_enabled and scim_access_enabled), suspended otherwise.
func (c *Client) FindUserByEmail(ctx context.Context, email string) (access.User, error) {
	if email == "" {
		// An empty filter might match every user.
		return access.User{}, fmt.Errorf("kisi: find user: empty email: %w", access.ErrNotFound)
	}
	q := url.Values{"email": {email}, "limit": {"2"}}
	var users []userItem
	rq := call{op: "list users", method: http.MethodGet, path: "/users?" + q.Encode(), auth: c.orgKey, limiter: c.orgLimiter}
	if _, err := c.do(ctx, rq, &users); err != nil {
		return access.User{}, fmt.Errorf("kisi: find user %s: %w", email, err)
	}
	want := identity.FoldEmail(email)
	var found *userItem
	matches := 0
	for i := range users {
		if identity.FoldEmail(users[i].Email) == want {
			found = &users[i]
			matches++
		}
	}
	switch {
	case matches == 0:
		return access.User{}, fmt.Errorf("kisi: find user %s: %w", email, access.ErrNotFound)
	case matches > 1:
		return access.User{}, fmt.Errorf("kisi: find user %s: %d users have this email: %w", email, matches, access.ErrAmbiguous)
	}
	return found.user(), nil
}

// userByID looks a user up by id with the organisation key
// (GET /users/{id}), for the email a new login is made for.
func (c *Client) userByID(ctx context.Context, userID int64) (userItem, error) {
	var u userItem
	rq := call{op: "get user", method: http.MethodGet, path: "/users/" + strconv.FormatInt(userID, 10), auth: c.orgKey, limiter: c.orgLimiter}
	if _, err := c.do(ctx, rq, &u); err != nil {
		return userItem{}, err
	}
	return u, nil
}

var _ access.StatusSetter = (*Client)(nil)

// SetUserStatus suspends (access.StatusSuspended) or reactivates
// (access.StatusActive) a user with the organisation key:
// PATCH /users/{id} with {"user":{"access_enabled":false|true}}, 204.
// Kisi has no inactive status, so access.StatusInactive is refused
// unsent. Setting the flag a user already has is not an error. A user
// managed by SCIM stays unable to open doors while SCIM disables them,
// whatever access_enabled says: only SCIM can change that.
func (c *Client) SetUserStatus(ctx context.Context, userID string, status access.Status) error {
	id, err := parseID("user id", userID)
	if err != nil {
		return fmt.Errorf("kisi: set user status: %w", err)
	}
	var enabled string
	switch status {
	case access.StatusActive:
		enabled = "true"
	case access.StatusSuspended:
		enabled = "false"
	default:
		return fmt.Errorf("kisi: set status of user %d: %q is not A or S (Kisi has no inactive users)", id, status)
	}
	// The flag is a JSON literal, so the body needs no encoder.
	body := []byte(`{"user":{"access_enabled":` + enabled + `}}`)
	rq := call{op: "update user", method: http.MethodPatch, path: "/users/" + strconv.FormatInt(id, 10),
		body: body, auth: c.orgKey, limiter: c.orgLimiter, retry429: true}
	if _, err := c.do(ctx, rq, nil); err != nil {
		return fmt.Errorf("kisi: set status of user %d to %s: %w", id, status, err)
	}
	return nil
}
