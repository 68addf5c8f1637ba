package schedule

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// clock is the schedulers' shared clock, moved by the tests: due times
// are compared with it, so no test waits for wall time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)

// runs records every occurrence run, by due time.
type runs struct {
	mu    sync.Mutex
	dues  []time.Time
	start chan time.Time
}

func newRuns() *runs { return &runs{start: make(chan time.Time, 100)} }

func (r *runs) record(due time.Time) {
	r.mu.Lock()
	r.dues = append(r.dues, due)
	r.mu.Unlock()
	r.start <- due
}

func (r *runs) all() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.dues...)
}

// waitStart waits for the next run to start; the bound only stops a
// broken test from hanging.
func (r *runs) waitStart(t *testing.T) time.Time {
	t.Helper()
	select {
	case d := <-r.start:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("no run started")
		return time.Time{}
	}
}

func newScheduler(t *testing.T, rdb redis.UniversalClient, c *clock, tune func(*Config)) *Scheduler {
	t.Helper()
	cfg := Config{Redis: rdb, Now: c.Now, Lease: time.Minute}
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func hourly(name string, r *runs, run func(ctx context.Context) error) Job {
	return Job{Name: name, Next: Every(time.Hour), First: t0, Run: func(ctx context.Context, due time.Time) error {
		r.record(due)
		if run != nil {
			return run(ctx)
		}
		return nil
	}}
}

// Two replicas on one Redis, polling at the same instants (many polls
// at once for each occurrence), run each occurrence exactly once, and
// the runs are counted by job kind.
func TestTwoReplicasRunEachOccurrenceOnce(t *testing.T) {
	srv := redistest.Start(t)
	c := &clock{t: t0}
	reg := prometheus.NewRegistry()
	r := newRuns()
	failing := errors.New("the PMS is down")
	var a, b *Scheduler
	for _, s := range []**Scheduler{&a, &b} {
		*s = newScheduler(t, srv.Client(), c, func(cfg *Config) { cfg.Metrics = reg })
		if err := (*s).Add(t.Context(), hourly("roster-pull:hv", r, func(context.Context) error {
			if len(r.all()) == 3 {
				return failing
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	const occurrences = 6
	for i := range occurrences {
		var wg sync.WaitGroup
		var mu sync.Mutex
		started := 0
		for k := range 10 {
			s := a
			if k%2 == 1 {
				s = b
			}
			wg.Go(func() {
				n, err := s.Poll(t.Context())
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				started += n
				mu.Unlock()
			})
		}
		wg.Wait()
		if started != 1 {
			t.Fatalf("occurrence %d: %d runs started, want 1", i, started)
		}
		r.waitStart(t)
		a.wg.Wait()
		b.wg.Wait()
		due, ok, err := a.Due(t.Context(), "roster-pull:hv")
		if err != nil || !ok || !due.Equal(t0.Add(time.Duration(i+1)*time.Hour)) {
			t.Fatalf("after occurrence %d the next due is %v, %v, %v; want %v", i, due, ok, err, t0.Add(time.Duration(i+1)*time.Hour))
		}
		c.Add(time.Hour)
	}
	got := r.all()
	if len(got) != occurrences {
		t.Fatalf("%d runs, want %d", len(got), occurrences)
	}
	for i, d := range got {
		if want := t0.Add(time.Duration(i) * time.Hour); !d.Equal(want) {
			t.Errorf("run %d was the occurrence due %v, want %v", i, d, want)
		}
	}
	m := a.metrics
	if ok, bad := testutil.ToFloat64(m.runs.WithLabelValues("roster-pull", "ok")), testutil.ToFloat64(m.runs.WithLabelValues("roster-pull", "error")); ok != occurrences-1 || bad != 1 {
		t.Errorf("runs counted: %v ok, %v error; want %d and 1", ok, bad, occurrences-1)
	}
}

// A restarted replica (a new scheduler on the same Redis) keeps the due
// time the last claim wrote; a shortened interval brings it forward.
func TestRestartKeepsTheDueTime(t *testing.T) {
	srv := redistest.Start(t)
	c := &clock{t: t0}
	r := newRuns()
	a := newScheduler(t, srv.Client(), c, nil)
	if err := a.Add(t.Context(), hourly("roster-pull:hv", r, nil)); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Poll(t.Context()); n != 1 || err != nil {
		t.Fatalf("first poll started %d, %v", n, err)
	}
	r.waitStart(t)
	a.Stop()

	c.Add(30 * time.Minute)
	restarted := newScheduler(t, srv.Client(), c, nil)
	job := hourly("roster-pull:hv", r, nil)
	job.First = c.Now() // what a new job would be: due at once
	if err := restarted.Add(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	if due, _, _ := restarted.Due(t.Context(), job.Name); !due.Equal(t0.Add(time.Hour)) {
		t.Errorf("after the restart the job is due %v, want %v (the stored one)", due, t0.Add(time.Hour))
	}
	if n, err := restarted.Poll(t.Context()); n != 0 || err != nil {
		t.Errorf("poll before the due time started %d, %v", n, err)
	}
	c.Add(30 * time.Minute)
	if n, err := restarted.Poll(t.Context()); n != 1 || err != nil {
		t.Errorf("poll at the due time started %d, %v", n, err)
	}
	if d := r.waitStart(t); !d.Equal(t0.Add(time.Hour)) {
		t.Errorf("ran the occurrence due %v, want %v", d, t0.Add(time.Hour))
	}
	restarted.wg.Wait()

	// Every 10 minutes now: due within 10 minutes, not in an hour.
	job.Next = Every(10 * time.Minute)
	if err := restarted.Add(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	if due, _, _ := restarted.Due(t.Context(), job.Name); !due.Equal(c.Now().Add(10 * time.Minute)) {
		t.Errorf("after a shorter interval the job is due %v, want %v", due, c.Now().Add(10*time.Minute))
	}
}

// A replica that dies mid-run (here: loses Redis, so it renews nothing)
// leaves its lease to expire; another replica then runs the same
// occurrence, and the next due time moves once only.
func TestDeadClaimantsLeaseExpires(t *testing.T) {
	srv := redistest.Start(t)
	c := &clock{t: t0}
	r := newRuns()
	deadRDB := srv.Client()
	release := make(chan struct{})
	dead := newScheduler(t, deadRDB, c, nil)
	if err := dead.Add(t.Context(), hourly("roster-pull:hv", r, func(context.Context) error { <-release; return nil })); err != nil {
		t.Fatal(err)
	}
	alive := newScheduler(t, srv.Client(), c, nil)
	if err := alive.Add(t.Context(), hourly("roster-pull:hv", r, nil)); err != nil {
		t.Fatal(err)
	}
	if n, err := dead.Poll(t.Context()); n != 1 || err != nil {
		t.Fatalf("claim: %d, %v", n, err)
	}
	r.waitStart(t)
	deadRDB.Close()
	t.Cleanup(func() { close(release) })

	c.Add(30 * time.Second)
	if n, err := alive.Poll(t.Context()); n != 0 || err != nil {
		t.Errorf("poll within the lease started %d, %v", n, err)
	}
	c.Add(31 * time.Second)
	if n, err := alive.Poll(t.Context()); n != 1 || err != nil {
		t.Fatalf("poll after the lease started %d, %v", n, err)
	}
	if d := r.waitStart(t); !d.Equal(t0) {
		t.Errorf("the takeover ran the occurrence due %v, want %v", d, t0)
	}
	alive.wg.Wait()
	if due, _, _ := alive.Due(t.Context(), "roster-pull:hv"); !due.Equal(t0.Add(time.Hour)) {
		t.Errorf("next due %v, want %v", due, t0.Add(time.Hour))
	}
	if n, _ := alive.rdb.ZCard(t.Context(), KeyLease).Result(); n != 0 {
		t.Errorf("%d leases left after the takeover finished", n)
	}
}

// A replica stopping mid-run releases the lease at once: another runs
// the occurrence at its next poll, without waiting for the lease.
func TestStopHandsTheRunOver(t *testing.T) {
	srv := redistest.Start(t)
	c := &clock{t: t0}
	r := newRuns()
	ended := make(chan error, 1)
	a := newScheduler(t, srv.Client(), c, nil)
	if err := a.Add(t.Context(), hourly("roster-pull:hv", r, func(ctx context.Context) error {
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	})); err != nil {
		t.Fatal(err)
	}
	b := newScheduler(t, srv.Client(), c, nil)
	if err := b.Add(t.Context(), hourly("roster-pull:hv", r, nil)); err != nil {
		t.Fatal(err)
	}
	if n, _ := a.Poll(t.Context()); n != 1 {
		t.Fatal("no claim")
	}
	r.waitStart(t)
	a.Stop()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the run's context ended with %v", err)
	}
	if n, err := b.Poll(t.Context()); n != 1 || err != nil {
		t.Fatalf("the other replica's poll started %d, %v", n, err)
	}
	if d := r.waitStart(t); !d.Equal(t0) {
		t.Errorf("ran the occurrence due %v, want %v", d, t0)
	}
}

// A removed job runs on no replica, even one that still has it
// registered; a job a replica does not know is left to the others; and
// removing a job ends its run in flight.
func TestRemoveStopsTheJob(t *testing.T) {
	srv := redistest.Start(t)
	c := &clock{t: t0}
	r := newRuns()
	a := newScheduler(t, srv.Client(), c, nil)
	b := newScheduler(t, srv.Client(), c, nil)
	ended := make(chan struct{})
	if err := a.Add(t.Context(), hourly("roster-pull:hv", r, func(ctx context.Context) error { <-ctx.Done(); close(ended); return nil })); err != nil {
		t.Fatal(err)
	}
	unknown := newScheduler(t, srv.Client(), c, nil)
	if n, err := unknown.Poll(t.Context()); n != 0 || err != nil {
		t.Errorf("a replica without the job started %d, %v", n, err)
	}
	if n, _ := a.Poll(t.Context()); n != 1 {
		t.Fatal("no claim")
	}
	r.waitStart(t)
	if err := b.Add(t.Context(), hourly("roster-pull:hv", r, nil)); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(t.Context(), "roster-pull:hv"); err != nil {
		t.Fatal(err)
	}
	<-ended
	a.wg.Wait()
	if _, ok, _ := a.Due(t.Context(), "roster-pull:hv"); ok {
		t.Error("the removed job is still scheduled")
	}
	c.Add(3 * time.Hour)
	for _, s := range []*Scheduler{a, b} {
		if n, err := s.Poll(t.Context()); n != 0 || err != nil {
			t.Errorf("poll after removal started %d, %v", n, err)
		}
	}
	if got := r.all(); len(got) != 1 {
		t.Errorf("%d runs, want the one before removal", len(got))
	}
}

func TestNewRefuses(t *testing.T) {
	rdb := redistest.Start(t).Client()
	for _, cfg := range []Config{{}, {Redis: rdb, Poll: -1}, {Redis: rdb, Lease: -time.Second}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	s, err := New(Config{Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(t.Context(), Job{Name: "x"}); err == nil {
		t.Error("a job without Next and Run accepted")
	}
}
