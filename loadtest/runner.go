package loadtest

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// lateAfter: an open-loop request that starts more than this after its
	// intended start is counted late (the harness, or the machine, could
	// not keep the schedule). Its latency still counts from the intended
	// start.
	lateAfter = time.Millisecond
	// earlyBy: a request due within this is sent at once rather than
	// slept for (a sleep costs about as much). Its latency then counts
	// from its actual, earlier start, so it is never flattered.
	earlyBy = 30 * time.Microsecond
	// maxWakeAhead caps how early the scheduler sets its alarm to make up
	// for its wake-up latency (see openLoop).
	maxWakeAhead = 250 * time.Microsecond
)

// Settings say how Measure drives a Caller; the fields mean what the
// Config fields of the same names mean.
type Settings struct {
	Rate        float64
	Concurrency int
	Duration    time.Duration
	Requests    int64
	Warmup      time.Duration
	Timeout     time.Duration
	MaxInflight int
	Workers     int

	// OwnFloor is the delay the simulator adds to every call (the
	// in-process target's --sim-latency). Each Unlock answered with an OK
	// result waited for it at least once (a fan-out waits in parallel),
	// so latency minus OwnFloor bounds cloudkey's own share from above;
	// other calls are charged in full. ScenarioReport.Own reports it.
	OwnFloor time.Duration

	// Label prefixes the progress lines; Progress receives them (nil: none).
	Label    string
	Progress io.Writer
	// BeforeMeasure runs after the warm-up has drained, just before the
	// measured phase; AfterMeasure once the measured phase has drained.
	// Run snapshots the simulator's call counters there.
	BeforeMeasure, AfterMeasure func()
}

func (c Config) settings() Settings {
	return Settings{
		Rate: c.Rate, Concurrency: c.Concurrency, Duration: c.Duration, Requests: c.Requests,
		Warmup: c.Warmup, Timeout: c.Timeout, MaxInflight: c.MaxInflight, Workers: c.Workers,
		Progress: c.Progress,
	}
}

// Measure runs a warm-up phase (not recorded) and, once every warm-up
// request has finished, the measured phase, and returns its figures.
// Cancelling ctx stops sending; requests in flight still finish (each is
// bounded by Timeout), and what was measured so far is returned.
func Measure(ctx context.Context, c Caller, s Settings) (*ScenarioReport, error) {
	m := measurePhase(ctx, c, s)
	return m.report(s), ctx.Err()
}

// measured is a measured phase with its timing and CPU; the rounds of one
// scenario add up into one.
type measured struct {
	phase
	started time.Time
	cpu     time.Duration
}

func measurePhase(ctx context.Context, c Caller, s Settings) measured {
	if s.Warmup > 0 {
		runPhase(ctx, c, s, "warm-up", s.Warmup, 0)
	}
	if s.BeforeMeasure != nil {
		s.BeforeMeasure()
	}
	cpu0 := processCPU()
	m := measured{started: time.Now()}
	m.phase = runPhase(ctx, c, s, "measure", s.Duration, s.Requests)
	m.cpu = processCPU() - cpu0
	if s.AfterMeasure != nil {
		s.AfterMeasure()
	}
	return m
}

// add merges another round of the same scenario into m.
func (m *measured) add(o measured) {
	m.elapsed += o.elapsed
	m.sendElapsed += o.sendElapsed
	m.cpu += o.cpu
	p, q := &m.phaseResult, &o.phaseResult
	p.hist.Merge(q.hist)
	p.lag.Merge(q.lag)
	p.service.Merge(q.service)
	p.own.Merge(q.own)
	p.ok += q.ok
	p.errs += q.errs
	p.late += q.late
	p.sent += q.sent
	p.dropped += q.dropped
	p.unlockOK += q.unlockOK
	p.unlockBad += q.unlockBad
	for k, n := range q.methods {
		p.methods[k] += n
	}
	for k, n := range q.errors {
		p.errors[k] += n
	}
}

func (m *measured) report(s Settings) *ScenarioReport {
	return newScenarioReport(s, m.started, m.phase, m.cpu)
}

// phase is one phase's result and timing.
type phase struct {
	phaseResult
	elapsed     time.Duration // start to last completion
	sendElapsed time.Duration // start to last send
}

func runPhase(ctx context.Context, c Caller, s Settings, name string, dur time.Duration, maxReq int64) phase {
	rec := newRecorder(s.OwnFloor)
	start := time.Now()
	stopProgress := startProgress(s.Progress, s.Label+" "+name, start, rec, s.Concurrency > 0)
	var sendElapsed time.Duration
	if s.Concurrency > 0 {
		closedLoop(ctx, c, s, start, dur, maxReq, rec)
		sendElapsed = time.Since(start)
	} else {
		sendElapsed = openLoop(ctx, c, s, start, dur, maxReq, rec)
	}
	elapsed := time.Since(start)
	stopProgress()
	p := phase{phaseResult: rec.result(), elapsed: elapsed, sendElapsed: sendElapsed}
	if s.Concurrency > 0 {
		p.sent = p.ok + p.errs
	}
	return p
}

// openLoop sends at s.Rate from start for dur (or maxReq requests) and
// returns when every request has finished. Request i is intended to
// start at start + i/rate. The scheduler never waits for the server: it
// hands each request to an idle worker or queues it (starting a worker
// while fewer than the limit run), and drops it only when MaxInflight
// requests are already outstanding. Latency is timed from the intended
// start, so time spent queued behind a stall counts.
func openLoop(ctx context.Context, c Caller, s Settings, start time.Time, dur time.Duration, maxReq int64, rec *recorder) time.Duration {
	maxWorkers := s.Workers
	if maxWorkers <= 0 {
		maxWorkers = s.MaxInflight
	}
	// Buffered for MaxInflight: outstanding <= MaxInflight, so a send
	// never blocks the scheduler.
	jobs := make(chan time.Duration, s.MaxInflight)
	var outstanding atomic.Int64
	var wg sync.WaitGroup
	callCtx := context.WithoutCancel(ctx) // in-flight requests finish on cancel
	worker := func(id int) {
		defer wg.Done()
		for off := range jobs {
			intended := start.Add(off)
			began := time.Now()
			from := intended
			if began.Before(intended) {
				from = began // sent early (within earlyBy): time from the real start
			}
			rctx, cancel := context.WithDeadline(callCtx, from.Add(s.Timeout))
			o := c.Call(rctx, id)
			cancel()
			rec.record(id, time.Since(from), max(began.Sub(intended), 0), o)
			outstanding.Add(-1)
		}
	}

	sl := newPreciseSleeper()
	defer sl.release()
	perReq := float64(time.Second) / s.Rate
	workers := 0
	done := ctx.Done()
	// Waking takes time (tens of microseconds on a VM), and a late send
	// is charged to the server while an early one is timed from when it
	// really started. So the alarm is set ahead by the recent mean
	// oversleep: sends land around their intended start, not after it.
	var ahead time.Duration
schedule:
	for i := int64(0); maxReq == 0 || i < maxReq; i++ {
		off := time.Duration(float64(i) * perReq)
		if off >= dur {
			break
		}
		if wait := off - time.Since(start) - ahead; wait > earlyBy {
			t0 := time.Now()
			sl.sleep(wait, done)
			over := min(max(time.Since(t0)-wait, 0), maxWakeAhead)
			ahead += (over - ahead) / 8
		}
		select {
		case <-done:
			break schedule
		default:
		}
		if outstanding.Load() >= int64(s.MaxInflight) {
			rec.dropped.Add(1)
			continue
		}
		outstanding.Add(1)
		rec.sent.Add(1)
		jobs <- off
		// A job left in the buffer found no idle worker: start one.
		if len(jobs) > 0 && workers < maxWorkers {
			workers++
			wg.Add(1)
			go worker(workers - 1)
		}
	}
	sendElapsed := time.Since(start)
	close(jobs)
	wg.Wait()
	return sendElapsed
}

// closedLoop runs s.Concurrency workers sending back to back until dur
// has passed or maxReq requests were started. Latency is each request's
// own duration: in a closed loop a request is never due before its
// predecessor ends.
func closedLoop(ctx context.Context, c Caller, s Settings, start time.Time, dur time.Duration, maxReq int64, rec *recorder) {
	var tickets atomic.Int64
	var wg sync.WaitGroup
	callCtx := context.WithoutCancel(ctx)
	end := start.Add(dur)
	done := ctx.Done()
	for id := range s.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// A non-blocking receive, not ctx.Err, which may take a
				// lock shared by every worker.
				select {
				case <-done:
					return
				default:
				}
				if maxReq > 0 && tickets.Add(1) > maxReq {
					return
				}
				began := time.Now()
				if !began.Before(end) {
					return
				}
				rctx, cancel := context.WithDeadline(callCtx, began.Add(s.Timeout))
				o := c.Call(rctx, id)
				cancel()
				rec.record(id, time.Since(began), -1, o)
			}
		}()
	}
	wg.Wait()
}
