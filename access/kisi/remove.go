package kisi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/cloudkey/cloudkey/access"
)

// DeleteLogins deletes at Kisi every device login this connection created
// on users' behalf (DELETE /logins/{id} with the organisation key, paced
// by its rate limit), and forgets each one deleted, here and in the
// LoginStore: it is what removing a Kisi connection does. A login Kisi no
// longer knows (404) counts as deleted. A login Kisi failed to delete is
// kept in the store, so that calling DeleteLogins again finishes the job;
// its failure is in the returned error, joined with the others, naming
// the login and its user (never a secret). When ctx ends, or the rate
// limit leaves no slot before its deadline, it stops and says how many
// are left.
//
// The connection should no longer serve: a user's login created while it
// runs may be missed.
func (c *Client) DeleteLogins(ctx context.Context) (deleted int, err error) {
	logins, listErr := c.logins.List(ctx)
	if listErr != nil && len(logins) == 0 {
		return 0, fmt.Errorf("kisi: delete logins of %s: %w", c.name, listErr)
	}
	var errs []error
	if listErr != nil {
		errs = append(errs, listErr)
	}
	for i, l := range logins {
		err := c.deleteLogin(ctx, l)
		if err == nil {
			deleted++
			continue
		}
		errs = append(errs, fmt.Errorf("login %d of user %d: %w", l.ID, l.UserID, err))
		if ctx.Err() != nil || errors.Is(err, ErrRateLimited) {
			if left := len(logins) - i - 1; left > 0 {
				errs = append(errs, fmt.Errorf("stopped with %d more logins not tried", left))
			}
			break
		}
	}
	if len(errs) > 0 {
		return deleted, fmt.Errorf("kisi: delete logins of %s: %d of %d deleted: %w", c.name, deleted, len(logins), errors.Join(errs...))
	}
	return deleted, nil
}

// deleteLogin deletes l at Kisi (a 404 is success) and then forgets it,
// unless the user has a newer login by then.
func (c *Client) deleteLogin(ctx context.Context, l Login) error {
	rq := call{op: "delete login", method: http.MethodDelete, path: "/logins/" + strconv.FormatInt(l.ID, 10),
		auth: c.orgKey, limiter: c.orgLimiter, retry429: true}
	_, err := c.do(ctx, rq, nil)
	if err != nil && !errors.Is(err, access.ErrNotFound) {
		return err
	}
	if s, ok := c.sessions.Peek(l.UserID); ok && s.loginID == l.ID {
		c.sessions.Remove(l.UserID)
	}
	cur, ok, err := c.logins.Get(ctx, l.UserID)
	switch {
	case err != nil:
		// Deleted at Kisi but not here: a retry finds it gone (404).
		return fmt.Errorf("deleted at Kisi; read the stored login: %w", err)
	case !ok || cur.ID != l.ID:
		return nil // forgotten already, or replaced by a new one
	}
	if err := c.logins.Delete(ctx, l.UserID); err != nil {
		return fmt.Errorf("deleted at Kisi; forget it: %w", err)
	}
	c.log.Debug("kisi: deleted a login made on a user's behalf", "system", c.name, "user", l.UserID, "login", l.ID)
	return nil
}
