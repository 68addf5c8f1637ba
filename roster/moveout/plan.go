package moveout

import (
	"fmt"
	"sort"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/roster"
)

// Action is what a change does to an access-system user.
type Action string

// The actions.
const (
	Suspend    Action = "suspend"
	Reactivate Action = "reactivate"
)

// UserRef names an access-system user: its connection and its id there.
type UserRef struct {
	Connection string `json:"connection"`
	UserID     string `json:"userId"`
}

func (r UserRef) String() string { return r.Connection + "/" + r.UserID }

// Change is one suspension or reactivation: planned, pending (Due in the
// future) or, in an auto run, done (Done) or failed (Error).
type Change struct {
	Action     Action `json:"action"`
	PersonKey  string `json:"personKey"`
	Name       string `json:"name,omitempty"`
	Unit       string `json:"unit,omitempty"`
	Connection string `json:"connection"`
	UserID     string `json:"userId"`
	// Email is the access-system user's, as written there.
	Email string `json:"email"`
	// Reason says why, in words: the status or move-out date, the grace
	// and cut-off that made the instant.
	Reason        string `json:"reason"`
	RosterVersion int    `json:"rosterVersion"`
	// Due is when the resident's access ends (ended); zero for an end at
	// once (past, canceled, denied) and for a reactivation.
	Due time.Time `json:"due,omitzero"`
	// Done and Error are an auto run's outcome of the change.
	Done  bool   `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}

// Ref is the change's user.
func (c Change) Ref() UserRef { return UserRef{c.Connection, c.UserID} }

// Override is a user cloudkey suspended that a person reactivated while
// the resident is still moved out: the manager's decision, which cloudkey
// leaves alone.
type Override struct {
	PersonKey   string    `json:"personKey"`
	Name        string    `json:"name,omitempty"`
	Unit        string    `json:"unit,omitempty"`
	Connection  string    `json:"connection"`
	UserID      string    `json:"userId"`
	Email       string    `json:"email"`
	SuspendedAt time.Time `json:"suspendedAt"`
	Reason      string    `json:"reason"`
}

// Guard is the mass-suspension guard's verdict on a run.
type Guard struct {
	// Tripped: the run would have suspended more residents than allowed,
	// so it suspended nobody (Held lists whom).
	Tripped bool `json:"tripped"`
	// Suspensions is how many residents the run would suspend; Allowed
	// how many it may (Policy.Allowance of Linked, the linked residents).
	Suspensions int `json:"suspensions"`
	Allowed     int `json:"allowed"`
	Linked      int `json:"linked"`
}

// Record is a user cloudkey suspended: only these are ever reactivated
// by cloudkey.
type Record struct {
	Connection    string    `json:"connection"`
	UserID        string    `json:"userId"`
	PersonKey     string    `json:"personKey"`
	Email         string    `json:"email"`
	At            time.Time `json:"at"`
	RosterVersion int       `json:"rosterVersion"`
	Reason        string    `json:"reason"`
	// Override is set once a person reactivated the user while the
	// resident was still moved out; cloudkey then never suspends it
	// again for that move-out.
	Override     bool      `json:"override,omitempty"`
	OverrideSeen time.Time `json:"overrideSeen,omitzero"`
	// Pending is set while the suspension is being made: the record is
	// written before the access system is asked (so that no user is ever
	// suspended by cloudkey without a record to reactivate it from) and
	// confirmed after. A pending record whose user is still active is a
	// suspension that did not happen, not a person's reactivation.
	Pending bool `json:"pending,omitempty"`
}

// Ref is the record's user.
func (r Record) Ref() UserRef { return UserRef{r.Connection, r.UserID} }

// Input is what Evaluate decides from.
type Input struct {
	Policy Policy
	// Location is the property's time zone.
	Location *time.Location
	Now      time.Time
	// RosterVersion and People are the latest roster.
	RosterVersion int
	People        []roster.Person
	// Links are this run's fresh reconciliation's links; Statuses the
	// linked users' statuses it read.
	Links    []roster.Link
	Statuses map[UserRef]access.Status
	// Suspended are the users cloudkey suspended (the stored records).
	Suspended map[UserRef]Record
}

// Plan is what a run does, decided by Evaluate.
type Plan struct {
	// Changes are the suspensions and reactivations to make now; when the
	// guard tripped, reactivations only.
	Changes []Change `json:"changes"`
	// Held are the suspensions the guard refused.
	Held []Change `json:"held,omitempty"`
	// Pending are the suspensions due later, as the roster stands.
	Pending   []Change   `json:"pending,omitempty"`
	Overrides []Override `json:"overrides,omitempty"`
	Guard     Guard      `json:"guard"`
	// MarkOverride are records to mark as overrides; Forget records to
	// drop (the resident is current again and the user active).
	MarkOverride []UserRef `json:"-"`
	Forget       []UserRef `json:"-"`
}

// verdict is when a person's access ends as the roster says.
type verdict struct {
	ends bool
	// end is when; zero: at once.
	end    time.Time
	reason string
	person roster.Person // the row that decided
}

// rowEnd is when one roster row's access ends.
func rowEnd(p roster.Person, pol Policy, loc *time.Location) verdict {
	switch p.Status {
	case roster.StatusPast, roster.StatusCanceled, roster.StatusDenied:
		return verdict{ends: true, reason: "status " + string(p.Status) + " in the roster", person: p}
	}
	if p.MoveOut.IsZero() {
		// Month-to-month, or no move-out known: access goes on.
		return verdict{person: p}
	}
	end := EndOfAccess(p.MoveOut, pol, loc)
	what := "moves out"
	if p.MoveOutIsActual {
		what = "moved out"
	}
	return verdict{ends: true, end: end, person: p,
		reason: fmt.Sprintf("%s on %s (status %s); access ends %s after %d grace %s at the %s cut-off",
			what, p.MoveOut, p.Status, end.Format("2006-01-02 15:04 MST"), pol.GraceDays, plural(pol.GraceDays, "day"), pol.CutoffString())}
}

// personEnd is when a person's access ends over all their rows (renewal,
// transfer): the most permissive row wins, so one row that keeps access
// keeps it, else the latest end.
func personEnd(rows []roster.Person, pol Policy, loc *time.Location) verdict {
	var best verdict
	for i, p := range rows {
		v := rowEnd(p, pol, loc)
		switch {
		case !v.ends:
			return v
		case i == 0, v.end.After(best.end):
			best = v
		}
	}
	return best
}

// EndOfAccess is the instant a resident who moves out on moveOut loses
// access under pol in loc: the cut-off's wall-clock time, GraceDays
// calendar days later (LocalInstant).
func EndOfAccess(moveOut roster.Date, pol Policy, loc *time.Location) time.Time {
	return LocalInstant(moveOut.Year, moveOut.Month, moveOut.Day+pol.GraceDays, pol.Cutoff, loc)
}

// LocalInstant is the instant of the wall-clock time minutes after
// midnight on the given day in loc (an out-of-range day is normalised,
// as time.Date does). When DST makes that time ambiguous (the clocks go
// back), it is its first occurrence; when the time does not exist (the
// clocks go forward over it), it is the instant the clocks jump, the
// first one at or after that wall-clock time.
func LocalInstant(year int, month time.Month, day, minutes int, loc *time.Location) time.Time {
	wall := time.Date(year, month, day, minutes/60, minutes%60, 0, 0, time.UTC)
	var found []time.Time
	for _, probe := range []time.Duration{-48 * time.Hour, 48 * time.Hour} {
		_, off := wall.Add(probe).In(loc).Zone()
		c := wall.Add(-time.Duration(off) * time.Second)
		l := c.In(loc)
		if l.Hour()*60+l.Minute() == minutes && l.Day() == wall.Day() {
			found = append(found, c)
		}
	}
	switch {
	case len(found) == 2 && found[1].Before(found[0]):
		return found[1]
	case len(found) > 0:
		return found[0]
	}
	// A gap: with the offset before it, the wall time lands after the
	// jump; the zone period it lands in starts at the jump.
	_, off := wall.Add(-48 * time.Hour).In(loc).Zone()
	start, _ := wall.Add(-time.Duration(off) * time.Second).In(loc).ZoneBounds()
	return start
}

// Evaluate decides a run: who is suspended, who reactivated, who is
// pending, and which suspensions a person overrode. It reads nothing and
// writes nothing.
func Evaluate(in Input) Plan {
	loc := in.Location
	if loc == nil {
		loc = time.UTC
	}
	rows := map[string][]roster.Person{}
	for _, p := range in.People {
		k := p.PersonKey()
		rows[k] = append(rows[k], p)
	}
	// Links by person, in a stable order: the plan lists people by unit
	// and name, then connection.
	linked := map[string][]roster.Link{}
	for _, l := range in.Links {
		if _, ok := rows[l.PersonKey]; ok {
			linked[l.PersonKey] = append(linked[l.PersonKey], l)
		}
	}
	plan := Plan{Changes: []Change{}}
	for key, links := range linked {
		v := personEnd(rows[key], in.Policy, loc)
		movedOut := v.ends && !in.Now.Before(v.end)
		p := v.person
		for _, l := range links {
			ref := UserRef{l.Connection, l.UserID}
			st, known := in.Statuses[ref]
			if !known {
				continue // not listed by this run's reconciliation
			}
			rec, has := in.Suspended[ref]
			if has && rec.PersonKey != key {
				// Suspended for someone else who no longer has this user:
				// not this person's suspension to undo or to honour.
				has = false
			}
			if has && rec.Pending && st == access.StatusActive {
				// The suspension was never made (the call failed and the
				// record outlived it): nothing of cloudkey's to honour.
				plan.Forget = append(plan.Forget, ref)
				has = false
			}
			if has && rec.Override && st != access.StatusActive {
				// A person reactivated it, then suspended it again: the
				// suspension is theirs now, never cloudkey's to undo.
				plan.Forget = append(plan.Forget, ref)
				has = false
			}
			change := Change{PersonKey: key, Name: p.Name(), Unit: p.Unit, Connection: l.Connection, UserID: l.UserID,
				Email: l.Email, RosterVersion: in.RosterVersion, Reason: v.reason, Due: v.end}
			switch {
			case movedOut && st == access.StatusActive && has:
				// cloudkey suspended it; a person reactivated it.
				if !rec.Override {
					plan.MarkOverride = append(plan.MarkOverride, ref)
				}
				plan.Overrides = append(plan.Overrides, Override{PersonKey: key, Name: p.Name(), Unit: p.Unit,
					Connection: l.Connection, UserID: l.UserID, Email: l.Email, SuspendedAt: rec.At,
					Reason: "reactivated by a person after cloudkey suspended it; the resident " + v.reason + ": left active as the manager's decision"})
			case movedOut && st == access.StatusActive:
				change.Action = Suspend
				plan.Changes = append(plan.Changes, change)
			case movedOut:
				// Already suspended or inactive: nothing to do.
			case has && st == access.StatusSuspended:
				change.Action, change.Due = Reactivate, time.Time{}
				change.Reason = "cloudkey suspended it (" + rec.Reason + "); the roster now keeps access: " + keepReason(v)
				plan.Changes = append(plan.Changes, change)
			case has && st == access.StatusActive:
				// Current again and active (a person reactivated it, or
				// an override whose move-out was withdrawn): the record
				// has served.
				plan.Forget = append(plan.Forget, ref)
			case v.ends && st == access.StatusActive:
				change.Action = Suspend
				plan.Pending = append(plan.Pending, change)
			}
		}
	}
	sortChanges(plan.Changes)
	sortChanges(plan.Pending)
	sort.Slice(plan.Overrides, func(i, j int) bool {
		a, b := plan.Overrides[i], plan.Overrides[j]
		return a.Unit+"\x00"+a.Name+"\x00"+a.Connection < b.Unit+"\x00"+b.Name+"\x00"+b.Connection
	})
	// The guard counts residents, not users: one resident has a user in
	// each connection.
	people := map[string]bool{}
	for _, c := range plan.Changes {
		if c.Action == Suspend {
			people[c.PersonKey] = true
		}
	}
	plan.Guard = Guard{Suspensions: len(people), Linked: len(linked), Allowed: in.Policy.Allowance(len(linked))}
	if plan.Guard.Suspensions > plan.Guard.Allowed {
		plan.Guard.Tripped = true
		kept := plan.Changes[:0:0]
		for _, c := range plan.Changes {
			if c.Action == Suspend {
				plan.Held = append(plan.Held, c)
			} else {
				kept = append(kept, c)
			}
		}
		plan.Changes = kept
	}
	return plan
}

func keepReason(v verdict) string {
	if v.ends {
		return v.reason
	}
	p := v.person
	if p.MoveOut.IsZero() {
		return "status " + string(p.Status) + ", no move-out date"
	}
	return "status " + string(p.Status)
}

func sortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Action != b.Action {
			return a.Action == Suspend
		}
		if a.Unit != b.Unit {
			return a.Unit < b.Unit
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.PersonKey != b.PersonKey {
			return a.PersonKey < b.PersonKey
		}
		return a.Connection < b.Connection
	})
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
