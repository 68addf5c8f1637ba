package openpath

import (
	"context"
	"time"

	"github.com/cloudkey/cloudkey/access/guard"
)

// This file is what keeps a slow or failing Openpath from taking cloudkey
// down with it: one circuit breaker and one bound on requests in flight per
// Client (that is, per access system), and retries of idempotent reads.
// The mechanics are access/guard's, shared with the Kisi client.

// Errors of a request that was not sent. Both match access.ErrUnavailable,
// so callers answer UNAVAILABLE; the door certainly did not open. They are
// guard's errors, so errors.Is matches them whichever client failed.
var (
	// ErrCircuitOpen: the client's circuit breaker is open (or half-open
	// with its probe under way) after the access system failed repeatedly.
	ErrCircuitOpen = guard.ErrCircuitOpen
	// ErrBusy: every one of the client's MaxInFlight slots stayed taken
	// until the caller's context ended.
	ErrBusy = guard.ErrBusy
)

const (
	// DefaultMaxInFlight bounds the requests in flight to one access
	// system when Config.MaxInFlight is 0.
	DefaultMaxInFlight = guard.DefaultMaxInFlight
	// DefaultBreakerOpenTimeout is how long an open breaker refuses
	// requests before it lets one probe through, when
	// Config.BreakerOpenTimeout is 0.
	DefaultBreakerOpenTimeout = guard.DefaultBreakerOpenTimeout

	// guard's policy, under the names this package's tests use.
	breakerConsecutive = guard.BreakerConsecutive
	minCountedBudget   = guard.MinCountedBudget
	maxReadAttempts    = guard.MaxReadAttempts
)

// guarded runs one attempt, started at start, through the breaker. An
// open breaker fails it at once with ErrCircuitOpen.
func (c *Client) guarded(ctx context.Context, op string, start time.Time, attempt func() error) error {
	return c.guard.Run(ctx, op, start, attempt)
}

// BreakerState is the state of the client's circuit breaker: "closed",
// "open" or "half-open".
func (c *Client) BreakerState() string { return c.guard.State().String() }

// acquire takes one of the in-flight slots, waiting for one as long as ctx
// lets it.
func (c *Client) acquire(ctx context.Context, op string) error { return c.guard.Acquire(ctx, op) }

func (c *Client) release() { c.guard.Release() }

func attemptStart(ctx context.Context) time.Time { return guard.AttemptStart(ctx) }
