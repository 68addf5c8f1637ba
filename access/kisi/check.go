package kisi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

// CheckTimeout bounds Check when its context has no deadline.
const CheckTimeout = 10 * time.Second

// Check proves the connection works before it is saved: Kisi accepts the
// organisation key as an administrator's (GET /users?limit=1: finding
// users is what the key is for; a user's own login gets 403) and, when
// places are configured (Config.PlaceIDs), each of them exists and the key
// sees it (GET /places/{id} for each). A failure is an *access.CheckError
// whose Reason says what to fix (CheckUnreachable, CheckBadCredentials,
// CheckUnknownPlace, CheckUnexpected) and whose message never holds the
// key.
//
// Each request is sent once, paced by the organisation key's rate limit
// but outside the circuit breaker and the in-flight bound, so a failing
// check never opens the breaker.
func (c *Client) Check(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CheckTimeout)
		defer cancel()
	}
	var users []userItem
	err := c.checkCall(ctx, "list users", "/users?limit=1", &users)
	var se *access.StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusForbidden:
		return &access.CheckError{Conn: c.name, Reason: access.CheckBadCredentials,
			Err: errors.New("Kisi accepts the key but it may not list users (HTTP 403): give the API key of an organisation administrator, not a user's login")}
	case err != nil:
		return c.checkFailure(err)
	}
	for _, id := range c.places {
		var place struct {
			ID int64 `json:"id"`
		}
		err := c.checkCall(ctx, "get place", "/places/"+strconv.FormatInt(id, 10), &place)
		switch {
		case errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusForbidden):
			return &access.CheckError{Conn: c.name, Reason: access.CheckUnknownPlace,
				Err: fmt.Errorf("place %d: Kisi answered HTTP %d: the organisation key does not see such a place", id, se.Status)}
		case err != nil:
			return c.checkFailure(err)
		case place.ID != id:
			return &access.CheckError{Conn: c.name, Reason: access.CheckUnexpected,
				Err: fmt.Errorf("place %d: Kisi answered with place %d", id, place.ID)}
		}
	}
	return nil
}

// checkCall sends one GET with the organisation key, after a token of its
// rate limit, and decodes the answer into out. It bypasses the breaker.
func (c *Client) checkCall(ctx context.Context, op, path string, out any) error {
	rq := call{op: op, method: http.MethodGet, path: path, auth: c.orgKey, limiter: c.orgLimiter}
	if err := wait(ctx, op, rq.limiter); err != nil {
		return err
	}
	_, err := c.exchange(ctx, rq, out)
	return err
}

// checkFailure classifies a failed check request, keeping the key out of
// the message.
func (c *Client) checkFailure(err error) *access.CheckError {
	if errors.Is(err, ErrRateLimited) {
		// The check's own rate limit left no slot before the deadline:
		// nothing was sent, and nothing is known of the connection.
		return &access.CheckError{Conn: c.name, Reason: access.CheckUnexpected, Err: err}
	}
	return access.CheckFailure(c.name, err, c.apiKey())
}

// apiKey is the organisation's API key, as configured.
func (c *Client) apiKey() string { return c.orgKey[len("KISI-LOGIN "):] }
