package openpath

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/cloudkey/cloudkey/access"
)

// This file is what keeps a slow or failing Openpath from taking cloudkey
// down with it: one circuit breaker and one bound on requests in flight per
// Client (that is, per access system), and retries of idempotent reads.

// Errors of a request that was not sent. Both match access.ErrUnavailable,
// so callers answer UNAVAILABLE; the door certainly did not open.
var (
	// ErrCircuitOpen: the client's circuit breaker is open (or half-open
	// with its probe under way) after the access system failed repeatedly.
	ErrCircuitOpen = fmt.Errorf("circuit breaker open: %w", access.ErrUnavailable)
	// ErrBusy: every one of the client's MaxInFlight slots stayed taken
	// until the caller's context ended.
	ErrBusy = fmt.Errorf("too many requests in flight: %w", access.ErrUnavailable)
)

const (
	// DefaultMaxInFlight bounds the requests in flight to one access
	// system when Config.MaxInFlight is 0: the size of the idle
	// connection pool per host.
	DefaultMaxInFlight = 256
	// DefaultBreakerOpenTimeout is how long an open breaker refuses
	// requests before it lets one probe through, when
	// Config.BreakerOpenTimeout is 0.
	DefaultBreakerOpenTimeout = 5 * time.Second

	// The breaker opens after breakerConsecutive failures in a row, however
	// far apart (a dead system called once in a while is as dead as one
	// called often), or when at least breakerFailureRatio of at least
	// breakerMinResults answers in the last breakerWindow failed (a
	// partial outage that lets the odd request through). The window rolls
	// by breakerBuckets buckets, so old results leave it bit by bit and
	// do not add up with new ones.
	breakerConsecutive  = 5
	breakerMinResults   = 20
	breakerFailureRatio = 0.5
	breakerWindow       = 10 * time.Second
	breakerBuckets      = 10
	// halfOpenProbes requests go through a half-open breaker; as many
	// successes close it, one failure opens it again.
	halfOpenProbes = 1
	// minCountedBudget: a request that ran out of its caller's deadline
	// counts against the access system only if it had at least this
	// long; a caller in a hurry says nothing about Openpath's health.
	minCountedBudget = 100 * time.Millisecond

	// maxReadAttempts bounds the attempts of an idempotent read.
	maxReadAttempts = 3
	// Retry delays grow exponentially from retryBaseDelay to at most
	// retryMaxDelay, each with random jitter over its upper half.
	retryBaseDelay = 25 * time.Millisecond
	retryMaxDelay  = 400 * time.Millisecond
	// maxRetryAfter is the longest Retry-After a read waits for; the
	// caller is better served by an UNAVAILABLE now.
	maxRetryAfter = 2 * time.Second
	// minRetryBudget is the least time a retry must have left after its
	// wait (or the time the failed attempt took, when longer).
	minRetryBudget = 20 * time.Millisecond
)

// failureRun counts the breaker's failures in a row since the last
// success, whatever their age. gobreaker's own Counts.ConsecutiveFailures
// lives in its window (fixed or rolling, both drop the failures that
// leave it), so sparse calls to a dead system, one every few seconds,
// would never add up to breakerConsecutive and the breaker would never
// open.
type failureRun struct{ n atomic.Uint32 }

// record notes the outcome of an attempt the breaker counts (see
// guarded): a failure lengthens the run, a success ends it.
func (r *failureRun) record(err error) {
	if err == nil || !upstreamFault(err) {
		r.n.Store(0)
		return
	}
	r.n.Add(1)
}

// breakerSettings configures the client's breaker; run is the client's
// failure run, which guarded keeps.
func breakerSettings(cfg Config, name string, run *failureRun, onChange func(name string, from, to gobreaker.State)) gobreaker.Settings {
	timeout := cfg.BreakerOpenTimeout
	if timeout <= 0 {
		timeout = DefaultBreakerOpenTimeout
	}
	window := breakerWindow
	if cfg.breakerWindow > 0 {
		window = cfg.breakerWindow
	}
	return gobreaker.Settings{
		Name:         name,
		MaxRequests:  halfOpenProbes,
		Interval:     window,
		BucketPeriod: window / breakerBuckets,
		Timeout:      timeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			results := n.TotalSuccesses + n.TotalFailures
			return run.n.Load() >= breakerConsecutive ||
				(results >= breakerMinResults && float64(n.TotalFailures) >= breakerFailureRatio*float64(results))
		},
		OnStateChange: onChange,
		IsSuccessful:  func(err error) bool { return err == nil || !upstreamFault(err) },
		IsExcluded: func(err error) bool {
			_, ok := err.(notCounted)
			return ok
		},
	}
}

// upstreamFault reports whether err says the access system is unwell: a
// 5xx or 429, no answer, or no answer in time. 4xx answers (403, 404...)
// are business answers of a healthy system.
func upstreamFault(err error) bool {
	return errors.Is(err, access.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// notCounted wraps the error of an attempt the breaker must ignore.
type notCounted struct{ err error }

func (e notCounted) Error() string { return e.err.Error() }
func (e notCounted) Unwrap() error { return e.err }

// counted reports whether a failed attempt, started at start, tells the
// breaker anything: not when the caller cancelled, not when the request
// never left (ErrBusy), and not a timeout the caller gave too little time.
func counted(ctx context.Context, start time.Time, err error) bool {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, ErrBusy):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		deadline, ok := ctx.Deadline()
		return !ok || deadline.Sub(start) >= minCountedBudget
	}
	return true
}

// guarded runs one attempt, started at start, through the breaker. An
// open breaker fails it at once with ErrCircuitOpen.
func (c *Client) guarded(ctx context.Context, op string, start time.Time, attempt func() error) error {
	_, err := c.breaker.Execute(func() (struct{}, error) {
		err := attempt()
		if err != nil && !counted(ctx, start, err) {
			return struct{}{}, notCounted{err}
		}
		c.failures.record(err)
		return struct{}{}, err
	})
	switch {
	case err == nil:
		return nil
	case err == gobreaker.ErrOpenState || err == gobreaker.ErrTooManyRequests:
		return fmt.Errorf("%s: %s: %w", op, c.name, ErrCircuitOpen)
	}
	if nc, ok := err.(notCounted); ok {
		return nc.err
	}
	return err
}

// BreakerState is the state of the client's circuit breaker: "closed",
// "open" or "half-open".
func (c *Client) BreakerState() string { return c.breaker.State().String() }

// acquire takes one of the in-flight slots, waiting for one as long as ctx
// lets it.
func (c *Client) acquire(ctx context.Context, op string) error {
	if c.slots == nil {
		return nil
	}
	select {
	case c.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case c.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		// Not wrapping ctx.Err(): the request was never sent, so this is
		// not a timeout whose outcome is unknown.
		return fmt.Errorf("%s: %w: all %d slots stayed taken until the caller's context ended", op, ErrBusy, cap(c.slots))
	}
}

func (c *Client) release() {
	if c.slots != nil {
		<-c.slots
	}
}

// retryDelay is how long to wait before attempt n+1 of a read whose
// attempt n failed with err, or false when err is not worth another
// attempt: only 429, 502, 503, 504 and transport errors are, and a
// Retry-After beyond maxRetryAfter is not waited for.
func retryDelay(err error, n int) (time.Duration, bool) {
	if errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrBusy) || !errors.Is(err, access.ErrUnavailable) {
		return 0, false
	}
	var se *access.StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		default:
			return 0, false
		}
		if se.RetryAfter > maxRetryAfter {
			return 0, false
		}
		if se.RetryAfter > 0 {
			return se.RetryAfter, true
		}
	}
	d := min(retryBaseDelay<<(n-1), retryMaxDelay)
	return d/2 + rand.N(d/2+1), true
}

// fits reports whether a retry after wait still fits before ctx's
// deadline, counting that it may take as long as the attempt that failed,
// started at start.
func fits(ctx context.Context, wait time.Duration, start time.Time) bool {
	deadline, ok := ctx.Deadline()
	if !ok {
		return true
	}
	now := time.Now()
	return deadline.Sub(now) >= wait+max(now.Sub(start), minRetryBudget)
}

// attemptStart is when an attempt starts, for counted and fits, which only
// need it under a deadline; the zero time otherwise, because reading the
// clock is a good part of what the breaker costs.
func attemptStart(ctx context.Context) time.Time {
	if _, ok := ctx.Deadline(); ok {
		return time.Now()
	}
	return time.Time{}
}

// pause waits for d or until ctx is done, and reports whether d passed.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxRetryAfterHeader clamps a Retry-After in seconds (a day).
const maxRetryAfterHeader = 24 * 60 * 60

// retryAfter parses a Retry-After header: delta-seconds or an HTTP date; 0
// when absent or malformed.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Clamped, so that an absurd value still reads as "long".
		return time.Duration(min(secs, maxRetryAfterHeader)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
