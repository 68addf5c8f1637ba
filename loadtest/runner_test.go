package loadtest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const stall = 300 * time.Millisecond

// stallOnce returns a Caller whose 50th call blocks for the stall; every
// other call answers at once. Serialize makes the target handle one call
// at a time (as a server stuck on a lock would), so calls sent during the
// stall wait behind it.
func stallOnce(serialize bool) Caller {
	var n atomic.Int64
	var mu sync.Mutex
	return CallerFunc(func(ctx context.Context, _ int) Outcome {
		if serialize {
			mu.Lock()
			defer mu.Unlock()
		}
		if n.Add(1) == 50 {
			select {
			case <-time.After(stall):
			case <-ctx.Done():
				return Outcome{Method: MethodNoop, Err: "DeadlineExceeded"}
			}
		}
		return Outcome{Method: MethodNoop}
	})
}

// With open loop at 200 rps, a 300 ms stall holds back about 60 requests.
// Timed from their intended starts, their latencies run from 300 ms down
// to about 0: several of the 400 requests take over 250 ms and the top
// 10% over 50 ms. A harness timing from the actual send (coordinated
// omission) would record one slow request, and a p99 near zero.
func TestOpenLoopChargesTheStallToQueuedRequests(t *testing.T) {
	tests := []struct {
		name      string
		workers   int
		serialize bool
	}{
		{"queued in the harness (one sender)", 1, false},
		{"queued in the target (one at a time)", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Settings{Rate: 200, Duration: 2 * time.Second, Timeout: 5 * time.Second,
				MaxInflight: 1000, Workers: tt.workers}
			r, err := Measure(t.Context(), stallOnce(tt.serialize), s)
			if err != nil {
				t.Fatal(err)
			}
			if r.Sent != 400 || r.Errors != 0 || r.Dropped != 0 {
				t.Fatalf("sent %d errors %d dropped %d, want 400, 0, 0", r.Sent, r.Errors, r.Dropped)
			}
			l := r.Latency
			if l.Max < stall.Microseconds() {
				t.Errorf("max %s, want at least the %v stall", fmtMicros(l.Max), stall)
			}
			if l.P99 < 250_000 {
				t.Errorf("p99 %s: requests queued behind the stall were timed from their send, not their intended start", fmtMicros(l.P99))
			}
			if l.P90 < 50_000 {
				t.Errorf("p90 %s: ~60 requests queued behind the stall should fill the top 10%%", fmtMicros(l.P90))
			}
			if tt.workers == 1 {
				if r.Late < 40 {
					t.Errorf("%d late sends, want the ~60 held back by the stall", r.Late)
				}
				// Timed from the actual send, only the stalled call is slow:
				// the difference is what the correction adds.
				if r.Service == nil || r.Service.P99 >= l.P99 {
					t.Errorf("latency from the send %+v, want its p99 below the corrected %s", r.Service, fmtMicros(l.P99))
				}
			}
		})
	}
}

func TestOpenLoopDropsBeyondMaxInflight(t *testing.T) {
	slow := CallerFunc(func(ctx context.Context, _ int) Outcome {
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
		}
		return Outcome{Method: MethodNoop}
	})
	s := Settings{Rate: 200, Duration: 500 * time.Millisecond, Timeout: time.Second, MaxInflight: 2}
	r, err := Measure(t.Context(), slow, s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Dropped == 0 || r.Sent+r.Dropped != 100 {
		t.Errorf("sent %d dropped %d: want drops, and 100 scheduled in all", r.Sent, r.Dropped)
	}
	if r.Completed != r.Sent {
		t.Errorf("completed %d of %d sent", r.Completed, r.Sent)
	}
}

func TestRequestLimitAndPhases(t *testing.T) {
	var calls atomic.Int64
	c := CallerFunc(func(context.Context, int) Outcome {
		calls.Add(1)
		return Outcome{Method: MethodNoop}
	})
	var atStart, atEnd int64
	s := Settings{Rate: 1000, Duration: 10 * time.Second, Requests: 50, Warmup: 100 * time.Millisecond,
		Timeout: time.Second, MaxInflight: 100,
		BeforeMeasure: func() { atStart = calls.Load() },
		AfterMeasure:  func() { atEnd = calls.Load() },
	}
	r, err := Measure(t.Context(), c, s)
	if err != nil {
		t.Fatal(err)
	}
	if r.Sent != 50 || r.Completed != 50 {
		t.Errorf("sent %d completed %d, want --requests 50", r.Sent, r.Completed)
	}
	// The warm-up drained before the measured phase: no overlap.
	if atStart != 100 || atEnd-atStart != 50 {
		t.Errorf("calls: %d at measure start (want 100 warm-up), %d during (want 50)", atStart, atEnd-atStart)
	}
	if r.ElapsedSeconds > 5 {
		t.Errorf("took %.1fs: the request limit did not end the phase", r.ElapsedSeconds)
	}

	closed := s
	closed.Concurrency, closed.Requests, closed.Warmup = 3, 30, 0
	if r, err = Measure(t.Context(), c, closed); err != nil {
		t.Fatal(err)
	}
	if r.Completed != 30 || r.Mode != "closed loop" {
		t.Errorf("closed loop: %d completed, mode %q", r.Completed, r.Mode)
	}
}

func TestCancelStopsSoon(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	c := CallerFunc(func(context.Context, int) Outcome { return Outcome{Method: MethodNoop} })
	start := time.Now()
	r, err := Measure(ctx, c, Settings{Rate: 100, Duration: time.Hour, Timeout: time.Second, MaxInflight: 10})
	if err == nil {
		t.Error("Measure reported no interruption")
	}
	if time.Since(start) > 10*time.Second || r.Completed == 0 {
		t.Errorf("cancelled run: %v, %d completed", time.Since(start), r.Completed)
	}
}
