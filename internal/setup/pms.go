package setup

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/schedule"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/pmspull"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
	"github.com/cloudkey/cloudkey/server"
)

// pullJobKind prefixes the scheduled roster pulls' job names
// ("roster-pull:<property>"), the label of their metrics.
const pullJobKind = "roster-pull:"

func pullJob(propertyID string) string { return pullJobKind + propertyID }

// pmsPulls schedules the roster pull of every served property with a pms
// block, following the registry: a property added, changed or removed
// (on any replica) adds, reschedules or removes its job here. The pulls
// run once across replicas (internal/schedule).
type pmsPulls struct {
	reg   *registry
	sched *schedule.Scheduler
	// moveouts runs the move-out policies (moveout.go), set once built.
	moveouts atomic.Pointer[moveout.Runner]
	puller   *pmspull.Puller
	log      *slog.Logger
	poll     time.Duration

	changed chan struct{} // the registry's served set changed

	mu   sync.Mutex
	jobs map[string]property.PMS // property id -> the block its job was added with

	// view is what GetProperty shows: each property's last pull and next
	// due time, read from Redis every poll and after each pull here.
	view atomic.Pointer[map[string]pullView]
}

type pullView struct {
	last    pmspull.Status
	hasLast bool
	next    time.Time
}

// startPMS starts the scheduler and schedules the served properties'
// pulls; the closer stops it (a pull in flight is handed to another
// replica).
func startPMS(rdb redis.UniversalClient, reg *registry, cfg Config, log *slog.Logger, metrics *telemetry.Metrics) (*pmsPulls, func(), error) {
	sched, err := schedule.New(schedule.Config{Redis: rdb, Poll: cfg.SchedulePoll, Logger: log, Metrics: metrics.Registry()})
	if err != nil {
		return nil, nil, err
	}
	m := &pmsPulls{reg: reg, sched: sched, log: log, poll: cfg.SchedulePoll, changed: make(chan struct{}, 1), jobs: map[string]property.PMS{}}
	if m.poll <= 0 {
		m.poll = schedule.DefaultPoll
	}
	m.puller, err = pmspull.New(pmspull.Config{
		Redis: rdb, Rosters: rosterredis.New(rdb), Logger: log,
		Directories: func(ctx context.Context, id string) (string, []reconcile.Connection, error) {
			tz, conns, ok := reg.Directories(id)
			if !ok {
				return "", nil, fmt.Errorf("property %s is not served on this replica", id)
			}
			return tz, conns, nil
		},
		// A new roster may end or restore someone's access at once; a
		// failed run is the policy's to retry (its sweep), not the pull's.
		AfterRoster: func(ctx context.Context, id string) error { m.runMoveOut(ctx, id); return nil },
	})
	if err != nil {
		return nil, nil, err
	}
	m.view.Store(&map[string]pullView{})
	ctx, cancel := context.WithCancel(context.Background())
	sweep := cfg.MoveOutSweep
	if sweep <= 0 {
		sweep = DefaultMoveOutSweep
	}
	if err := sched.Add(ctx, m.sweepJob(sweep)); err != nil {
		cancel()
		return nil, nil, err
	}
	m.sync(ctx)
	hook := func() {
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
	reg.onChange.Store(&hook)
	reg.pmsView = m.status
	var wg sync.WaitGroup
	wg.Go(func() { sched.Run(ctx) })
	wg.Go(func() { m.run(ctx) })
	return m, func() {
		reg.onChange.Store(nil)
		cancel()
		wg.Wait()
	}, nil
}

// run follows the registry's changes and refreshes the view every poll.
func (m *pmsPulls) run(ctx context.Context) {
	t := time.NewTicker(m.poll)
	defer t.Stop()
	m.refresh(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.changed:
			m.sync(ctx)
		case <-t.C:
		}
		m.refresh(ctx)
	}
}

// sync makes the jobs registered here those of the served properties
// with a pms block: a new one is due at once (its first pull); a changed
// one keeps its due time unless its new interval is sooner; a removed
// one is unscheduled for every replica.
func (m *pmsPulls) sync(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]*property.PMS{}
	for _, p := range m.reg.properties() {
		if p.PMS != nil {
			want[p.ID] = p.PMS
		}
	}
	for id, pms := range want {
		if old, ok := m.jobs[id]; ok && old.Equal(pms) {
			continue
		}
		if err := m.sched.Add(ctx, m.job(id, pms.Every)); err != nil {
			m.log.Error("roster pull: not scheduled; retried at the next change", "property", id, "err", err)
			continue
		}
		m.jobs[id] = *pms
		m.log.Info("roster pull scheduled", "property", id, "pms", pms.String())
	}
	for id := range m.jobs {
		if _, ok := want[id]; ok {
			continue
		}
		if err := m.sched.Remove(ctx, pullJob(id)); err != nil {
			m.log.Error("roster pull: not unscheduled", "property", id, "err", err)
			continue
		}
		delete(m.jobs, id)
		m.log.Info("roster pull unscheduled", "property", id)
	}
}

func (m *pmsPulls) job(id string, every time.Duration) schedule.Job {
	return schedule.Job{Name: pullJob(id), Next: schedule.Every(every), First: time.Now(),
		Run: func(ctx context.Context, _ time.Time) error {
			lp := m.reg.lookup(id)
			if lp == nil || lp.prop.PMS == nil {
				return nil // removed meanwhile: sync unschedules it
			}
			_, err := m.puller.Pull(ctx, lp.prop)
			m.refresh(ctx)
			return err
		}}
}

// refresh reads every scheduled property's last pull and next due time.
func (m *pmsPulls) refresh(ctx context.Context) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.jobs))
	for id := range m.jobs {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	last, err := m.puller.Statuses(ctx, ids)
	if err != nil {
		return // the view shown stays; read again at the next poll
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = pullJob(id)
	}
	due, err := m.sched.Dues(ctx, names)
	if err != nil {
		return
	}
	view := make(map[string]pullView, len(ids))
	for _, id := range ids {
		st, ok := last[id]
		view[id] = pullView{last: st, hasLast: ok, next: due[pullJob(id)]}
	}
	m.view.Store(&view)
}

// status is property p's pms block as the admin API shows it: no secret.
func (m *pmsPulls) status(p property.Property) *server.PMSStatus {
	if p.PMS == nil {
		return nil
	}
	out := &server.PMSStatus{System: p.PMS.System, URL: p.PMS.URL, PropertyIDs: p.PMS.PropertyIDs, Every: p.PMS.Every, SecretSet: p.PMS.ClientSecret != ""}
	if v, ok := (*m.view.Load())[p.ID]; ok {
		out.NextPullAt = v.next
		if v.hasLast {
			out.LastPullAt, out.LastPullResult, out.LastPullError, out.LastPullVer = v.last.At, v.last.Result, v.last.Error, v.last.Version
		}
	}
	return out
}

// PullRoster pulls property id's roster from its PMS now, as the
// scheduled pull does (`cloudkey roster pull`): the property as `cloudkey
// serve` stores it in Redis (its secrets opened with keys), then the
// reconciliation with its access systems through the command's own
// clients.
func PullRoster(ctx context.Context, rdb redis.UniversalClient, keys *secrets.Keyring, id string, log *slog.Logger) (pmspull.Status, error) {
	p, ok, err := propertyredis.New(rdb, keys).Get(ctx, id)
	if err != nil {
		return pmspull.Status{}, fmt.Errorf("read property %s: %w", id, err)
	}
	if !ok {
		return pmspull.Status{}, fmt.Errorf("property %s is not stored in this Redis: is it the one `cloudkey serve` uses, and is the property served?", id)
	}
	if p.PMS == nil {
		return pmspull.Status{}, fmt.Errorf("property %s has no pms block in the properties file: nothing to pull from", id)
	}
	puller, err := pmspull.New(pmspull.Config{Redis: rdb, Rosters: rosterredis.New(rdb), Logger: log,
		Directories: func(ctx context.Context, id string) (string, []reconcile.Connection, error) {
			return RosterDirectories(ctx, rdb, keys, id)
		}})
	if err != nil {
		return pmspull.Status{}, err
	}
	return puller.Pull(ctx, p)
}

// startDemoPMS starts the embedded Buildium simulator with the demo's
// leases and gives the demo properties a pms block on it, so the demo
// pulls its rosters as a deployment would.
func (acc *accessSystems) startDemoPMS(ps []property.Property, log *slog.Logger) (*buildiumsim.Server, error) {
	bs, err := buildiumsim.Start(buildiumsim.DemoSeed())
	if err != nil {
		return nil, fmt.Errorf("embedded Buildium simulator: %w", err)
	}
	acc.buildiumSim = bs
	rentals := map[string]int32{demoPropertyID: buildiumsim.DemoHarborViewID, demoSecondID: buildiumsim.DemoFoundryLoftsID}
	for i := range ps {
		if id, ok := rentals[ps[i].ID]; ok {
			ps[i].PMS = &property.PMS{System: property.Buildium, URL: bs.URL, ClientID: buildiumsim.DemoClientID,
				ClientSecret: buildiumsim.DemoClientSecret, PropertyIDs: []int32{id}, Every: property.DefaultPMSEvery}
		}
	}
	log.Warn("embedded Buildium simulator: the demo properties' rosters are pulled from it", "buildium", bs.URL)
	return bs, nil
}
