package moveout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
	"github.com/cloudkey/cloudkey/unlock"
)

// Audit kinds of the move-out policy's actions (unlock.Kinds lists
// them).
const (
	KindSuspended   = unlock.KindMoveOutSuspended
	KindReactivated = unlock.KindMoveOutReactivated
	KindGuard       = unlock.KindMoveOutGuard
	KindOverride    = unlock.KindMoveOutOverride
)

// Actor is who the audit says acted: cloudkey, under the property's
// policy.
const Actor = "cloudkey:moveout-policy"

// DefaultLockTTL bounds a run: the lock that keeps other replicas out
// expires then, and the run's context ends a little before.
const DefaultLockTTL = 10 * time.Minute

// Connection is one access system of the property: its directory, read
// by reconciliation, and what suspends and reactivates its users.
type Connection struct {
	reconcile.Connection
	Setter access.StatusSetter
}

// Connections makes Connections of reconciliation's: every access-system
// client that lists users also sets their status (openpath and kisi);
// one that does not gets a nil Setter, and its changes fail.
func Connections(conns []reconcile.Connection) []Connection {
	out := make([]Connection, len(conns))
	for i, c := range conns {
		out[i].Connection = c
		out[i].Setter, _ = c.Directory.(access.StatusSetter)
	}
	return out
}

// Systems gives a property's time zone (IANA, "" for UTC) and access
// systems; ok is false when the property is not served.
type Systems func(property string) (timeZone string, conns []Connection, ok bool)

// Config configures a Runner.
type Config struct {
	// Store keeps the policies and records; Rosters the rosters and the
	// reconciliation's links. Both required.
	Store   *Store
	Rosters *rosterredis.Store
	// Systems gives each property's access systems. Required.
	Systems Systems
	// Invalidate drops a resident's cached accounts and entries at a
	// property, by canonical email, once their user's status changed;
	// nil: nothing is cached.
	Invalidate func(ctx context.Context, property, email string) error
	// Audit records each action and each refusal of the guard; nil:
	// unlock.Discard.
	Audit unlock.Auditor
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	// LockTTL bounds a run; 0: DefaultLockTTL.
	LockTTL time.Duration
	// Logger receives warnings of failed actions; nil discards them.
	Logger *slog.Logger
}

// Runner runs properties' move-out policies. It is safe for concurrent
// use; runs of one property are serialised across replicas by a Redis
// lock (a second one fails with ErrBusy).
type Runner struct {
	cfg Config
}

// New returns a Runner.
func New(cfg Config) (*Runner, error) {
	if cfg.Store == nil || cfg.Rosters == nil || cfg.Systems == nil {
		return nil, errors.New("moveout: Store, Rosters and Systems are required")
	}
	if cfg.Audit == nil {
		cfg.Audit = unlock.Discard{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LockTTL <= 0 {
		cfg.LockTTL = DefaultLockTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg}, nil
}

// Store is the runner's store (policies, records).
func (r *Runner) Store() *Store { return r.cfg.Store }

// Result is a run: the policy it ran under, the roster version it read,
// and its plan; Applied when it changed the access systems (an auto run
// that was not a dry run).
type Result struct {
	Property      string    `json:"property"`
	Policy        Policy    `json:"policy"`
	DryRun        bool      `json:"dryRun"`
	Applied       bool      `json:"applied"`
	At            time.Time `json:"at"`
	TimeZone      string    `json:"timeZone"`
	RosterVersion int       `json:"rosterVersion"`
	// Skipped says why the run did nothing at all (the policy is off).
	Skipped string `json:"skipped,omitempty"`
	Plan
	// Failed counts the changes whose call failed (retried next run).
	Failed int `json:"failed"`

	// suspended are the records the plan was made with.
	suspended map[UserRef]Record
}

// evaluate plans res from the roster's people and a reconciliation of
// them: the users' statuses are the reconciliation's, the records the
// store's.
func (r *Runner) evaluate(ctx context.Context, res *Result, loc *time.Location, now time.Time, people []roster.Person, rep *reconcile.Report) error {
	statuses := map[UserRef]access.Status{}
	for _, row := range rep.Rows {
		if row.Connection != "" && row.UserID != "" {
			statuses[UserRef{row.Connection, row.UserID}] = row.AccessStatus
		}
	}
	suspended, err := r.cfg.Store.Suspended(ctx, res.Property)
	if err != nil {
		return err
	}
	res.suspended = suspended
	res.Plan = Evaluate(Input{Policy: res.Policy, Location: loc, Now: now, RosterVersion: res.RosterVersion, People: people,
		Links: rep.Links, Statuses: statuses, Suspended: suspended})
	return nil
}

// PlanFor is a dry run on a reconciliation the caller made (a roster
// report) of people, the roster it compared: what the policy would do as
// it stands, without reading the access systems again. It writes
// nothing.
func (r *Runner) PlanFor(ctx context.Context, property, timeZone string, people []roster.Person, rep *reconcile.Report) (Result, error) {
	pol, _, err := r.cfg.Store.Policy(ctx, property)
	if err != nil {
		return Result{}, err
	}
	loc, err := zone(property, timeZone)
	if err != nil {
		return Result{}, err
	}
	now := r.cfg.Now()
	res := Result{Property: property, Policy: pol, DryRun: true, At: now.UTC(), TimeZone: timeZone, RosterVersion: rep.RosterVersion}
	if err := r.evaluate(ctx, &res, loc, now, people, rep); err != nil {
		return Result{}, err
	}
	return res, nil
}

// ErrNotServed: the property is not served (no access systems).
var ErrNotServed = errors.New("the property is not served")

// Run runs property's policy now. A dry run, or a run in report mode,
// reconciles and returns the plan without writing anything (not even the
// reconciliation's links). Off mode does nothing unless dryRun, which
// shows what auto would do. In auto mode every change is made on its
// connection, the resident's cache dropped and the action audited; a
// failed call is reported in its Change and does not stop the others.
func (r *Runner) Run(ctx context.Context, property string, dryRun bool) (Result, error) {
	store := r.cfg.Store
	pol, _, err := store.Policy(ctx, property)
	if err != nil {
		return Result{}, err
	}
	now := r.cfg.Now()
	res := Result{Property: property, Policy: pol, DryRun: dryRun, At: now.UTC(), Plan: Plan{Changes: []Change{}}}
	if pol.Mode == ModeOff && !dryRun {
		res.Skipped = "the move-out policy is off"
		return res, nil
	}
	write := !dryRun && pol.Mode == ModeAuto
	if write {
		release, err := store.lock(ctx, property, r.cfg.LockTTL)
		if err != nil {
			return Result{}, err
		}
		defer release()
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.LockTTL-r.cfg.LockTTL/10)
		defer cancel()
	}
	tz, conns, ok := r.cfg.Systems(property)
	if !ok {
		return Result{}, fmt.Errorf("moveout: %s: %w", property, ErrNotServed)
	}
	res.TimeZone = tz
	loc, err := zone(property, tz)
	if err != nil {
		return Result{}, err
	}
	cur, ok, err := r.cfg.Rosters.Current(ctx, property)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{}, fmt.Errorf("moveout: %s: %w", property, reconcile.ErrNoRoster)
	}
	res.RosterVersion = cur.Version
	dirs := make([]reconcile.Connection, len(conns))
	setters := map[string]access.StatusSetter{}
	for i, c := range conns {
		dirs[i] = c.Connection
		setters[c.Name] = c.Setter
	}
	rep, err := reconcile.Run(ctx, reconcile.Input{Property: property, Version: cur.Version, People: cur.People, Today: dateIn(now, loc)}, dirs)
	if err != nil {
		return Result{}, fmt.Errorf("moveout: %w", err)
	}
	if write {
		links := rosterredis.Links{RosterVersion: cur.Version, At: now.UTC(), Links: rep.Links}
		if err := r.cfg.Rosters.SaveReconciliation(ctx, property, links, rep.NearMissEmails); err != nil {
			return Result{}, fmt.Errorf("moveout: %w", err)
		}
	}
	if err := r.evaluate(ctx, &res, loc, now, cur.People, rep); err != nil {
		return Result{}, err
	}
	if !write {
		return res, nil
	}
	res.Applied = true
	r.apply(ctx, property, &res, setters)
	if err := store.SaveLast(ctx, property, res); err != nil {
		r.cfg.Logger.Warn("move-out run: could not keep the run", "property", property, "err", err)
	}
	return res, nil
}

// apply makes res's changes and keeps the records.
func (r *Runner) apply(ctx context.Context, property string, res *Result, setters map[string]access.StatusSetter) {
	store, now := r.cfg.Store, r.cfg.Now().UTC()
	why := "policy " + res.Policy.Describe() + "; roster version " + fmt.Sprint(res.RosterVersion)
	if g := res.Guard; g.Tripped {
		r.cfg.Audit.Record(unlock.Attempt{Kind: KindGuard, At: now, Email: Actor, EntryID: "moveout", Property: property, Status: unlock.Denied,
			Message: fmt.Sprintf("suspended nobody: this run would suspend %d of %d linked residents, more than the %d allowed (a truncated roster export?); check the roster, then raise max_suspend_share or suspend by hand; %s",
				g.Suspensions, g.Linked, g.Allowed, why)})
	}
	for _, ref := range res.MarkOverride {
		rec := res.suspended[ref]
		rec.Override, rec.OverrideSeen = true, now
		if err := store.PutSuspended(ctx, property, rec); err != nil {
			r.cfg.Logger.Warn("move-out run: could not mark an override", "property", property, "user", ref.String(), "err", err)
			continue // seen again next run, and recorded then
		}
		r.cfg.Audit.Record(unlock.Attempt{Kind: KindOverride, At: now, Email: Actor, EntryID: ref.String(), System: ref.Connection,
			Property: property, Status: unlock.OK,
			Message: fmt.Sprintf("left active: a person reactivated %s (%s) after cloudkey suspended it on %s (%s); the resident is still moved out, so this is the manager's decision; %s",
				ref.String(), rec.Email, rec.At.Format("2006-01-02"), rec.Reason, why)})
	}
	for _, ref := range res.Forget {
		if err := store.DeleteSuspended(ctx, property, ref); err != nil {
			r.cfg.Logger.Warn("move-out run: could not forget a suspension", "property", property, "user", ref.String(), "err", err)
		}
	}
	for i := range res.Changes {
		c := &res.Changes[i]
		err := r.change(ctx, property, *c, setters[c.Connection], now)
		kind, verb := KindSuspended, "suspended"
		if c.Action == Reactivate {
			kind, verb = KindReactivated, "reactivated"
		}
		at := unlock.Attempt{Kind: kind, At: now, Email: Actor, EntryID: c.Ref().String(), System: c.Connection, Property: property, Status: unlock.OK,
			Message: fmt.Sprintf("%s %s (unit %s, %s, person %s): %s; %s", verb, nameOr(c), c.Unit, c.Email, c.PersonKey, c.Reason, why)}
		if err != nil {
			c.Error = err.Error()
			res.Failed++
			at.Status = unlock.Error
			at.Message = "could not be " + at.Message + ": " + err.Error() + " (tried again next run)"
			r.cfg.Logger.Warn("move-out run: change failed", "property", property, "action", c.Action, "user", c.Ref().String(), "err", err)
		} else {
			c.Done = true
		}
		r.cfg.Audit.Record(at)
	}
}

// change makes one change, then records it and drops the resident's
// cache.
func (r *Runner) change(ctx context.Context, property string, c Change, setter access.StatusSetter, now time.Time) error {
	if setter == nil {
		return fmt.Errorf("connection %s cannot suspend or reactivate users", c.Connection)
	}
	st := access.StatusSuspended
	if c.Action == Reactivate {
		st = access.StatusActive
	}
	rec := Record{Connection: c.Connection, UserID: c.UserID, PersonKey: c.PersonKey,
		Email: c.Email, At: now, RosterVersion: c.RosterVersion, Reason: c.Reason}
	if c.Action == Suspend {
		// The record first: a suspension cloudkey could not record is one
		// it could never undo, so it is not made.
		rec.Pending = true
		if err := r.cfg.Store.PutSuspended(ctx, property, rec); err != nil {
			return fmt.Errorf("not suspended, as its record could not be kept: %w", err)
		}
	}
	if err := setter.SetUserStatus(ctx, c.UserID, st); err != nil {
		if c.Action == Suspend {
			// Best effort: a pending record left behind with the user
			// active is read as a suspension not made (Evaluate).
			_ = r.cfg.Store.DeleteSuspended(context.WithoutCancel(ctx), property, c.Ref())
		}
		return err
	}
	var err error
	if c.Action == Suspend {
		rec.Pending = false
		err = r.cfg.Store.PutSuspended(ctx, property, rec)
	} else {
		err = r.cfg.Store.DeleteSuspended(ctx, property, c.Ref())
	}
	if err != nil {
		// The access system changed. A suspension's record stays pending,
		// which still counts as cloudkey's; a reactivation's record stays,
		// and is forgotten by the next run (current and active).
		r.cfg.Logger.Warn("move-out run: the record of a change was not updated", "property", property, "user", c.Ref().String(), "err", err)
	}
	if r.cfg.Invalidate != nil {
		if err := r.cfg.Invalidate(ctx, property, identity.FoldEmail(c.Email)); err != nil {
			r.cfg.Logger.Warn("move-out run: could not drop the cache", "property", property, "user", c.Ref().String(), "err", err)
		}
	}
	return nil
}

func nameOr(c *Change) string {
	if c.Name != "" {
		return c.Name
	}
	return c.PersonKey
}

// dateIn is now's calendar date in loc.
func dateIn(now time.Time, loc *time.Location) roster.Date { return roster.DateOf(now.In(loc)) }

// zone is the property's time zone tz (IANA; UTC when empty).
func zone(property, tz string) (*time.Location, error) {
	if tz == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("moveout: %s: time zone %q: %w", property, tz, err)
	}
	return loc, nil
}
