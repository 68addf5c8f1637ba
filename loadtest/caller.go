package loadtest

import "context"

// Method names, as in the gRPC service; they label errors and counts.
const (
	MethodGetMe       = "GetMe"
	MethodListEntries = "ListEntries"
	MethodUnlock      = "Unlock"
	MethodNoop        = "Noop"
	MethodNoopHTTP    = "NoopHTTP"
	MethodNoopRedis   = "NoopRedis"
)

// Caller sends one request. Implementations must be safe for concurrent
// use and should not allocate more than the request itself needs: at
// peak the harness shares the machine with the server it measures.
type Caller interface {
	// Call sends one request and waits for its answer or ctx's end.
	// worker identifies the calling goroutine (0 <= worker), for callers
	// that keep per-worker state.
	Call(ctx context.Context, worker int) Outcome
}

// userCaller is a Caller that can also act as a given user (prewarm).
type userCaller interface {
	Caller
	callUser(ctx context.Context, worker int, u *user) Outcome
}

// CallerFunc adapts a function to Caller.
type CallerFunc func(ctx context.Context, worker int) Outcome

// Call calls f.
func (f CallerFunc) Call(ctx context.Context, worker int) Outcome { return f(ctx, worker) }

// Outcome is what one request came to. Its strings are constants (all
// but rare error labels), so that reporting one does not allocate.
type Outcome struct {
	// Method is one of the Method constants.
	Method string
	// Err is empty on success; otherwise a gRPC code name ("Unavailable",
	// "DeadlineExceeded"), or for an Unlock answered OK whose results are
	// not all OK, "unlock result " + the first such status.
	Err string
	// UnlockOK and UnlockNotOK count an Unlock response's results.
	UnlockOK, UnlockNotOK int
}

// OK reports whether the request succeeded.
func (o Outcome) OK() bool { return o.Err == "" }
