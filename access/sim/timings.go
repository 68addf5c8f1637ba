package sim

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Server-side timings: how long the simulator held each request, from
// the moment its handler started to the moment the answer was written,
// injected delay included. The load-test harness reads them to tell the
// access system's share of a call's latency from cloudkey's own. They
// are off unless RecordTimings turns them on, so tests and the embedded
// server pay nothing.

// Timing histograms cover 1 µs to 10 minutes at 3 significant digits,
// as the harness's own.
const (
	timingLowest  = 1
	timingHighest = int64(10 * time.Minute / time.Microsecond)
	timingSigFigs = 3
)

type timings struct {
	mu   sync.Mutex
	on   bool
	hist [numOps]*hdrhistogram.Histogram
}

// RecordTimings turns the recording of server-side timings on or off.
// Turning it on starts from empty histograms.
func (s *Sim) RecordTimings(on bool) {
	t := &s.timings
	t.mu.Lock()
	defer t.mu.Unlock()
	if on && !t.on {
		for i := range t.hist {
			t.hist[i] = hdrhistogram.New(timingLowest, timingHighest, timingSigFigs)
		}
	}
	t.on = on
	s.timingOn.Store(on)
}

// TakeTimings returns, for each operation that was called, a copy of the
// histogram (in microseconds) of the requests finished since the last
// TakeTimings (or RecordTimings), and starts afresh. It returns nil while
// timings are off.
func (s *Sim) TakeTimings() map[Op]*hdrhistogram.Histogram {
	t := &s.timings
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.on {
		return nil
	}
	out := map[Op]*hdrhistogram.Histogram{}
	for op, h := range t.hist {
		if h.TotalCount() > 0 {
			out[Op(op)] = hdrhistogram.Import(h.Export())
			h.Reset()
		}
	}
	return out
}

// recordTiming adds one request's time in the simulator. Called only
// while timings are on; one short lock per request is cheap next to the
// HTTP exchange it measures.
func (s *Sim) recordTiming(op Op, d time.Duration) {
	us := min(max(d.Microseconds(), timingLowest), timingHighest)
	t := &s.timings
	t.mu.Lock()
	if t.on {
		_ = t.hist[op].RecordValue(us) // in range by construction
	}
	t.mu.Unlock()
}
