package setup

import (
	"context"
	"errors"
	"time"

	"github.com/cloudkey/cloudkey/internal/schedule"
	"github.com/cloudkey/cloudkey/roster/moveout"
)

// moveOutJob is the scheduled sweep of the move-out policies, one job for
// the deployment (run by one replica at a time).
const moveOutJob = "moveout-sweep"

// DefaultMoveOutSweep is how often the move-out policies are looked at:
// a resident's access ends at most this long after its cut-off.
const DefaultMoveOutSweep = 5 * time.Minute

// runMoveOut runs property's move-out policy when it is due (an auto
// policy with something to do: moveout.Runner.Due), after a roster pull
// and at each sweep. A run already in progress on another replica is
// theirs; a failure is logged and retried at the next sweep.
func (m *pmsPulls) runMoveOut(ctx context.Context, property string) {
	r := m.moveouts.Load()
	if r == nil {
		return // not built yet at start: the first sweep does it
	}
	due, why, err := r.Due(ctx, property)
	if err != nil {
		m.log.Warn("move-out policy: cannot tell whether a run is due; asked again at the next sweep", "property", property, "err", err)
		return
	}
	if !due {
		return
	}
	res, err := r.Run(ctx, property, false)
	switch {
	case errors.Is(err, moveout.ErrBusy):
		return
	case err != nil:
		m.log.Warn("move-out policy: the run failed; retried at the next sweep", "property", property, "why", why, "err", err)
		return
	}
	m.log.Info("move-out policy ran", "property", property, "why", why, "roster_version", res.RosterVersion,
		"changes", len(res.Changes), "failed", res.Failed, "held", res.Guard.Tripped)
}

// sweepJob looks at every served property's move-out policy.
func (m *pmsPulls) sweepJob(every time.Duration) schedule.Job {
	return schedule.Job{Name: moveOutJob, Next: schedule.Every(every),
		Run: func(ctx context.Context, _ time.Time) error {
			for _, p := range m.reg.properties() {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				m.runMoveOut(ctx, p.ID)
			}
			return nil
		}}
}
