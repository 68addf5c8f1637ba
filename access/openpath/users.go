package openpath

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/identity"
)

type userItem struct {
	ID       int64  `json:"id"`
	Status   string `json:"status"`
	Identity struct {
		Email     string `json:"email"`
		FirstName string `json:"firstName"`
		LastName  string `json:"lastName"`
		FullName  string `json:"fullName"`
	} `json:"identity"`
}

// FindUserByEmail returns the one user whose email equals email in
// canonical form (identity.FoldEmail: ASCII case only, so a look-alike such
// as the Kelvin sign never matches a k). Openpath's identity.email filter matches by
// substring (a search for alice@example.com also finds
// malice@example.com), so the answers are compared here: none equal gives
// access.ErrNotFound, several give access.ErrAmbiguous.
func (c *Client) FindUserByEmail(ctx context.Context, email string) (access.User, error) {
	if email == "" {
		// An empty filter value would match every user.
		return access.User{}, fmt.Errorf("openpath: find user: empty email: %w", access.ErrNotFound)
	}
	query := url.Values{"filter": {"identity.email:(" + email + ")"}, "limit": {pageSize}}
	users, err := listAll[userItem](ctx, c, "list users", "/users", query)
	if err != nil {
		return access.User{}, fmt.Errorf("openpath: find user %s: %w", email, err)
	}
	var found *userItem
	matches := 0
	want := identity.FoldEmail(email)
	for i := range users {
		if identity.FoldEmail(users[i].Identity.Email) == want {
			found = &users[i]
			matches++
		}
	}
	switch matches {
	case 0:
		return access.User{}, fmt.Errorf("openpath: find user %s: %w", email, access.ErrNotFound)
	case 1:
	default:
		return access.User{}, fmt.Errorf("openpath: find user %s: %d users have this email: %w", email, matches, access.ErrAmbiguous)
	}
	name := found.Identity.FullName
	if name == "" {
		name = strings.TrimSpace(found.Identity.FirstName + " " + found.Identity.LastName)
	}
	return access.User{
		ID:     strconv.FormatInt(found.ID, 10),
		Email:  found.Identity.Email,
		Name:   name,
		Status: access.Status(found.Status),
	}, nil
}
