// Package envoy reads the events of Envoy (the visitor-management system)
// as its plugin webhooks deliver them: a JSON body {meta, payload} whose
// payload is a JSON:API invite or entry, signed with X-Envoy-Signature.
// It knows the format and nothing of what cloudkey does with an event.
//
// It imports only the standard library: no Redis, gRPC or the visitor
// service.
package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event names cloudkey acts on (meta.event).
const (
	InviteCreated        = "invite_created"
	InviteUpdated        = "invite_updated"
	InviteRemoved        = "invite_removed"
	EntrySignIn          = "entry_sign_in"
	EntrySignOut         = "entry_sign_out"
	EmployeeEntrySignIn  = "employee_entry_sign_in"
	EmployeeEntrySignOut = "employee_entry_sign_out"
	// EntryBlacklistReview: the visitor matched Envoy's block list and
	// security is reviewing the entry; EntryBlacklistDeny: security (or
	// the block list itself) denied it.
	EntryBlacklistReview = "entry_blacklist_review"
	EntryBlacklistDeny   = "entry_blacklist_deny"
)

// Payload types (payload.type).
const (
	TypeInvite = "invites"
	TypeEntry  = "entries"
)

// MaxBodyBytes bounds an event body; Envoy's are a few kilobytes. The
// webhook handler should stop reading there too.
const MaxBodyBytes = 1 << 20

// ErrMalformed matches every *FieldError: the body is not an event cloudkey
// can act on (the webhook answers 400).
var ErrMalformed = errors.New("malformed Envoy event")

// FieldError says which field of an event is missing or malformed, by its
// JSON path ("payload.attributes.expected-arrival-time").
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	return "malformed Envoy event: " + e.Field + ": " + e.Problem
}

// Is makes a FieldError match ErrMalformed.
func (e *FieldError) Is(target error) bool { return target == ErrMalformed }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Location is the Envoy location (building) an event happened at.
type Location struct {
	ID       string
	Name     string
	TimeZone string // IANA name from meta.location.attributes.timezone; may be empty or unknown
}

// Event is one parsed Envoy event. Absent optional fields are zero.
type Event struct {
	// Name is meta.event, e.g. EntrySignIn.
	Name     string
	Location Location
	// Type and ID are the payload's JSON:API type and id: an invite's id
	// for invite events, an entry's (a sign-in's) for entry events.
	Type string
	ID   string

	FullName string
	Email    string // trimmed, as sent
	Phone    string
	Flow     string // flow-name: the visitor type

	// Host and HostEmail are the employee the visitor comes to see: an
	// entry's host and host-email, an invite's inviter-name and
	// inviter-email (Envoy's SDK payloads). HostEmail is trimmed, as sent.
	Host      string
	HostEmail string

	ExpectedArrival time.Time // invites
	SignedInAt      time.Time
	SignedOutAt     time.Time

	// InviteID is an entry's invite (relationships.invite), when the
	// visitor was invited.
	InviteID string
	// EntryID is an invite's entry (relationships.entry), once the
	// visitor signed in.
	EntryID string

	// EmployeeScreening is attributes.employee-screening-flow: the entry
	// is an employee's Protect screening.
	EmployeeScreening bool
	// ApprovalStatus is attributes.approval-status.status ("approved",
	// ...), empty when absent.
	ApprovalStatus string

	// Payload is the raw payload, as received.
	Payload json.RawMessage
}

type rawBody struct {
	Meta    *rawMeta        `json:"meta"`
	Payload json.RawMessage `json:"payload"`
}

type rawMeta struct {
	Event    json.RawMessage `json:"event"`
	Location *struct {
		ID         json.RawMessage            `json:"id"`
		Attributes map[string]json.RawMessage `json:"attributes"`
	} `json:"location"`
}

type rawRelationship struct {
	Data json.RawMessage `json:"data"`
}

type rawPayload struct {
	ID            json.RawMessage             `json:"id"`
	Type          json.RawMessage             `json:"type"`
	Attributes    map[string]json.RawMessage  `json:"attributes"`
	Relationships map[string]*rawRelationship `json:"relationships"`
}

// Parse reads an event body. Fields that every use of the event needs are
// required (meta.event, the location id, payload.id and payload.type;
// expected-arrival-time for invite_created and invite_updated;
// signed-in-at for sign-ins; email for employee events); a missing or
// mistyped one is a *FieldError naming it. Events cloudkey does not act on
// are parsed as far as the common fields go.
//
// Times are accepted as RFC 3339, as SQL-style "2006-01-02 15:04:05" in UTC
// (how Envoy stores them; its SDK normalises from that) or as RFC 1123
// ("Mon, 02 Jan 2006 15:04:05 GMT", which its test factories send).
func Parse(body []byte) (Event, error) {
	if len(body) > MaxBodyBytes {
		return Event{}, fieldErr("body", "larger than %d bytes", MaxBodyBytes)
	}
	var raw rawBody
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Event{}, fieldErr("body", "not a JSON object: %v", err)
	}
	if raw.Meta == nil {
		return Event{}, fieldErr("meta", "missing")
	}
	var ev Event
	var err error
	if ev.Name, err = requiredString(raw.Meta.Event, "meta.event"); err != nil {
		return Event{}, err
	}
	if len(raw.Payload) == 0 || bytes.Equal(raw.Payload, []byte("null")) {
		return Event{}, fieldErr("payload", "missing")
	}
	ev.Payload = raw.Payload
	var p rawPayload
	if err := json.Unmarshal(raw.Payload, &p); err != nil {
		return Event{}, fieldErr("payload", "not a JSON:API resource object: %v", err)
	}
	if ev.ID, err = requiredID(p.ID, "payload.id"); err != nil {
		return Event{}, err
	}
	if ev.Type, err = requiredString(p.Type, "payload.type"); err != nil {
		return Event{}, err
	}
	if err := ev.parseLocation(raw.Meta, p); err != nil {
		return Event{}, err
	}
	if err := ev.parseAttributes(p.Attributes); err != nil {
		return Event{}, err
	}
	if ev.InviteID, err = relationshipID(p.Relationships, "invite"); err != nil {
		return Event{}, err
	}
	if ev.EntryID, err = relationshipID(p.Relationships, "entry"); err != nil {
		return Event{}, err
	}
	return ev, ev.checkRequired()
}

func (ev *Event) parseLocation(meta *rawMeta, p rawPayload) error {
	if meta.Location != nil {
		id, err := optionalID(meta.Location.ID, "meta.location.id")
		if err != nil {
			return err
		}
		ev.Location.ID = id
		// Name and time zone only decorate the guest page: a malformed one
		// is dropped rather than failing the event.
		ev.Location.Name, _ = optionalString(meta.Location.Attributes["name"], "")
		ev.Location.TimeZone, _ = optionalString(meta.Location.Attributes["timezone"], "")
	}
	if ev.Location.ID == "" {
		id, err := relationshipID(p.Relationships, "location")
		if err != nil {
			return err
		}
		ev.Location.ID = id
	}
	if ev.Location.ID == "" {
		return fieldErr("meta.location.id", "missing (and payload.relationships.location names none)")
	}
	return nil
}

func (ev *Event) parseAttributes(attrs map[string]json.RawMessage) error {
	const prefix = "payload.attributes."
	strs := []struct {
		name string
		dst  *string
	}{
		{"full-name", &ev.FullName}, {"email", &ev.Email}, {"phone-number", &ev.Phone}, {"flow-name", &ev.Flow},
		// An entry names its host; an invite its inviter, who is the host
		// in Envoy's invite form. A payload carries one pair or the other.
		{"host", &ev.Host}, {"host-email", &ev.HostEmail},
		{"inviter-name", &ev.Host}, {"inviter-email", &ev.HostEmail},
	}
	for _, f := range strs {
		v, err := optionalString(attrs[f.name], prefix+f.name)
		if err != nil {
			return err
		}
		if v = strings.TrimSpace(v); v != "" {
			*f.dst = v
		}
	}
	times := []struct {
		name string
		dst  *time.Time
	}{
		{"expected-arrival-time", &ev.ExpectedArrival}, {"signed-in-at", &ev.SignedInAt}, {"signed-out-at", &ev.SignedOutAt},
	}
	for _, f := range times {
		v, err := optionalTime(attrs[f.name], prefix+f.name)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	if raw, ok := attrs["employee-screening-flow"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &ev.EmployeeScreening); err != nil {
			return fieldErr(prefix+"employee-screening-flow", "not a boolean")
		}
	}
	if raw, ok := attrs["approval-status"]; ok && !isNull(raw) {
		var as struct {
			Status json.RawMessage `json:"status"`
		}
		if err := json.Unmarshal(raw, &as); err != nil {
			return fieldErr(prefix+"approval-status", "not an object")
		}
		status, err := optionalString(as.Status, prefix+"approval-status.status")
		if err != nil {
			return err
		}
		ev.ApprovalStatus = strings.TrimSpace(status)
	}
	return nil
}

// checkRequired enforces what each event cloudkey acts on needs.
func (ev *Event) checkRequired() error {
	const prefix = "payload.attributes."
	switch ev.Name {
	case InviteCreated, InviteUpdated, InviteRemoved:
		if ev.Type != TypeInvite {
			return fieldErr("payload.type", "%q, want %q for %s", ev.Type, TypeInvite, ev.Name)
		}
	case EntrySignIn, EntrySignOut, EmployeeEntrySignIn, EmployeeEntrySignOut, EntryBlacklistReview, EntryBlacklistDeny:
		if ev.Type != TypeEntry {
			return fieldErr("payload.type", "%q, want %q for %s", ev.Type, TypeEntry, ev.Name)
		}
	}
	switch ev.Name {
	case InviteCreated, InviteUpdated:
		if ev.ExpectedArrival.IsZero() {
			return fieldErr(prefix+"expected-arrival-time", "missing")
		}
	case EntrySignIn:
		if ev.SignedInAt.IsZero() {
			return fieldErr(prefix+"signed-in-at", "missing")
		}
	case EmployeeEntrySignIn, EmployeeEntrySignOut:
		if ev.Email == "" {
			return fieldErr(prefix+"email", "missing: Protect finds the employee by email")
		}
		if ev.Name == EmployeeEntrySignIn && ev.SignedInAt.IsZero() {
			return fieldErr(prefix+"signed-in-at", "missing")
		}
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func optionalString(raw json.RawMessage, field string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fieldErr(field, "not a string")
	}
	return s, nil
}

func requiredString(raw json.RawMessage, field string) (string, error) {
	s, err := optionalString(raw, field)
	if err == nil && strings.TrimSpace(s) == "" {
		err = fieldErr(field, "missing")
	}
	return strings.TrimSpace(s), err
}

// optionalID reads a JSON:API id: a string, though a number is accepted
// too, as some producers send one.
func optionalID(raw json.RawMessage, field string) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		s = n.String() // held to the same bound as a string id (a 300-digit number is no id)
	} else if s, err = optionalString(raw, field); err != nil {
		return "", fieldErr(field, "not a string or number")
	}
	s = strings.TrimSpace(s)
	if len(s) > 128 || strings.ContainsAny(s, "\x00\r\n") {
		return "", fieldErr(field, "not a plausible id")
	}
	return s, nil
}

func requiredID(raw json.RawMessage, field string) (string, error) {
	id, err := optionalID(raw, field)
	if err == nil && id == "" {
		err = fieldErr(field, "missing")
	}
	return id, err
}

// relationshipID returns relationships.<name>.data.id, or "" when the
// relationship is absent or null.
func relationshipID(rels map[string]*rawRelationship, name string) (string, error) {
	r := rels[name]
	if r == nil || isNull(r.Data) {
		return "", nil
	}
	field := "payload.relationships." + name + ".data"
	var ident struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(r.Data, &ident); err != nil {
		return "", fieldErr(field, "not a resource identifier object")
	}
	return requiredID(ident.ID, field+".id")
}
