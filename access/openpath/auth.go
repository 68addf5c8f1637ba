package openpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loginTimeout bounds a login. A login is shared by every caller waiting
// for a token, so it does not run under any one caller's deadline: a
// caller whose deadline is near would otherwise fail it for all, and a
// slow Openpath would never hand out a token. Each caller still stops
// waiting at its own deadline.
const loginTimeout = 30 * time.Second

// token is a session token and what is known about its life, on the local
// clock.
type token struct {
	value string
	org   string // the org id used in paths
	// user is the service account's own user id in org, when the login's
	// tokenScopeList names it; empty otherwise.
	user string
	// refreshAt is when to start logging in again in the background, and
	// expiresAt when the token stops working. Zero when Openpath did not
	// say: the token is then used until a call is answered 401.
	refreshAt time.Time
	expiresAt time.Time
}

// tokenSource holds the current token and the login in progress, if any.
type tokenSource struct {
	current atomic.Pointer[token] // read without locking on every call

	mu      sync.Mutex
	pending *login // guarded by mu
}

// login is a login in progress; done is closed when tok or err is set.
type login struct {
	done chan struct{}
	tok  *token
	err  error
}

// token returns a token to call Openpath with, logging in when there is
// none or it has expired. Concurrent callers share one login. Once a token
// nears its end (less than a minute or a tenth of its life left, whichever
// is shorter), one caller starts a login in the background and all keep
// using the old token while it lasts, so that the hot path never waits for
// a refresh.
func (c *Client) token(ctx context.Context) (*token, error) {
	now := time.Now()
	tok := c.auth.current.Load()
	if tok != nil && (tok.refreshAt.IsZero() || now.Before(tok.refreshAt)) {
		return tok, nil
	}

	c.auth.mu.Lock()
	tok = c.auth.current.Load() // another caller may have finished a login
	if tok != nil && (tok.refreshAt.IsZero() || now.Before(tok.refreshAt)) {
		c.auth.mu.Unlock()
		return tok, nil
	}
	l := c.auth.pending
	if l == nil {
		l = &login{done: make(chan struct{})}
		c.auth.pending = l
		go c.runLogin(context.WithoutCancel(ctx), l)
	}
	c.auth.mu.Unlock()

	if tok != nil && now.Before(tok.expiresAt) {
		return tok, nil // still valid; the login runs in the background
	}
	select {
	case <-l.done:
		return l.tok, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("login: %w", ctx.Err())
	}
}

// invalidate drops tok after Openpath refused it, unless another caller
// has already replaced it, so that many concurrent 401s cause one login.
func (c *Client) invalidate(tok *token) {
	c.auth.current.CompareAndSwap(tok, nil)
}

func (c *Client) runLogin(ctx context.Context, l *login) {
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	l.tok, l.err = c.login(ctx)

	c.auth.mu.Lock()
	if l.err == nil {
		c.auth.current.Store(l.tok)
	}
	c.auth.pending = nil
	c.auth.mu.Unlock()
	close(l.done)
}

type loginAnswer struct {
	Data struct {
		Token string `json:"token"`
		// Timestamps are kept as strings: an unexpected format must not
		// fail the login, only leave the token's life unknown.
		CreatedAt      string `json:"createdAt"`
		ExpiresAt      string `json:"expiresAt"`
		TokenScopeList []struct {
			Org struct {
				ID *int64 `json:"id"`
			} `json:"org"`
			User struct {
				ID *int64 `json:"id"`
			} `json:"user"`
		} `json:"tokenScopeList"`
	} `json:"data"`
}

// login calls POST /auth/login.
func (c *Client) login(ctx context.Context) (*token, error) {
	ans, sent, err := c.postLogin(ctx)
	if err != nil {
		return nil, err
	}
	return c.newToken(ctx, ans, sent)
}

// postLogin sends POST /auth/login, outside the circuit breaker and the
// in-flight bound, and returns the answer and when it was sent.
func (c *Client) postLogin(ctx context.Context) (loginAnswer, time.Time, error) {
	body, err := json.Marshal(struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{c.email, c.password})
	if err != nil {
		return loginAnswer{}, time.Time{}, fmt.Errorf("login: %w", err)
	}
	sent := time.Now()
	resp, err := c.send(ctx, "login", "POST", c.base+"/auth/login", "", body)
	if err != nil {
		return loginAnswer{}, sent, err
	}
	var ans loginAnswer
	if err := finish(ctx, "login", resp, &ans); err != nil {
		return loginAnswer{}, sent, err
	}
	return ans, sent, nil
}

// newToken is the token of a login answered ans, sent at sent.
func (c *Client) newToken(ctx context.Context, ans loginAnswer, sent time.Time) (*token, error) {
	d := ans.Data
	if d.Token == "" {
		return nil, errors.New("login: the answer has no token")
	}
	tok := &token{value: d.Token, org: c.orgID}
	if tok.org == "" {
		if len(d.TokenScopeList) == 0 || d.TokenScopeList[0].Org.ID == nil {
			return nil, errors.New("login: no org id configured and the token's scope names no org")
		}
		tok.org = strconv.FormatInt(*d.TokenScopeList[0].Org.ID, 10)
	}
	for _, sc := range d.TokenScopeList {
		if sc.Org.ID != nil && strconv.FormatInt(*sc.Org.ID, 10) == tok.org && sc.User.ID != nil && *sc.User.ID > 0 {
			tok.user = strconv.FormatInt(*sc.User.ID, 10)
			break
		}
	}

	// The token's life, measured on Openpath's clock (expiresAt -
	// createdAt) and counted from when the login was sent on ours, so
	// that clock skew between the two does not matter.
	var life time.Duration
	if expires, err := time.Parse(time.RFC3339Nano, d.ExpiresAt); err == nil {
		if created, err := time.Parse(time.RFC3339Nano, d.CreatedAt); err == nil {
			life = expires.Sub(created)
		} else {
			life = time.Until(expires)
		}
	}
	if life > 0 {
		tok.expiresAt = sent.Add(life)
		tok.refreshAt = tok.expiresAt.Add(-min(time.Minute, life/10))
	}
	c.log.DebugContext(ctx, "openpath: logged in", "org", tok.org, "token_life", life)
	return tok, nil
}
