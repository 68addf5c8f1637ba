package guard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/cloudkey/cloudkey/access"
)

// These tests were openpath's (resilience_test.go) before the policy moved
// here; the clients' own tests check it end to end over HTTP.

func TestBreakerTripsOnRatio(t *testing.T) {
	for _, tt := range []struct {
		run    uint32 // failures in a row, however old
		counts gobreaker.Counts
		want   bool
	}{
		{BreakerConsecutive - 1, gobreaker.Counts{ConsecutiveFailures: BreakerConsecutive - 1, TotalFailures: BreakerConsecutive - 1}, false},
		{BreakerConsecutive, gobreaker.Counts{ConsecutiveFailures: BreakerConsecutive, TotalFailures: BreakerConsecutive}, true},
		// The run counts, not the window's share of it.
		{BreakerConsecutive, gobreaker.Counts{ConsecutiveFailures: 1, TotalFailures: 1}, true},
		{1, gobreaker.Counts{TotalSuccesses: 10, TotalFailures: 9, ConsecutiveFailures: 1}, false}, // too few to judge
		{1, gobreaker.Counts{TotalSuccesses: 10, TotalFailures: 10, ConsecutiveFailures: 1}, true},
		{1, gobreaker.Counts{TotalSuccesses: 11, TotalFailures: 9, ConsecutiveFailures: 1}, false},
		// Requests still in flight are not results.
		{1, gobreaker.Counts{Requests: 100, TotalSuccesses: 5, TotalFailures: 4, ConsecutiveFailures: 1}, false},
	} {
		var run FailureRun
		run.n.Store(tt.run)
		if got := Settings(Config{Name: "x"}, &run).ReadyToTrip(tt.counts); got != tt.want {
			t.Errorf("ReadyToTrip(%+v) with %d failures in a row = %v, want %v", tt.counts, tt.run, got, tt.want)
		}
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{"99999999999999999999999", MaxRetryAfterHeader * time.Second},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := RetryAfter(tt.h, now); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	status := func(code int, after time.Duration) error {
		return &access.StatusError{Op: "x", Status: code, RetryAfter: after}
	}
	// A transport error, as a client classifies it.
	transport := fmt.Errorf("x: %w: %w", access.ErrUnavailable, &net.OpError{Op: "dial", Err: errors.New("refused")})
	for _, tt := range []struct {
		name     string
		err      error
		n        int
		ok       bool
		min, max time.Duration
	}{
		{"429", status(429, 0), 1, true, RetryBaseDelay / 2, RetryBaseDelay},
		{"503, second retry", status(503, 0), 2, true, RetryBaseDelay, 2 * RetryBaseDelay},
		{"502, capped", status(502, 0), 10, true, RetryMaxDelay / 2, RetryMaxDelay},
		{"504", status(504, 0), 1, true, 0, RetryBaseDelay},
		{"429 Retry-After", status(429, time.Second), 1, true, time.Second, time.Second},
		{"429 Retry-After too long", status(429, MaxRetryAfter+time.Second), 1, false, 0, 0},
		{"transport", transport, 1, true, 0, RetryBaseDelay},
		{"500", status(500, 0), 1, false, 0, 0},
		{"403", status(403, 0), 1, false, 0, 0},
		{"404", status(404, 0), 1, false, 0, 0},
		{"open breaker", ErrCircuitOpen, 1, false, 0, 0},
		{"busy", ErrBusy, 1, false, 0, 0},
		{"deadline", context.DeadlineExceeded, 1, false, 0, 0},
		{"other", errors.New("decode answer"), 1, false, 0, 0},
	} {
		d, ok := RetryDelay(tt.err, tt.n)
		if ok != tt.ok || d < tt.min || d > tt.max {
			t.Errorf("%s: RetryDelay = %v, %v; want %v within [%v, %v]", tt.name, d, ok, tt.ok, tt.min, tt.max)
		}
	}
}

// TestGuardRefusing: an open breaker refuses at once, through Run and
// through Refusing; a closed one lets attempts through. Business answers
// (a 403) do not count against the access system.
func TestGuardRefusing(t *testing.T) {
	var changes []string
	g := New(Config{Name: "x", BreakerOpenTimeout: time.Minute, OnStateChange: func(_ string, from, to gobreaker.State) {
		changes = append(changes, from.String()+"->"+to.String())
	}})
	ctx := context.Background()
	if err := g.Refusing("op"); err != nil {
		t.Fatalf("closed breaker: Refusing = %v", err)
	}
	denied := &access.StatusError{Op: "op", Status: 403}
	for range 2 * BreakerConsecutive {
		if err := g.Run(ctx, "op", AttemptStart(ctx), func() error { return denied }); err != denied {
			t.Fatalf("Run = %v, want the 403", err)
		}
	}
	if g.State() != gobreaker.StateClosed {
		t.Fatal("403s opened the breaker")
	}
	unavailable := &access.StatusError{Op: "op", Status: 503}
	for range BreakerConsecutive {
		_ = g.Run(ctx, "op", AttemptStart(ctx), func() error { return unavailable })
	}
	if err := g.Refusing("op"); !errors.Is(err, ErrCircuitOpen) {
		t.Errorf("open breaker: Refusing = %v, want ErrCircuitOpen", err)
	}
	ran := false
	if err := g.Run(ctx, "op", AttemptStart(ctx), func() error { ran = true; return nil }); !errors.Is(err, ErrCircuitOpen) || ran {
		t.Errorf("open breaker: Run = %v (ran %v), want ErrCircuitOpen without running", err, ran)
	}
	if len(changes) != 1 || changes[0] != "closed->open" {
		t.Errorf("state changes %v", changes)
	}
}

// TestGuardBusy: with every slot taken, Acquire waits until the context
// ends and fails with ErrBusy, which the breaker does not count.
func TestGuardBusy(t *testing.T) {
	g := New(Config{Name: "x", MaxInFlight: 1})
	ctx := context.Background()
	if err := g.Acquire(ctx, "op"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err := g.Acquire(short, "op")
	if !errors.Is(err, ErrBusy) || !errors.Is(err, access.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire = %v, want ErrBusy only", err)
	}
	if Counted(short, AttemptStart(ctx), err) {
		t.Error("ErrBusy counted against the access system")
	}
	g.Release()
	if err := g.Acquire(ctx, "op"); err != nil {
		t.Errorf("after Release: %v", err)
	}
	g.Release()
}
