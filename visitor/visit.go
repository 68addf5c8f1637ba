package visitor

import (
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// visit is everything cloudkey knows about one visit, stored as JSON under
// visit:{key}. Its key is "inv:{inviteID}" for an invited visitor (the
// sign-in then joins it) and "ent:{entryID}" for a walk-in. A visit that
// ended (sign-out, invite removed) stays as a tombstone for the retention
// period, so that events arriving late or again cannot revive it.
type visit struct {
	Key          string    `json:"key"`
	Location     string    `json:"location"`
	LocationName string    `json:"locationName,omitempty"`
	TimeZone     string    `json:"timeZone,omitempty"` // from Envoy's meta
	InviteID     string    `json:"inviteId,omitempty"`
	EntryID      string    `json:"entryId,omitempty"` // the Envoy entry (sign-in)
	Name         string    `json:"name,omitempty"`
	Email        string    `json:"email,omitempty"` // canonical
	Phone        string    `json:"phone,omitempty"`
	Flow         string    `json:"flow,omitempty"` // visitor type
	Expected     time.Time `json:"expected,omitzero"`
	SignedIn     time.Time `json:"signedIn,omitzero"`
	SignedOut    time.Time `json:"signedOut,omitzero"`

	// Tile: registered in the tenant tile (Register), not invited through
	// Envoy: its pass follows the invite's window whatever invite only
	// says, as the tile issues the pass itself.
	Tile bool `json:"tile,omitempty"`
	// Held: Envoy's block list put the entry under review
	// (entry_blacklist_review); no pass is issued, and an existing one
	// does not open doors, until an event for the entry carries
	// approval-status approved or a manager approves it (Approve).
	Held   bool      `json:"held,omitempty"`
	HeldAt time.Time `json:"heldAt,omitzero"`

	// Ended is terminal: no event issues a pass for this visit again.
	Ended     bool      `json:"ended,omitempty"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	EndReason string    `json:"endReason,omitempty"`

	Pass      *pass     `json:"pass,omitempty"`
	Decisions []Outcome `json:"decisions,omitempty"` // the latest maxVisitDecisions

	// Host is the tenant contact who registered the visitor in the tile
	// (canonical email); "" for Envoy's invites and walk-ins.
	Host string `json:"host,omitempty"`
	// EnvoyHost and EnvoyHostEmail (canonical) are the employee the
	// visitor comes to see, as Envoy's events name them (an entry's host,
	// an invite's inviter).
	EnvoyHost      string `json:"envoyHost,omitempty"`
	EnvoyHostEmail string `json:"envoyHostEmail,omitempty"`
}

// pass is a visit's guest pass.
type pass struct {
	ID        string      `json:"id"`        // public: audit, logs, admin views
	TokenHash string      `json:"tokenHash"` // hex SHA-256 of the link token; the token itself is never stored
	Start     time.Time   `json:"start"`
	End       time.Time   `json:"end"`
	Flow      string      `json:"flow"` // the visitor type Entries were mapped from
	Entries   []PassEntry `json:"entries"`
	IssuedAt  time.Time   `json:"issuedAt"`
	// NotifiedTo is the contact the current link was sent to; a link is
	// sent once per contact.
	NotifiedTo string `json:"notifiedTo,omitempty"`
	// NotifiedAlso is the phone number the link also went to, for a
	// visitor with an email and a phone.
	NotifiedAlso string `json:"notifiedAlso,omitempty"`
	NotifyError  string `json:"notifyError,omitempty"`
	// Deliveries are the current link's messages, one per recipient, with
	// what the delivery system last said of each.
	Deliveries []sent `json:"deliveries,omitempty"`
	// Property is the property whose access system opens the pass's
	// entries (its location's when issued); "" in passes issued before
	// properties: the default property's.
	Property string `json:"property,omitempty"`
	// Upstream is the access system's unlock token for this pass, issued
	// on first use with the pass's window. It is a bearer credential
	// known only to cloudkey (never sent to the guest), dropped when the
	// window changes or the pass ends.
	Upstream *upstream `json:"upstream,omitempty"`
}

// PassEntry is an entry a pass opens.
type PassEntry struct {
	ID   string
	Name string
}

type upstream struct {
	Token     string    `json:"token"`
	NotBefore time.Time `json:"notBefore"`
	Expires   time.Time `json:"expires"`
}

const maxVisitDecisions = 20

// absorb takes what ev says about the visit. Empty fields never erase what
// an earlier event said: Envoy's payloads are not always complete. With
// fill set, only what the visit lacks is taken: an invite_created that
// arrives after an update or a sign-in is older news than they are.
func (v *visit) absorb(ev envoy.Event, fill bool) {
	set := func(dst *string, src string) {
		if src != "" && (!fill || *dst == "") {
			*dst = src
		}
	}
	setTime := func(dst *time.Time, src time.Time) {
		if !src.IsZero() && (!fill || dst.IsZero()) {
			*dst = src
		}
	}
	set(&v.Location, ev.Location.ID)
	set(&v.LocationName, ev.Location.Name)
	set(&v.TimeZone, ev.Location.TimeZone)
	set(&v.Name, ev.FullName)
	set(&v.Email, identity.FoldEmail(ev.Email))
	set(&v.Phone, ev.Phone)
	set(&v.Flow, ev.Flow)
	set(&v.EnvoyHost, ev.Host)
	set(&v.EnvoyHostEmail, identity.FoldEmail(ev.HostEmail))
	switch ev.Type {
	case envoy.TypeInvite:
		v.InviteID = ev.ID
		set(&v.EntryID, ev.EntryID)
		setTime(&v.Expected, ev.ExpectedArrival)
	case envoy.TypeEntry:
		v.EntryID = ev.ID
		set(&v.InviteID, ev.InviteID)
	}
	setTime(&v.SignedIn, ev.SignedInAt)
	setTime(&v.SignedOut, ev.SignedOutAt)
}

// contact is where the link goes first: the email, else the phone number.
func (v *visit) contact() string {
	if v.Email != "" {
		return v.Email
	}
	return v.Phone
}

// also is the phone number when the visitor has an email too: visitors
// with both get the link by both.
func (v *visit) also() string {
	if v.Email != "" {
		return v.Phone
	}
	return ""
}

func (v *visit) record(o Outcome) {
	v.Decisions = append(v.Decisions, o)
	if n := len(v.Decisions); n > maxVisitDecisions {
		v.Decisions = append([]Outcome(nil), v.Decisions[n-maxVisitDecisions:]...)
	}
}

// window is when a visit's pass works.
//
// With invite only on (and for tile registrations, which the tile issues
// itself): from the expected arrival minus the advance access to the
// expected arrival plus the access duration, and from the sign-in for the
// access duration; a visit with both (an invited visitor who signed in)
// gets the span of the two, so that a visitor who arrives late still has
// the full duration from sign-in.
//
// With invite only off (Openpath's "Sign In" issuance): from the sign-in
// until the sign-out ends it, bounded by the safety maximum
// SignInMaxDuration; advance access and access duration do not apply.
//
// The result is the same whatever order the events came in.
func window(v *visit, st *Settings) (start, end time.Time) {
	if !inviteMode(v, st) {
		if v.SignedIn.IsZero() {
			return time.Time{}, time.Time{}
		}
		return v.SignedIn.UTC(), v.SignedIn.Add(st.signInMax()).UTC()
	}
	add := func(s, e time.Time) {
		if start.IsZero() || s.Before(start) {
			start = s
		}
		if e.After(end) {
			end = e
		}
	}
	if !v.Expected.IsZero() {
		add(v.Expected.Add(-st.AdvanceAccess), v.Expected.Add(st.AccessDuration))
	}
	if !v.SignedIn.IsZero() {
		add(v.SignedIn, v.SignedIn.Add(st.AccessDuration))
	}
	return start.UTC(), end.UTC()
}

// inviteMode reports whether v's pass comes from its invite (invite only
// on, or a tile registration) rather than from its sign-in.
func inviteMode(v *visit, st *Settings) bool { return st.InviteOnly || v.Tile }

// refusal says why visit v gets no pass under st, or "" when it gets one.
//
// As Openpath's Envoy integration does: with invite only on, passes come
// from invites and a walk-in (a sign-in without an invite) gets none; with
// it off, passes are issued at sign-in only, so an invite alone issues
// none (it is kept, and its visitor's sign-in joins it).
func refusal(st *Settings, v *visit) string {
	flow := v.Flow
	switch {
	case st.blocked(flow):
		return "visitor type " + quote(flow) + " is blocked"
	case !st.guestsAllowed(v.hostEmail()):
		return "the host " + v.hostEmail() + " has guests disabled in the settings"
	case st.InviteOnly && v.InviteID == "" && !v.Tile:
		return "invite only: the visitor signed in without an invite, and walk-ins get no pass"
	case !inviteMode(v, st) && v.SignedIn.IsZero():
		return "invite only is off: the pass is issued when the visitor signs in at the front desk, not on the invite (advance access and access duration do not apply)"
	case strings.TrimSpace(flow) == "":
		return "the visit has no visitor type, so it maps to no entry"
	case len(st.entriesFor(flow)) == 0:
		return "visitor type " + quote(flow) + " is not mapped to any entry"
	}
	return ""
}

func quote(s string) string { return "\u201c" + s + "\u201d" }
