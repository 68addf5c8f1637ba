package visitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

// job is a scheduled suspension of an employee's access-system user, kept
// as JSON in the store's JobQueue under the user id. One job per user: a
// new sign-in replaces it.
type job struct {
	UserID   string    `json:"userId"`
	Email    string    `json:"email"`
	Location string    `json:"location"`
	EntryID  string    `json:"entryId"` // the Envoy entry that scheduled it
	Due      time.Time `json:"due"`
	// Nonce makes each scheduling distinct, so that a claimed job's
	// snapshot tells whether it was rescheduled or cancelled meanwhile.
	Nonce string `json:"nonce"`
}

// Suspension is a scheduled employee suspension.
type Suspension struct {
	UserID   string
	Email    string
	Location string
	Due      time.Time
}

const (
	// claimBatch is how many due jobs one RunDue claims at most.
	claimBatch = 64
	// retryAfter is when a job whose suspension failed is tried again.
	retryAfter = 30 * time.Second
	// busyRetry is when a job whose employee was locked is tried again.
	busyRetry = time.Second
)

// schedule stores j, replacing the user's previous job; a claim of the old
// one in progress finds its snapshot changed and does nothing.
func (s *Service) schedule(ctx context.Context, j job) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("visitor: encode suspension: %w", err)
	}
	if err := s.store.PutJob(ctx, j.UserID, b, j.Due); err != nil {
		return fmt.Errorf("visitor: schedule the suspension of user %s: %w", j.UserID, err)
	}
	return nil
}

// cancelJob removes the user's job, claimed or not.
func (s *Service) cancelJob(ctx context.Context, userID string) error {
	if err := s.store.CancelJob(ctx, userID); err != nil {
		return fmt.Errorf("visitor: cancel the suspension of user %s: %w", userID, err)
	}
	return nil
}

// Suspensions lists the scheduled employee suspensions, soonest first.
func (s *Service) Suspensions(ctx context.Context) ([]Suspension, error) {
	all, err := s.store.Jobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("visitor: list suspensions: %w", err)
	}
	out := make([]Suspension, 0, len(all))
	for _, data := range all {
		var j job
		if err := json.Unmarshal([]byte(data), &j); err != nil {
			continue
		}
		out = append(out, Suspension{UserID: j.UserID, Email: j.Email, Location: j.Location, Due: j.Due})
	}
	slices.SortFunc(out, func(a, b Suspension) int { return a.Due.Compare(b.Due) })
	return out, nil
}

// RunScheduler executes scheduled suspensions as they fall due, every
// SchedulerInterval, until ctx ends (it then returns nil). Every replica
// may run it: each job is claimed atomically by one of them, a claim whose
// replica dies is taken over after its lease, and a job is executed once.
func (s *Service) RunScheduler(ctx context.Context) error {
	t := time.NewTicker(s.cfg.SchedulerInterval)
	defer t.Stop()
	for {
		for {
			n, err := s.RunDue(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "visitor: scheduled suspensions", "err", err)
			}
			if n < claimBatch || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunDue claims the suspensions due now and executes them; it returns how
// many it claimed. RunScheduler calls it in a loop; tests call it to step.
func (s *Service) RunDue(ctx context.Context) (int, error) {
	now := s.now()
	lease := now.Add(2 * s.lockTTL())
	res, err := s.store.ClaimJobs(ctx, now, lease, claimBatch)
	if err != nil {
		return 0, fmt.Errorf("visitor: claim due suspensions: %w", err)
	}
	for i := 0; i+1 < len(res); i += 2 {
		s.runJob(ctx, res[i], res[i+1])
	}
	return len(res) / 2, nil
}

// runJob executes one claimed job under the employee's lock: if the job is
// still the one claimed (no sign-in rescheduled it, no sign-out cancelled
// it) and Protect still applies to the employee, the user is suspended.
func (s *Service) runJob(ctx context.Context, member, snapshot string) {
	finish := func(requeueAt time.Time) {
		if err := s.store.FinishJob(context.WithoutCancel(ctx), member, snapshot, requeueAt); err != nil {
			s.log.ErrorContext(ctx, "visitor: cannot finish a suspension job; its lease will expire", "user", member, "err", err)
		}
	}
	var j job
	if err := json.Unmarshal([]byte(snapshot), &j); err != nil {
		s.log.ErrorContext(ctx, "visitor: dropping an unreadable suspension job", "user", member, "err", err)
		finish(time.Time{})
		return
	}
	release, err := s.lock(ctx, "prot:"+j.UserID, 0)
	if err != nil {
		finish(s.now().Add(busyRetry))
		return
	}
	defer release()
	cur, _, err := s.store.Job(ctx, member)
	if err != nil {
		finish(s.now().Add(busyRetry))
		return
	}
	if cur != snapshot {
		finish(time.Time{}) // rescheduled or cancelled meanwhile: the snapshot is stale
		return
	}
	st, ok, err := s.loadSettings(ctx, j.Location)
	if err != nil {
		finish(s.now().Add(retryAfter))
		return
	}
	out := Outcome{At: s.now().UTC(), Event: "protect_suspension", Location: j.Location, EntryID: j.EntryID, Employee: j.Email}
	if !ok || !st.Protect.Enabled || st.excluded(j.Email) {
		// Protect no longer applies to this employee: leave the user be.
		finish(time.Time{})
		s.logDecision(ctx, ignored(out, "Protect no longer applies to the employee; suspension dropped"))
		return
	}
	sys, err := s.accessFor(st.Property)
	if err != nil {
		// The property lost its access system: nothing can suspend the
		// user here any more.
		finish(time.Time{})
		s.logDecision(ctx, refused(out, err.Error()+"; suspension dropped"))
		return
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AccessTimeout)
	err = sys.SetUserStatus(actx, j.UserID, access.StatusSuspended)
	cancel()
	switch {
	case errors.Is(err, access.ErrNotFound):
		finish(time.Time{})
		s.logDecision(ctx, refused(out, "the access-system user no longer exists"))
		return
	case err != nil:
		s.log.WarnContext(ctx, "visitor: scheduled suspension failed; will retry", "user", j.UserID, "err", err, "retry_in", retryAfter)
		finish(s.now().Add(retryAfter))
		return
	}
	finish(time.Time{})
	out.Action, out.Reason = ActionEmployeeSuspended, "employee access duration elapsed"
	s.logDecision(ctx, out)
	s.log.InfoContext(ctx, "visitor: employee suspended after the access duration", "user", j.UserID, "location", j.Location)
}
