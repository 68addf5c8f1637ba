package loadtest

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 10 minutes at 3 significant digits. A latency
// beyond it (only possible with an absurd --timeout) is clamped to it.
const (
	histLowest  = 1
	histHighest = int64(10 * time.Minute / time.Microsecond)
	histSigFigs = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histSigFigs)
}

// errKey labels errors by method and code.
type errKey struct{ method, code string }

// recorder collects one phase's outcomes. HDR histograms are not safe for
// concurrent use, so workers write to shards (worker mod shards), each
// with its own lock: uncontended locks cost far less than one shared one
// would under tens of thousands of records per second.
type recorder struct {
	shards []shard
	// ownFloor is subtracted from the latency of every Unlock with an OK
	// result to give cloudkey's own share (see Settings.OwnFloor).
	ownFloor time.Duration
	// sent and dropped are counted by the scheduler alone; atomic so the
	// progress line can read them.
	sent, dropped atomic.Int64
}

type shard struct {
	mu       sync.Mutex
	total    *hdrhistogram.Histogram
	interval *hdrhistogram.Histogram // since the last progress line
	lag      *hdrhistogram.Histogram // open loop: actual minus intended start
	service  *hdrhistogram.Histogram // open loop: latency from the actual start
	own      *hdrhistogram.Histogram // latency minus the simulated upstream delay
	counts
	errors map[errKey]int64
	_      [64]byte // keep neighbouring shards' locks off one cache line
}

// counts are a phase's tallies.
type counts struct {
	OK, Errors, Late    int64
	IntervalCompleted   int64
	IntervalErrors      int64
	UnlockOK, UnlockBad int64
	Methods             map[string]int64
}

func newRecorder(ownFloor time.Duration) *recorder {
	n := max(4, 2*runtime.GOMAXPROCS(0))
	r := &recorder{shards: make([]shard, n), ownFloor: ownFloor}
	for i := range r.shards {
		s := &r.shards[i]
		s.total, s.interval = newHistogram(), newHistogram()
		s.lag, s.service, s.own = newHistogram(), newHistogram(), newHistogram()
		s.errors = map[errKey]int64{}
		s.Methods = map[string]int64{}
	}
	return r
}

// record adds one finished request: its latency, how long after its
// intended start it was sent (open loop; negative: not measured) and its
// outcome.
func (r *recorder) record(worker int, latency, lag time.Duration, o Outcome) {
	us := clampMicros(latency)
	own := us
	if o.UnlockOK > 0 && r.ownFloor > 0 {
		// The access system answered OK, so it held the call for at
		// least its injected delay: what remains is at most cloudkey's.
		own = clampMicros(latency - r.ownFloor)
	}
	s := &r.shards[worker%len(r.shards)]
	s.mu.Lock()
	_ = s.total.RecordValue(us) // in range by construction
	_ = s.interval.RecordValue(us)
	_ = s.own.RecordValue(own)
	if lag >= 0 {
		_ = s.lag.RecordValue(clampMicros(lag))
		_ = s.service.RecordValue(clampMicros(latency - lag))
		if lag > lateAfter {
			s.Late++
		}
	}
	s.Methods[o.Method]++
	s.IntervalCompleted++
	if o.Err == "" {
		s.OK++
	} else {
		s.Errors++
		s.IntervalErrors++
		s.errors[errKey{o.Method, o.Err}]++
	}
	s.UnlockOK += int64(o.UnlockOK)
	s.UnlockBad += int64(o.UnlockNotOK)
	s.mu.Unlock()
}

func clampMicros(d time.Duration) int64 {
	return min(max(d.Microseconds(), histLowest), histHighest)
}

// tick returns what happened since the previous tick, for the progress
// line: completions, errors and the latency histogram of the interval.
func (r *recorder) tick() (completed, errors int64, h *hdrhistogram.Histogram) {
	h = newHistogram()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		h.Merge(s.interval)
		s.interval.Reset()
		completed += s.IntervalCompleted
		errors += s.IntervalErrors
		s.IntervalCompleted, s.IntervalErrors = 0, 0
		s.mu.Unlock()
	}
	return completed, errors, h
}

// phaseResult is a finished phase's merged tallies.
type phaseResult struct {
	hist, lag     *hdrhistogram.Histogram
	service, own  *hdrhistogram.Histogram
	ok, errs      int64
	late          int64
	sent, dropped int64
	unlockOK      int64
	unlockBad     int64
	methods       map[string]int64
	errors        map[errKey]int64
}

// result merges the shards; call it once the phase's workers are done.
func (r *recorder) result() phaseResult {
	p := phaseResult{
		hist: newHistogram(), lag: newHistogram(), service: newHistogram(), own: newHistogram(), methods: map[string]int64{}, errors: map[errKey]int64{},
		sent: r.sent.Load(), dropped: r.dropped.Load(),
	}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		p.hist.Merge(s.total)
		p.lag.Merge(s.lag)
		p.service.Merge(s.service)
		p.own.Merge(s.own)
		p.ok += s.OK
		p.errs += s.Errors
		p.late += s.Late
		p.unlockOK += s.UnlockOK
		p.unlockBad += s.UnlockBad
		for m, n := range s.Methods {
			p.methods[m] += n
		}
		for k, n := range s.errors {
			p.errors[k] += n
		}
		s.mu.Unlock()
	}
	return p
}
