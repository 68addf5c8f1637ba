package envoyapi

import (
	"errors"
	"sync"
	"time"
)

// State is what the client last saw of Envoy, for the settings answer's
// connection state (the Rhombus seed's authError and token validity).
type State struct {
	// TokenValid: a token is cached and not expired.
	TokenValid bool
	// AuthError: Envoy refused the client id and secret at the last
	// token request (the connection settings need fixing).
	AuthError bool
	// LastError is the last failed call's error (never a secret), and
	// LastErrorAt when it happened; empty after a call succeeds.
	LastError   string
	LastErrorAt time.Time
}

// outcome records the last call's result for State.
type outcome struct {
	mu   sync.Mutex
	auth bool
	err  string
	at   time.Time
}

func (o *outcome) observe(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case err == nil:
		o.auth, o.err, o.at = false, "", time.Time{}
	case errors.Is(err, ErrNotFound):
		// An invite already gone says nothing about the connection.
	default:
		o.auth, o.err, o.at = errors.Is(err, ErrUnauthorized), err.Error(), time.Now().UTC()
	}
}

// State reports the connection's state now.
func (c *Client) State() State {
	c.last.mu.Lock()
	st := State{AuthError: c.last.auth, LastError: c.last.err, LastErrorAt: c.last.at}
	c.last.mu.Unlock()
	st.TokenValid = c.TokenValid()
	return st
}
