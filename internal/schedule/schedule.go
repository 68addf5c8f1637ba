// Package schedule runs periodic jobs once across replicas, surviving
// restarts. Each job's next due time lives in Redis (a sorted set, by
// due time); every replica polls it, and the one whose atomic claim (a
// Lua script) wins runs the occurrence, after writing the job's next due
// time in the same claim. The claim takes a lease that the running
// replica renews; a replica that dies mid-run stops renewing, and once
// the lease expires another replica runs that occurrence again.
//
// Every key shares the hash tag {schedule}, so each script touches one
// slot on Redis Cluster too.
//
// Jobs are registered per replica (Add, Remove) as the configuration
// changes: a replica claims only the jobs it knows, so one that has not
// yet learnt of a job leaves it to the others.
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Prefix starts every key; the braces are the hash tag.
const Prefix = "ck:v1:{schedule}:"

// Keys of the scheduler.
const (
	// KeyDue is a sorted set: job name -> next due time (Unix ms).
	KeyDue = Prefix + "due"
	// KeyLease is a sorted set: job name -> when the lease of its run in
	// flight expires (Unix ms); absent when none runs.
	KeyLease = Prefix + "lease"
	// KeyOwner is a hash: job name -> the token of the run holding the
	// lease ("<occurrence ms>/<random>").
	KeyOwner = Prefix + "owner"
)

// Defaults of Config.
const (
	DefaultPoll       = 15 * time.Second
	DefaultLease      = 2 * time.Minute
	DefaultMaxRunning = 4
)

// Job is one periodic job.
type Job struct {
	// Name is unique across the deployment, such as
	// "roster-pull:harbor-view"; the part before the first ':' is its
	// kind, the label of its metrics.
	Name string
	// Next returns the due time that follows t (Every for a fixed
	// interval).
	Next func(t time.Time) time.Time
	// First is the first due time of a job not yet scheduled in Redis;
	// zero: Next(now). A job already scheduled keeps its due time (a
	// restart moves nothing), unless Next(now) is sooner (its interval
	// was shortened).
	First time.Time
	// Run runs the occurrence due at due. Its context ends when the
	// scheduler stops, the job is removed or its lease is lost to
	// another replica.
	Run func(ctx context.Context, due time.Time) error
}

// Every is a Next for a fixed interval.
func Every(d time.Duration) func(time.Time) time.Time {
	return func(t time.Time) time.Time { return t.Add(d) }
}

// Config configures a Scheduler.
type Config struct {
	Redis redis.UniversalClient
	// Poll is how often due jobs are looked for (0: DefaultPoll).
	Poll time.Duration
	// Lease is how long a run holds its job before another replica may
	// take it over, renewed every Lease/3 while it runs (0:
	// DefaultLease).
	Lease time.Duration
	// MaxRunning bounds this replica's runs at once (0:
	// DefaultMaxRunning); the others wait for a later poll, or another
	// replica.
	MaxRunning int
	// Logger receives failed runs and lost leases (nil: none).
	Logger *slog.Logger
	// Metrics, when set, registers the runs' counters and durations.
	Metrics prometheus.Registerer
	// Now is the clock due times are compared with (nil: time.Now).
	Now func() time.Time
}

// Scheduler runs this replica's share of the jobs. Safe for concurrent
// use.
type Scheduler struct {
	rdb        redis.UniversalClient
	poll       time.Duration
	lease      time.Duration
	maxRunning int
	log        *slog.Logger
	now        func() time.Time
	metrics    *metrics

	base    context.Context // the runs'; ended by Stop
	stop    context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	jobs    map[string]Job
	running map[string]*run
	stopped bool
}

// run is one occurrence running here.
type run struct {
	token  string
	cancel context.CancelFunc
}

// New returns a scheduler; Run polls, or call Poll.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Redis == nil {
		return nil, errors.New("schedule: Redis is required")
	}
	if cfg.Poll < 0 || cfg.Lease < 0 || cfg.MaxRunning < 0 {
		return nil, errors.New("schedule: poll, lease and max running must not be negative")
	}
	s := &Scheduler{rdb: cfg.Redis, poll: cfg.Poll, lease: cfg.Lease, maxRunning: cfg.MaxRunning, log: cfg.Logger, now: cfg.Now,
		jobs: map[string]Job{}, running: map[string]*run{}}
	if s.poll == 0 {
		s.poll = DefaultPoll
	}
	if s.lease == 0 {
		s.lease = DefaultLease
	}
	if s.maxRunning == 0 {
		s.maxRunning = DefaultMaxRunning
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.metrics, err = newMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	s.base, s.stop = context.WithCancel(context.Background())
	return s, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// addScript schedules a job: its first due time when it has none, else
// the sooner of the stored one and latest.
var addScript = redis.NewScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  return ARGV[2]
end
if tonumber(cur) > tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return ARGV[3]
end
return cur
`)

// Add registers job on this replica and schedules it in Redis unless it
// is already (another replica, an earlier start): the stored due time is
// kept, or brought forward to Next(now) when that is sooner. A job of the
// same name is replaced (its run in flight goes on).
func (s *Scheduler) Add(ctx context.Context, job Job) error {
	if job.Name == "" || job.Next == nil || job.Run == nil {
		return errors.New("schedule: a job needs a name, a Next and a Run")
	}
	now := s.now()
	latest := job.Next(now)
	first := job.First
	if first.IsZero() || first.After(latest) {
		first = latest
	}
	if err := addScript.Run(ctx, s.rdb, []string{KeyDue}, job.Name, ms(first), ms(latest)).Err(); err != nil {
		return fmt.Errorf("schedule: add job %s: %w", job.Name, err)
	}
	s.mu.Lock()
	s.jobs[job.Name] = job
	s.mu.Unlock()
	return nil
}

// Remove forgets job name here and in Redis, so no replica runs it
// again, and ends its run here if one is in flight.
func (s *Scheduler) Remove(ctx context.Context, name string) error {
	s.mu.Lock()
	delete(s.jobs, name)
	if r := s.running[name]; r != nil {
		r.cancel()
	}
	s.mu.Unlock()
	if err := s.rdb.ZRem(ctx, KeyDue, name).Err(); err != nil {
		return fmt.Errorf("schedule: remove job %s: %w", name, err)
	}
	return nil
}

// Due returns job name's next due time as stored; ok is false when it
// is not scheduled.
func (s *Scheduler) Due(ctx context.Context, name string) (due time.Time, ok bool, err error) {
	v, err := s.rdb.ZScore(ctx, KeyDue, name).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("schedule: due time of %s: %w", name, err)
	}
	return time.UnixMilli(int64(v)), true, nil
}

// Dues returns the stored due time of each of names that is scheduled,
// in one round trip.
func (s *Scheduler) Dues(ctx context.Context, names []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(names))
	if len(names) == 0 {
		return out, nil
	}
	scores, err := s.rdb.ZMScore(ctx, KeyDue, names...).Result()
	if err != nil {
		return nil, fmt.Errorf("schedule: due times: %w", err)
	}
	for i, v := range scores {
		if v != 0 { // ZMSCORE answers nil, read as 0, for a member not there
			out[names[i]] = time.UnixMilli(int64(v))
		}
	}
	return out, nil
}

// Jobs returns the names of the jobs registered here.
func (s *Scheduler) Jobs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.jobs))
	for n := range s.jobs {
		out = append(out, n)
	}
	return out
}

// Run polls every Config.Poll until ctx ends, then stops (Stop).
func (s *Scheduler) Run(ctx context.Context) {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		if _, err := s.Poll(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("schedule: poll failed; retrying at the next", "err", err)
		}
		select {
		case <-ctx.Done():
			s.Stop()
			return
		case <-t.C:
		}
	}
}

// Stop ends the runs in flight here and waits for them; their leases are
// released at once, so another replica runs those occurrences again at
// its next poll. Nothing is claimed after it.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
}

// claimScript claims a due occurrence: when the stored due time is still
// the one read (no other replica claimed it) and no live run holds the
// job, it writes the next due time, the lease and the owner at once.
var claimScript = redis.NewScript(`
local exp = redis.call('ZSCORE', KEYS[2], ARGV[1])
if exp and tonumber(exp) > tonumber(ARGV[4]) then return 0 end
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due or tonumber(due) ~= tonumber(ARGV[2]) or tonumber(due) > tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
return 1
`)

// reclaimScript takes over a run whose lease expired (its replica died):
// the new run's token names the dead run's occurrence (ARGV[5] is its
// random part) and is returned; false when the lease was renewed or taken
// meanwhile. A removed job's stale lease is dropped.
var reclaimScript = redis.NewScript(`
local exp = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not exp or tonumber(exp) ~= tonumber(ARGV[2]) or tonumber(exp) > tonumber(ARGV[3]) then return false end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return false
end
local prev = redis.call('HGET', KEYS[3], ARGV[1]) or ''
local occ = string.match(prev, '^(%d+)/') or '0'
local token = occ .. '/' .. ARGV[5]
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], token)
return token
`)

// renewScript extends the lease while the token still owns it; 0 when
// another replica took it over.
var renewScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`)

// finishScript drops the lease of a run that ended, when it still owns
// it; with ARGV[3] set it expires the lease instead (a run abandoned at
// shutdown, for another replica to take over at once).
var finishScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)

var keys = []string{KeyDue, KeyLease, KeyOwner}

// Poll claims and starts the occurrences due now of the jobs registered
// here (runs whose lease expired first), up to MaxRunning at once, and
// returns how many it started. Run calls it every Config.Poll.
func (s *Scheduler) Poll(ctx context.Context) (started int, err error) {
	now := s.now()
	bound := &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(ms(now), 10), Count: 1000}
	expired, err := s.rdb.ZRangeByScoreWithScores(ctx, KeyLease, bound).Result()
	if err != nil {
		return 0, fmt.Errorf("schedule: read the leases: %w", err)
	}
	for _, z := range expired {
		name := z.Member.(string)
		job, ok := s.idle(name)
		if !ok {
			continue
		}
		token, err := reclaimScript.Run(ctx, s.rdb, keys, name, int64(z.Score), ms(now), ms(now.Add(s.lease)), randomPart()).Text()
		if errors.Is(err, redis.Nil) {
			continue // renewed or taken meanwhile
		}
		if err != nil {
			return started, fmt.Errorf("schedule: take over %s: %w", name, err)
		}
		due := occurrence(token, now)
		s.log.Warn("schedule: a run's lease expired (its replica stopped or lost Redis); running the occurrence again", "job", name, "due", due)
		s.metrics.reclaimed(name)
		if s.start(job, token, due) {
			started++
		}
	}
	due, err := s.rdb.ZRangeByScoreWithScores(ctx, KeyDue, bound).Result()
	if err != nil {
		return started, fmt.Errorf("schedule: read the due jobs: %w", err)
	}
	for _, z := range due {
		name := z.Member.(string)
		job, ok := s.idle(name)
		if !ok {
			continue
		}
		at := time.UnixMilli(int64(z.Score))
		next := job.Next(at)
		if !next.After(now) {
			next = job.Next(now) // missed occurrences (all replicas down) run once
		}
		token := newToken(at)
		won, err := claimScript.Run(ctx, s.rdb, keys, name, int64(z.Score), ms(next), ms(now), ms(now.Add(s.lease)), token).Int()
		if err != nil {
			return started, fmt.Errorf("schedule: claim %s: %w", name, err)
		}
		if won == 1 && s.start(job, token, at) {
			started++
		}
	}
	return started, nil
}

// idle returns job name when it is registered here, not running here,
// and a run may start.
func (s *Scheduler) idle(name string) (Job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	job, ok := s.jobs[name]
	if !ok || s.stopped || s.running[name] != nil || len(s.running) >= s.maxRunning {
		return Job{}, false
	}
	return job, true
}

// start runs one claimed occurrence, renewing its lease, in the
// background; false when the scheduler stopped meanwhile (the lease then
// expires and another replica runs it).
func (s *Scheduler) start(job Job, token string, due time.Time) bool {
	ctx, cancel := context.WithCancel(s.base)
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		cancel()
		return false
	}
	r := &run{token: token, cancel: cancel}
	s.running[job.Name] = r
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer cancel()
		lost := make(chan struct{})
		renewDone := make(chan struct{})
		go func() {
			defer close(renewDone)
			s.renew(ctx, job.Name, token, cancel, lost)
		}()
		began := time.Now()
		err := job.Run(ctx, due)
		took := time.Since(began)
		abandoned := s.base.Err() != nil
		cancel()
		<-renewDone
		s.mu.Lock()
		if s.running[job.Name] == r {
			delete(s.running, job.Name)
		}
		s.mu.Unlock()
		result := "ok"
		select {
		case <-lost:
			result = "lost"
		default:
			expire := ""
			if abandoned {
				result, expire = "abandoned", "0"
			}
			fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := finishScript.Run(fctx, s.rdb, []string{KeyLease, KeyOwner}, job.Name, token, expire).Err(); err != nil {
				s.log.Warn("schedule: could not release a run's lease; it expires on its own", "job", job.Name, "err", err)
			}
			fcancel()
		}
		if result == "ok" && err != nil {
			result = "error"
			s.log.Error("schedule: a run failed; the job runs again when next due", "job", job.Name, "due", due, "err", err)
		}
		s.metrics.observe(job.Name, result, took)
	}()
	return true
}

// renew extends the run's lease every Lease/3 until ctx ends; when the
// lease was taken over it closes lost and ends the run.
func (s *Scheduler) renew(ctx context.Context, name, token string, cancel context.CancelFunc, lost chan struct{}) {
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := renewScript.Run(ctx, s.rdb, []string{KeyLease, KeyOwner}, name, token, ms(s.now().Add(s.lease))).Int()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("schedule: could not renew a run's lease; retrying", "job", name, "err", err)
			}
			continue
		}
		if ok == 0 {
			s.log.Warn("schedule: a run's lease was taken over by another replica; ending it here", "job", name)
			close(lost)
			cancel()
			return
		}
	}
}

// newToken names a run: its occurrence (Unix ms) and a random part.
func newToken(due time.Time) string {
	return strconv.FormatInt(ms(due), 10) + "/" + randomPart()
}

func randomPart() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// occurrence is the due time a token names; now when it names none.
func occurrence(token string, now time.Time) time.Time {
	head, _, ok := strings.Cut(token, "/")
	if n, err := strconv.ParseInt(head, 10, 64); ok && err == nil && n > 0 {
		return time.UnixMilli(n)
	}
	return now
}
