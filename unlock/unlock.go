// Package unlock is the hot path of cloudkey, in one place. Service holds
// the resident use cases (who am I, my entries, favourites, unlock): it
// resolves the user through the cache's typed read-through, checks the
// entries asked for, fans the unlock out through the Engine to the access
// systems behind each entry, concurrently and under one deadline, drops
// the user's cached view when an access system refuses, and has every
// attempt audited. It never retries or hedges an unlock: a request that
// reached the door may have opened it.
//
// It owns the domain errors and reasons the server maps to statuses. It
// uses the cache through its types (cache.Loader, cache.View) and access
// systems through package access; it must not import Redis clients, gRPC
// or generated code (the audit stream writer is leaving for an adapter
// package, issue 12).
package unlock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

// Status is the outcome of one entry's unlock.
type Status int

// Outcomes, as the API reports them.
const (
	OK Status = iota + 1
	Denied
	Timeout
	Unavailable
	Error
)

func (s Status) String() string {
	switch s {
	case OK:
		return "OK"
	case Denied:
		return "DENIED"
	case Timeout:
		return "TIMEOUT"
	case Unavailable:
		return "UNAVAILABLE"
	case Error:
		return "ERROR"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Target is one access system's side of an entry: an entry may be backed
// by several (a door on Openpath and the elevator behind it on another
// system); it opens only when every target accepts.
type Target struct {
	System       access.System
	SystemName   string // for messages: "Kisi"
	Connection   string // for the audit: the connection's id
	UserID       string // the user in that system
	CredentialID string // the user's cloud key in that system
	EntryID      string // the entry in that system
	// Restriction, when set, is why the entry cannot be opened from the
	// cloud: it is DENIED with this message and nothing is sent.
	Restriction string
	// Outcome, when set, is the entry's result without any upstream call
	// (with Reason as its message): the caller already knows it, e.g. the
	// user could not be resolved in that system.
	Outcome Status
	Reason  string
}

// Request is one resident's unlock of one or more entries.
type Request struct {
	Email    string
	EntryIDs []string
	// Property is the property the entries are at, for the audit.
	Property string
	// Targets says, for each entry the resident may open, what to call.
	// An entry absent from it is DENIED without any upstream call.
	Targets func(entryID string) ([]Target, bool)
}

// Result is the outcome for one requested entry.
type Result struct {
	EntryID string
	Status  Status
	Message string
	Latency time.Duration
	// Refused is set when an access system refused the user or entry,
	// so the caller should stop trusting its cached view of the user.
	Refused bool
}

// Engine runs unlocks. It is safe for concurrent use.
type Engine struct {
	maxWait time.Duration
	audit   Auditor
	now     func() time.Time
}

// NewEngine returns an engine whose calls last at most maxWait (the
// server cap; the caller's own deadline applies when it is sooner) and
// which records every attempt with audit.
func NewEngine(maxWait time.Duration, audit Auditor) *Engine {
	if audit == nil {
		audit = Discard{}
	}
	return &Engine{maxWait: maxWait, audit: audit, now: time.Now}
}

// WithDeadline returns ctx bounded by the engine cap, the deadline of a
// whole unlock: the caller resolves the user under it (cache, load lock,
// access-system lookups) and then passes it to Unlock, so that the
// resolution and the fan-out share one deadline, the sooner of the
// caller's and the cap, end to end.
func (e *Engine) WithDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= e.maxWait {
		return ctx, func() {} // already as soon: no second timer
	}
	return context.WithTimeout(ctx, e.maxWait)
}

// Unlock opens req's entries and returns a result per entry, in request
// order. It returns by the deadline (the sooner of ctx's and the engine
// cap) and leaves no goroutine behind: every upstream call is bounded by
// the same context.
func (e *Engine) Unlock(ctx context.Context, req Request) []Result {
	ctx, cancel := e.WithDeadline(ctx)
	defer cancel()
	results := make([]Result, len(req.EntryIDs))
	if len(req.EntryIDs) == 1 { // the common tap: no goroutine at all
		results[0] = e.one(ctx, req, req.EntryIDs[0])
		return results
	}
	var wg sync.WaitGroup
	for i, id := range req.EntryIDs {
		wg.Go(func() { results[i] = e.one(ctx, req, id) })
	}
	wg.Wait()
	return results
}

func (e *Engine) one(ctx context.Context, req Request, entryID string) Result {
	start := e.now()
	targets, ok := req.Targets(entryID)
	var r Result
	var sys string
	switch {
	case !ok || len(targets) == 0:
		r = Result{Status: Denied, Message: "you do not have access to this entry"}
	case len(targets) == 1:
		r = call(ctx, targets[0])
		sys = targets[0].Connection
	default:
		r = e.all(ctx, targets)
		names := make([]string, len(targets))
		for i, t := range targets {
			names[i] = t.Connection
		}
		sys = strings.Join(names, "+")
	}
	r.EntryID = entryID
	r.Latency = e.now().Sub(start)
	e.audit.Record(Attempt{
		At: start, Email: req.Email, EntryID: entryID, System: sys, Property: req.Property,
		Status: r.Status, Message: r.Message, Latency: r.Latency,
	})
	return r
}

// all opens every target of one entry concurrently; the entry's result is
// the first failure in target order, or OK.
func (e *Engine) all(ctx context.Context, targets []Target) Result {
	rs := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { rs[i] = call(ctx, t) })
	}
	wg.Wait()
	for _, r := range rs {
		if r.Status != OK {
			return r
		}
	}
	return rs[0]
}

func call(ctx context.Context, t Target) Result {
	switch {
	case t.Outcome != 0:
		return Result{Status: t.Outcome, Message: t.Reason}
	case t.Restriction != "":
		return Result{Status: Denied, Message: t.Restriction}
	}
	err := t.System.Unlock(ctx, t.UserID, t.CredentialID, t.EntryID)
	if err == nil {
		return Result{Status: OK}
	}
	return classify(ctx, t, err)
}

// classify turns an access system's error into a result. An error that
// matches access.ErrUnavailable and not a timeout (an answer of 5xx or 429,
// or a request never sent: open breaker, no free slot) is UNAVAILABLE even
// when the deadline has passed meanwhile, because the door certainly did
// not open; TIMEOUT is kept for an outcome that is unknown.
func classify(ctx context.Context, t Target, err error) Result {
	var reason *access.ReasonError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return timedOut(t)
	case errors.Is(err, context.Canceled):
		return Result{Status: Error, Message: "the request was cancelled"}
	case errors.As(err, &reason) && (errors.Is(err, access.ErrDenied) || errors.Is(err, access.ErrNotFound)):
		return Result{Status: Denied, Message: fmt.Sprintf("%s refused this unlock: %s", t.SystemName, reason.Reason), Refused: true}
	case errors.As(err, &reason) && errors.Is(err, access.ErrUnavailable):
		return Result{Status: Unavailable, Message: fmt.Sprintf("%s: %s", t.SystemName, reason.Reason)}
	case errors.Is(err, access.ErrDenied), errors.Is(err, access.ErrNotFound):
		return Result{Status: Denied, Message: fmt.Sprintf("%s refused this unlock", t.SystemName), Refused: true}
	case errors.Is(err, access.ErrUnavailable):
		return Result{Status: Unavailable, Message: fmt.Sprintf("%s is unavailable; try again", t.SystemName)}
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return timedOut(t)
	}
	return Result{Status: Error, Message: fmt.Sprintf("%s: unexpected error: %v", t.SystemName, err)}
}

func timedOut(t Target) Result {
	return Result{Status: Timeout, Message: fmt.Sprintf("%s did not answer in time; the door may or may not have opened", t.SystemName)}
}
