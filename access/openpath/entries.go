package openpath

import (
	"context"
	"fmt"
	"strconv"

	"github.com/cloudkey/cloudkey/access"
)

type entryItem struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Zone *struct {
		Name string `json:"name"`
		Site *struct {
			Name string `json:"name"`
		} `json:"site"`
	} `json:"zone"`
}

// ListUserEntries lists the entries the user may open
// (GET /orgs/{orgId}/users/{userId}/entries, every page).
func (c *Client) ListUserEntries(ctx context.Context, userID string) ([]access.Entry, error) {
	if err := checkID("user id", userID); err != nil {
		return nil, fmt.Errorf("openpath: entries: %w", err)
	}
	items, err := listAll[entryItem](ctx, c, "list user entries", "/users/"+userID+"/entries", nil)
	if err != nil {
		return nil, fmt.Errorf("openpath: entries of user %s: %w", userID, err)
	}
	return toEntries(items), nil
}

func toEntries(items []entryItem) []access.Entry {
	entries := make([]access.Entry, len(items))
	for i, it := range items {
		e := access.Entry{ID: strconv.FormatInt(it.ID, 10), Name: it.Name}
		if it.Zone != nil {
			e.Zone = it.Zone.Name
			if it.Zone.Site != nil {
				e.Site = it.Zone.Site.Name
			}
		}
		entries[i] = e
	}
	return entries
}
