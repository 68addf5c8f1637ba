package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Log throttling: when the access system or Redis goes away, every
// request fails the same way, and one log line per request (thousands a
// second) would cost more than the requests and bury everything else.
// So each message (per level) may write logBurst records at once and
// then logEvery one per second; the next record written after some were
// held back carries suppressed=N, how many like records were not
// written. Metrics still count every failure.
const (
	logBurst = 10
	logEvery = time.Second
	// logKeys bounds the messages tracked: messages are constants in
	// cloudkey's code, but a library's log line (bridged through
	// slog.NewLogLogger) is a message of its own each time.
	logKeys = 1024
)

type throttleKey struct {
	level   int
	message string
}

type throttleState struct {
	lim        *rate.Limiter
	suppressed atomic.Int64
}

// throttle is shared by a handler and every handler derived from it
// with WithAttrs and WithGroup.
type throttle struct {
	now  func() time.Time
	mu   sync.Mutex
	keys map[throttleKey]*throttleState
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, keys: make(map[throttleKey]*throttleState)}
}

// allow reports whether a record of this level and message may be
// written now and, if so, how many like records were held back since
// the last one written.
func (t *throttle) allow(level int, message string) (ok bool, suppressed int64) {
	k := throttleKey{level, message}
	t.mu.Lock()
	st := t.keys[k]
	if st == nil {
		if len(t.keys) >= logKeys {
			clear(t.keys) // bounded: a flood of distinct messages starts over
		}
		st = &throttleState{lim: rate.NewLimiter(rate.Every(logEvery), logBurst)}
		t.keys[k] = st
	}
	ok = st.lim.AllowN(t.now(), 1)
	t.mu.Unlock()
	if !ok {
		st.suppressed.Add(1)
		return false, 0
	}
	return true, st.suppressed.Swap(0)
}
