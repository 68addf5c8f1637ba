package openpath

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

// CheckTimeout bounds Check when its context has no deadline.
const CheckTimeout = 10 * time.Second

// Check proves the connection works before it is saved: the service
// account logs in (POST /auth/login) and, when Config.OrgID is set, that
// organisation is among the login's (its tokenScopeList); without OrgID
// the login must name at least one. A failure is an *access.CheckError
// whose Reason says what to fix (CheckUnreachable, CheckBadCredentials,
// CheckUnknownOrganisation, CheckUnexpected) and whose message never
// holds the password or the token.
//
// The login is sent once, outside the circuit breaker and the in-flight
// bound, so a failing check never opens the breaker. On success the token
// is kept, so the client's first call does not log in again.
func (c *Client) Check(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CheckTimeout)
		defer cancel()
	}
	ans, sent, err := c.postLogin(ctx)
	if err != nil {
		return access.CheckFailure(c.name, err, c.password)
	}
	if ans.Data.Token == "" {
		return &access.CheckError{Conn: c.name, Reason: access.CheckUnexpected, Err: errors.New("login: the answer has no token")}
	}
	var orgs []string
	for _, sc := range ans.Data.TokenScopeList {
		if sc.Org.ID != nil {
			orgs = append(orgs, strconv.FormatInt(*sc.Org.ID, 10))
		}
	}
	switch {
	case c.orgID == "" && len(orgs) == 0:
		return &access.CheckError{Conn: c.name, Reason: access.CheckUnknownOrganisation,
			Err: errors.New("no organisation id is configured and the login names none: configure the organisation id")}
	case c.orgID != "" && !slices.Contains(orgs, c.orgID):
		names := "none"
		if len(orgs) > 0 {
			names = strings.Join(orgs, ", ")
		}
		return &access.CheckError{Conn: c.name, Reason: access.CheckUnknownOrganisation,
			Err: fmt.Errorf("organisation %s is not among the service account's organisations (%s)", c.orgID, names)}
	}
	tok, err := c.newToken(ctx, ans, sent)
	if err != nil {
		return &access.CheckError{Conn: c.name, Reason: access.CheckUnexpected, Err: err}
	}
	c.auth.current.CompareAndSwap(nil, tok)
	return nil
}
