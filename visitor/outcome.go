package visitor

import "time"

// Action is what handling an event did.
type Action string

// Actions.
const (
	// ActionIssued: a new pass was issued (and its link sent).
	ActionIssued Action = "ISSUED"
	// ActionUpdated: an existing pass changed (window, entries, contact).
	ActionUpdated Action = "UPDATED"
	// ActionActivated: a sign-in activated the visitor's invited pass (no
	// second pass).
	ActionActivated Action = "ACTIVATED"
	// ActionUnchanged: the event changed nothing.
	ActionUnchanged Action = "UNCHANGED"
	// ActionEnded: a pass ended (sign-out, invite removed, type now
	// blocked), or a tombstone was recorded for a visit that had none, so
	// that late events cannot start one.
	ActionEnded Action = "ENDED"
	// ActionRefused: no pass (blocked type, invite only, no entries for
	// the type, visit already ended); Reason says why.
	ActionRefused Action = "REFUSED"
	// ActionHeld: Envoy's block list put the entry under review; no pass
	// until it is approved (an event carrying approval-status approved,
	// or Approve).
	ActionHeld Action = "HELD"
	// ActionIgnored: the event is not for this service (unhandled event
	// type, location without settings, Protect off, excluded employee).
	ActionIgnored Action = "IGNORED"
	// ActionEmployeeActivated and ActionEmployeeSuspended: Protect changed
	// an employee's access-system user.
	ActionEmployeeActivated Action = "EMPLOYEE_ACTIVATED"
	ActionEmployeeSuspended Action = "EMPLOYEE_SUSPENDED"
)

// Outcome is what handling one event decided. Decisions are stored with
// the visit and in the location's log, so a refusal's reason can be looked
// up later (Decisions, Visit).
type Outcome struct {
	At       time.Time
	Event    string // Envoy event name
	Location string // Envoy location id
	InviteID string
	EntryID  string // the Envoy entry (sign-in) id
	// Visitor is the visitor's name; Employee the employee's email for
	// Protect events.
	Visitor  string
	Employee string
	Action   Action
	Reason   string
	// PassID identifies the pass concerned (never its link token).
	PassID string
	// Duplicate is set when the event had been handled already: nothing
	// was done and the fields are those of the first handling.
	Duplicate bool
}
