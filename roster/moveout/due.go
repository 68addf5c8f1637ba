package moveout

import (
	"context"
	"fmt"
	"time"
)

// MaxRunGap is the longest an auto policy goes without a run even when
// nothing in the roster falls due: a daily run retries what a person
// changed in the access system meanwhile and re-reads the users.
const MaxRunGap = 24 * time.Hour

// Due reports whether property's policy needs a run now, and why: only
// an auto policy ever does, and then when it never ran, its last run left
// failed changes (retried), the roster changed since, a resident's end of
// access (move-out, grace and cut-off in the property's time zone) fell
// between the last run and now, or the last run is MaxRunGap old. It reads
// Redis only (the policy, the last run, the roster), so a scheduler can
// ask every few minutes for every property without listing any access
// system's users; Run does that when Due says so.
func (r *Runner) Due(ctx context.Context, property string) (bool, string, error) {
	pol, _, err := r.cfg.Store.Policy(ctx, property)
	if err != nil {
		return false, "", err
	}
	if pol.Mode != ModeAuto {
		return false, "", nil
	}
	last, ran, err := r.cfg.Store.Last(ctx, property)
	if err != nil {
		return false, "", err
	}
	now := r.cfg.Now()
	switch {
	case !ran:
		return true, "first auto run", nil
	case last.Failed > 0:
		return true, fmt.Sprintf("retry %d failed %s", last.Failed, plural(last.Failed, "change")), nil
	case now.Sub(last.At) >= MaxRunGap:
		return true, "daily run", nil
	}
	cur, ok, err := r.cfg.Rosters.Current(ctx, property)
	if err != nil {
		return false, "", err
	}
	if !ok {
		return false, "", nil // nothing to act on until a roster comes
	}
	if cur.Version != last.RosterVersion {
		return true, fmt.Sprintf("roster version %d (last run read %d)", cur.Version, last.RosterVersion), nil
	}
	if !samePolicy(last.Policy, pol) {
		return true, "the policy changed", nil
	}
	tz, _, served := r.cfg.Systems(property)
	if !served {
		return false, "", nil
	}
	loc, err := zone(property, tz)
	if err != nil {
		return false, "", err
	}
	for _, p := range cur.People {
		if p.MoveOut.IsZero() {
			continue
		}
		if end := EndOfAccess(p.MoveOut, pol, loc); end.After(last.At) && !end.After(now) {
			return true, "a resident's access ended at " + end.Format(time.RFC3339), nil
		}
	}
	return false, "", nil
}

// samePolicy compares what decides a run, not when it was saved.
func samePolicy(a, b Policy) bool {
	return a.Mode == b.Mode && a.GraceDays == b.GraceDays && a.Cutoff == b.Cutoff && a.MaxSuspendShare == b.MaxSuspendShare
}
