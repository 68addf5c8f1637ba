package openpath

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/identity"
)

// serviceKey is the service account's own user and its cloud-key
// credential, on which guest unlock tokens are issued.
type serviceKey struct {
	userID string
	credID string
}

// serviceUser returns the service account's user id in the org: the one
// the login's tokenScopeList names or, when it names none, the user whose
// email is the login email.
func (c *Client) serviceUser(ctx context.Context) (string, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return "", err
	}
	if tok.user != "" {
		return tok.user, nil
	}
	u, err := c.FindUserByEmail(ctx, identity.FoldEmail(c.email))
	if errors.Is(err, access.ErrNotFound) {
		return "", fmt.Errorf("%w: no user has the login email %s", access.ErrNoServiceUser, c.email)
	}
	if err != nil {
		return "", err
	}
	return u.ID, nil
}

// serviceKeyFor returns the service account's user and cloud key, creating
// the cloud key the first time if the account has none. The answer is
// cached; concurrent first callers share one lookup.
func (c *Client) serviceKeyFor(ctx context.Context) (*serviceKey, error) {
	if k := c.service.Load(); k != nil {
		return k, nil
	}
	c.serviceMu.Lock()
	defer c.serviceMu.Unlock()
	if k := c.service.Load(); k != nil {
		return k, nil
	}
	userID, err := c.serviceUser(ctx)
	if err != nil {
		return nil, fmt.Errorf("service account: %w", err)
	}
	credID, err := c.cloudKey(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("service account: %w", err)
	}
	k := &serviceKey{userID: userID, credID: credID}
	c.service.Store(k)
	return k, nil
}

// forgetServiceKey drops k after Openpath refused it (the credential was
// deleted, the user suspended or removed), so the next call looks again.
func (c *Client) forgetServiceKey(k *serviceKey) {
	c.service.CompareAndSwap(k, nil)
}

// ServiceEntries lists the entries the service account may open
// (GET /orgs/{orgId}/users/{userId}/entries for its own user).
func (c *Client) ServiceEntries(ctx context.Context) ([]access.Entry, error) {
	userID, err := c.serviceUser(ctx)
	if err != nil {
		return nil, fmt.Errorf("openpath: service account entries: %w", err)
	}
	return c.ListUserEntries(ctx, userID)
}

// ListOrgEntries lists every entry of the organisation
// (GET /orgs/{orgId}/entries, every page).
func (c *Client) ListOrgEntries(ctx context.Context) ([]access.Entry, error) {
	items, err := listAll[entryItem](ctx, c, "list entries", "/entries", url.Values{"limit": {pageSize}})
	if err != nil {
		return nil, fmt.Errorf("openpath: entries of the org: %w", err)
	}
	return toEntries(items), nil
}

// SetUserStatus sets a user's status (PUT /orgs/{orgId}/users/{userId}/status,
// 204). Setting the status a user already has is not an error, so a
// repeated call is harmless.
func (c *Client) SetUserStatus(ctx context.Context, userID string, status access.Status) error {
	if err := checkID("user id", userID); err != nil {
		return fmt.Errorf("openpath: set user status: %w", err)
	}
	switch status {
	case access.StatusActive, access.StatusSuspended, access.StatusInactive:
	default:
		return fmt.Errorf("openpath: set user status: %q is not A, S or I", status)
	}
	// status is one letter, so the body needs no encoder.
	body := []byte(`{"status":"` + string(status) + `"}`)
	rq := call{op: "set user status", method: "PUT", path: "/users/" + userID + "/status", body: body}
	if err := c.do(ctx, rq, nil); err != nil {
		return fmt.Errorf("openpath: set status of user %s to %s: %w", userID, status, err)
	}
	return nil
}
