// Package guard is what keeps a slow or failing access system from taking
// cloudkey down with it, shared by the REST clients (openpath, kisi): one
// circuit breaker and one bound on requests in flight per client (that
// is, per access system), and the policy for retrying idempotent reads
// (which errors are worth another attempt, how long to wait, whether the
// retry still fits the caller's deadline, Retry-After parsing).
//
// It imports access and gobreaker only; it must not import an adapter
// (openpath, kisi, sim), Redis, gRPC or generated code.
package guard

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

	// The breaker opens after BreakerConsecutive failures in a row, however
	// far apart (a dead system called once in a while is as dead as one
	// called often), or when at least breakerFailureRatio of at least
	// breakerMinResults answers in the last BreakerWindow failed (a
	// partial outage that lets the odd request through). The window rolls
	// by breakerBuckets buckets, so old results leave it bit by bit and
	// do not add up with new ones.
	BreakerConsecutive  = 5
	breakerMinResults   = 20
	breakerFailureRatio = 0.5
	BreakerWindow       = 10 * time.Second
	breakerBuckets      = 10
	// halfOpenProbes requests go through a half-open breaker; as many
	// successes close it, one failure opens it again.
	halfOpenProbes = 1
	// MinCountedBudget: a request that ran out of its caller's deadline
	// counts against the access system only if it had at least this
	// long; a caller in a hurry says nothing about the system's health.
	MinCountedBudget = 100 * time.Millisecond

	// MaxReadAttempts bounds the attempts of an idempotent read.
	MaxReadAttempts = 3
	// Retry delays grow exponentially from RetryBaseDelay to at most
	// RetryMaxDelay, each with random jitter over its upper half.
	RetryBaseDelay = 25 * time.Millisecond
	RetryMaxDelay  = 400 * time.Millisecond
	// MaxRetryAfter is the longest Retry-After a read waits for; the
	// caller is better served by an UNAVAILABLE now.
	MaxRetryAfter = 2 * time.Second
	// minRetryBudget is the least time a retry must have left after its
	// wait (or the time the failed attempt took, when longer).
	minRetryBudget = 20 * time.Millisecond
)

// Config configures a Guard.
type Config struct {
	// Name names the access system in errors and in OnStateChange.
	Name string
	// MaxInFlight bounds the requests in flight at once; 0 means
	// DefaultMaxInFlight, negative no bound.
	MaxInFlight int
	// BreakerOpenTimeout is how long an open breaker fails calls at once;
	// 0 means DefaultBreakerOpenTimeout.
	BreakerOpenTimeout time.Duration
	// BreakerWindow replaces BreakerWindow (tests); 0 keeps it.
	BreakerWindow time.Duration
	// OnStateChange, when set, is told every change of the breaker's
	// state; it is called while the breaker is locked.
	OnStateChange func(name string, from, to gobreaker.State)
}

// Guard is one access system's circuit breaker and in-flight bound. It is
// safe for concurrent use.
type Guard struct {
	name     string
	breaker  *gobreaker.CircuitBreaker[struct{}]
	failures FailureRun
	slots    chan struct{} // nil: no bound
}

// New returns a guard for cfg.
func New(cfg Config) *Guard {
	g := &Guard{name: cfg.Name}
	switch {
	case cfg.MaxInFlight == 0:
		g.slots = make(chan struct{}, DefaultMaxInFlight)
	case cfg.MaxInFlight > 0:
		g.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	g.breaker = gobreaker.NewCircuitBreaker[struct{}](Settings(cfg, &g.failures))
	return g
}

// FailureRun counts the breaker's failures in a row since the last
// success, whatever their age. gobreaker's own Counts.ConsecutiveFailures
// lives in its window (fixed or rolling, both drop the failures that
// leave it), so sparse calls to a dead system, one every few seconds,
// would never add up to BreakerConsecutive and the breaker would never
// open.
type FailureRun struct{ n atomic.Uint32 }

// Record notes the outcome of an attempt the breaker counts (see
// Guard.Run): a failure lengthens the run, a success ends it.
func (r *FailureRun) Record(err error) {
	if err == nil || !UpstreamFault(err) {
		r.n.Store(0)
		return
	}
	r.n.Add(1)
}

// Len is the number of failures in a row.
func (r *FailureRun) Len() uint32 { return r.n.Load() }

// Settings configures a breaker; run is its failure run, which Guard.Run
// keeps.
func Settings(cfg Config, run *FailureRun) gobreaker.Settings {
	timeout := cfg.BreakerOpenTimeout
	if timeout <= 0 {
		timeout = DefaultBreakerOpenTimeout
	}
	window := BreakerWindow
	if cfg.BreakerWindow > 0 {
		window = cfg.BreakerWindow
	}
	return gobreaker.Settings{
		Name:         cfg.Name,
		MaxRequests:  halfOpenProbes,
		Interval:     window,
		BucketPeriod: window / breakerBuckets,
		Timeout:      timeout,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			results := n.TotalSuccesses + n.TotalFailures
			return run.n.Load() >= BreakerConsecutive ||
				(results >= breakerMinResults && float64(n.TotalFailures) >= breakerFailureRatio*float64(results))
		},
		OnStateChange: cfg.OnStateChange,
		IsSuccessful:  func(err error) bool { return err == nil || !UpstreamFault(err) },
		IsExcluded: func(err error) bool {
			_, ok := err.(notCounted)
			return ok
		},
	}
}

// UpstreamFault reports whether err says the access system is unwell: a
// 5xx or 429, no answer, or no answer in time. 4xx answers (403, 404...)
// are business answers of a healthy system.
func UpstreamFault(err error) bool {
	return errors.Is(err, access.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// notCounted wraps the error of an attempt the breaker must ignore.
type notCounted struct{ err error }

func (e notCounted) Error() string { return e.err.Error() }
func (e notCounted) Unwrap() error { return e.err }

// Counted reports whether a failed attempt, started at start, tells the
// breaker anything: not when the caller cancelled, not when the request
// never left (ErrBusy), and not a timeout the caller gave too little time.
func Counted(ctx context.Context, start time.Time, err error) bool {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, ErrBusy):
		return false
	case errors.Is(err, context.DeadlineExceeded):
		deadline, ok := ctx.Deadline()
		return !ok || deadline.Sub(start) >= MinCountedBudget
	}
	return true
}

// Run runs one attempt, started at start (AttemptStart), through the
// breaker. An open breaker fails it at once with ErrCircuitOpen.
func (g *Guard) Run(ctx context.Context, op string, start time.Time, attempt func() error) error {
	_, err := g.breaker.Execute(func() (struct{}, error) {
		err := attempt()
		if err != nil && !Counted(ctx, start, err) {
			return struct{}{}, notCounted{err}
		}
		g.failures.Record(err)
		return struct{}{}, err
	})
	switch {
	case err == nil:
		return nil
	case err == gobreaker.ErrOpenState || err == gobreaker.ErrTooManyRequests:
		return fmt.Errorf("%s: %s: %w", op, g.name, ErrCircuitOpen)
	}
	if nc, ok := err.(notCounted); ok {
		return nc.err
	}
	return err
}

// Refusing returns the error Run fails with at once while the breaker is
// open, or nil when it is not open: a caller about to wait (for a rate
// limit's token) asks first, rather than wait for a call the breaker
// would refuse.
func (g *Guard) Refusing(op string) error {
	if g.breaker.State() == gobreaker.StateOpen {
		return fmt.Errorf("%s: %s: %w", op, g.name, ErrCircuitOpen)
	}
	return nil
}

// State is the breaker's state.
func (g *Guard) State() gobreaker.State { return g.breaker.State() }

// Acquire takes one of the in-flight slots, waiting for one as long as ctx
// lets it; Release gives it back.
func (g *Guard) Acquire(ctx context.Context, op string) error {
	if g.slots == nil {
		return nil
	}
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		// Not wrapping ctx.Err(): the request was never sent, so this is
		// not a timeout whose outcome is unknown.
		return fmt.Errorf("%s: %w: all %d slots stayed taken until the caller's context ended", op, ErrBusy, cap(g.slots))
	}
}

// Release gives back a slot Acquire took.
func (g *Guard) Release() {
	if g.slots != nil {
		<-g.slots
	}
}

// RetryDelay is how long to wait before attempt n+1 of a read whose
// attempt n failed with err, or false when err is not worth another
// attempt: only 429, 502, 503, 504 and transport errors are, and a
// Retry-After beyond MaxRetryAfter is not waited for.
func RetryDelay(err error, n int) (time.Duration, bool) {
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
		if se.RetryAfter > MaxRetryAfter {
			return 0, false
		}
		if se.RetryAfter > 0 {
			return se.RetryAfter, true
		}
	}
	d := min(RetryBaseDelay<<(n-1), RetryMaxDelay)
	return d/2 + rand.N(d/2+1), true
}

// Fits reports whether a retry after wait still fits before ctx's
// deadline, counting that it may take as long as the attempt that failed,
// started at start.
func Fits(ctx context.Context, wait time.Duration, start time.Time) bool {
	deadline, ok := ctx.Deadline()
	if !ok {
		return true
	}
	now := time.Now()
	return deadline.Sub(now) >= wait+max(now.Sub(start), minRetryBudget)
}

// AttemptStart is when an attempt starts, for Counted and Fits, which only
// need it under a deadline; the zero time otherwise, because reading the
// clock is a good part of what the breaker costs.
func AttemptStart(ctx context.Context) time.Time {
	if _, ok := ctx.Deadline(); ok {
		return time.Now()
	}
	return time.Time{}
}

// Pause waits for d or until ctx is done, and reports whether d passed.
func Pause(ctx context.Context, d time.Duration) bool {
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

// MaxRetryAfterHeader clamps a Retry-After in seconds (a day).
const MaxRetryAfterHeader = 24 * 60 * 60

// RetryAfter parses a Retry-After header: delta-seconds or an HTTP date; 0
// when absent or malformed.
func RetryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Clamped, so that an absurd value still reads as "long".
		return time.Duration(min(secs, MaxRetryAfterHeader)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
