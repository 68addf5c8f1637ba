package openpath

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cloudkey/cloudkey/access"
)

// directoryParallel bounds the entries requests ListUsers has in flight:
// Openpath has no bulk "users with entries" list, so one request per
// active user is made, a few at a time to stay within its rate limits.
const directoryParallel = 4

var (
	_ access.Directory    = (*Client)(nil)
	_ access.StatusSetter = (*Client)(nil)
)

// ListUsers lists the organisation's users (GET /orgs/{orgId}/users,
// every page) and, for each active user, whether they have an entry
// (GET /users/{userId}/entries). Suspended and inactive users' entries are
// not read: they cannot unlock anyway, so HasEntries is false for them. It
// creates nothing: no credential for a user who never used the app.
func (c *Client) ListUsers(ctx context.Context) ([]access.DirectoryUser, error) {
	users, err := listAll[userItem](ctx, c, "list users", "/users", url.Values{"limit": {pageSize}})
	if err != nil {
		return nil, fmt.Errorf("openpath: list users: %w", err)
	}
	out := make([]access.DirectoryUser, len(users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(directoryParallel)
	for i, u := range users {
		name := u.Identity.FullName
		if name == "" {
			name = strings.TrimSpace(u.Identity.FirstName + " " + u.Identity.LastName)
		}
		id := strconv.FormatInt(u.ID, 10)
		out[i] = access.DirectoryUser{ID: id, Email: u.Identity.Email, Name: name, Status: access.Status(u.Status)}
		if out[i].Status != access.StatusActive {
			continue
		}
		g.Go(func() error {
			items, err := listAll[entryItem](gctx, c, "list user entries", "/users/"+id+"/entries", nil)
			if err != nil {
				return fmt.Errorf("openpath: entries of user %s: %w", id, err)
			}
			out[i].HasEntries = len(items) > 0
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
