// Package roster is the property-management system's (PMS) resident
// roster in a vendor-neutral form (PMS_APIS.md §2): one Person per person
// per lease, read from a CSV export (ParseCSV) or pulled from a PMS API
// (roster/buildium), assembled into a Roster keyed by the PMS person id, and
// compared version to version (Compare).
//
// It imports no access system, cache or transport: reconciliation and the
// move-out policy build on it.
package roster

import (
	"fmt"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
)

// Status is a person's tenancy status in the neutral vocabulary.
type Status string

// The neutral statuses (PMS_APIS.md §2).
const (
	StatusApplicant Status = "applicant"
	StatusFuture    Status = "future"
	StatusCurrent   Status = "current"
	StatusNotice    Status = "notice"
	StatusPast      Status = "past"
	StatusCanceled  Status = "canceled"
	StatusDenied    Status = "denied"
	StatusUnknown   Status = "unknown"
)

// permissiveness orders statuses by how much access they lead to, for
// choosing one row among a person's several (renewal, transfer): the most
// permissive wins.
var permissiveness = map[Status]int{
	StatusCurrent:   7,
	StatusNotice:    6,
	StatusFuture:    5,
	StatusUnknown:   4,
	StatusApplicant: 3,
	StatusPast:      2,
	StatusCanceled:  1,
	StatusDenied:    0,
}

// Role is a person's role on the lease (Unified.to's vocabulary).
type Role string

// The roles. Only primary, co-resident and occupant get door access.
const (
	RolePrimary    Role = "primary"
	RoleCoResident Role = "co_resident"
	RoleOccupant   Role = "occupant"
	RoleGuarantor  Role = "guarantor"
	RoleOther      Role = "other"
)

// Source names where a roster row came from.
const (
	SourceCSV      = "csv"
	SourceBuildium = "buildium"
)

// Person is one person on one lease, as the PMS lists them. Email is kept
// as given; CanonicalEmail is what matching uses.
type Person struct {
	Source      string `json:"source"`
	PropertyID  string `json:"propertyId,omitempty"`  // the PMS's property code or id
	Unit        string `json:"unit,omitempty"`        // as shown
	HouseholdID string `json:"householdId,omitempty"` // lease or tenancy id
	PersonID    string `json:"personId,omitempty"`    // the PMS's stable person id
	Role        Role   `json:"role,omitempty"`

	FirstName      string   `json:"firstName,omitempty"`
	LastName       string   `json:"lastName,omitempty"`
	Email          string   `json:"email"`
	CanonicalEmail string   `json:"canonicalEmail"`
	OtherEmails    []string `json:"otherEmails,omitempty"`
	Phone          string   `json:"phone,omitempty"`

	Status       Status `json:"status"`
	Eviction     bool   `json:"eviction,omitempty"`
	MonthToMonth bool   `json:"monthToMonth,omitempty"`

	LeaseStart      Date `json:"leaseStart,omitzero"`
	LeaseEnd        Date `json:"leaseEnd,omitzero"`
	MoveIn          Date `json:"moveIn,omitzero"`
	MoveOut         Date `json:"moveOut,omitzero"`
	MoveOutIsActual bool `json:"moveOutIsActual,omitempty"`
	NoticeDate      Date `json:"noticeDate,omitzero"`

	// SourceStatus is the PMS's own status words, for audit.
	SourceStatus    string    `json:"sourceStatus,omitempty"`
	SourceUpdatedAt time.Time `json:"sourceUpdatedAt,omitzero"`
	// Line is the CSV line the row came from (0 for API pulls), so that a
	// report can point at it.
	Line int `json:"line,omitempty"`
}

// Name is the person's full name, "First Last".
func (p Person) Name() string {
	return strings.TrimSpace(p.FirstName + " " + p.LastName)
}

// PersonKey identifies the person within a cloudkey property: the PMS
// person id, else the unit and canonical email (unit codes repeat across
// PMS properties, so the PMS property is part of it). An email change is
// then an update to the person, not a new one, whenever the PMS has ids.
func (p Person) PersonKey() string {
	if p.PersonID != "" {
		return "id:" + p.PersonID
	}
	return "ue:" + p.PropertyID + "|" + p.Unit + "|" + p.CanonicalEmail
}

// Key identifies the row: the person on one lease (PersonKey, plus the
// household id when there is one). A renewal or a transfer is a second
// row of the same person.
func (p Person) Key() string {
	if p.HouseholdID == "" {
		return p.PersonKey()
	}
	return p.PersonKey() + "#" + p.HouseholdID
}

// MorePermissive reports whether p leads to more access than q: a
// stronger status, else the later lease.
func (p Person) MorePermissive(q Person) bool {
	if a, b := permissiveness[p.Status], permissiveness[q.Status]; a != b {
		return a > b
	}
	return q.LeaseStart.Before(p.LeaseStart)
}

// SetEmail sets Email and CanonicalEmail from a raw value, reporting a
// value that is not an address.
func (p *Person) SetEmail(raw string) error {
	c, err := identity.CanonicalEmail(raw)
	if err != nil {
		return err
	}
	p.Email, p.CanonicalEmail = strings.TrimSpace(raw), c
	return nil
}

// Date is a calendar date without time or zone, as PMSs give lease and
// move dates; the property's time zone turns it into an instant. The zero
// Date is "none".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns t's calendar date in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d == Date{} }

// Before reports whether d is before e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// In returns the instant of the wall-clock time of day tod on d in loc
// (a cut-off such as 10:00): wall clock, so a DST change that day does
// not move it.
func (d Date) In(loc *time.Location, tod time.Duration) time.Time {
	h, m, s := int(tod/time.Hour), int(tod%time.Hour/time.Minute), int(tod%time.Minute/time.Second)
	return time.Date(d.Year, d.Month, d.Day, h, m, s, 0, loc)
}

// String is YYYY-MM-DD, or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// MarshalText writes YYYY-MM-DD.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what ParseDate reads; "" is the zero Date.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDate reads a date as PMS exports and APIs write it: YYYY-MM-DD,
// YYYY-MM-DDT00:00:00 (Yardi SOAP, the time ignored) and MM/DD/YYYY (US
// exports; one-digit month and day accepted). A first number above 12 in
// the slashed form is a day-first date and refused: it would be read
// wrong elsewhere in the file.
func ParseDate(s string) (Date, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Date{}, nil
	}
	var y, m, d int
	switch {
	case strings.Contains(s, "/"):
		parts := strings.Split(s, "/")
		if len(parts) != 3 || len(parts[2]) != 4 || !digits(parts[0], 1, 2) || !digits(parts[1], 1, 2) || !digits(parts[2], 4, 4) {
			return Date{}, fmt.Errorf("date %q is not MM/DD/YYYY", s)
		}
		m, d, y = atoi(parts[0]), atoi(parts[1]), atoi(parts[2])
		if m > 12 && d <= 12 {
			return Date{}, fmt.Errorf("date %q looks day-first (DD/MM/YYYY); export dates as MM/DD/YYYY or YYYY-MM-DD", s)
		}
	default:
		day, _, _ := strings.Cut(s, "T")
		parts := strings.Split(day, "-")
		if len(parts) != 3 || !digits(parts[0], 4, 4) || !digits(parts[1], 2, 2) || !digits(parts[2], 2, 2) {
			return Date{}, fmt.Errorf("date %q is not YYYY-MM-DD or MM/DD/YYYY", s)
		}
		y, m, d = atoi(parts[0]), atoi(parts[1]), atoi(parts[2])
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if m < 1 || m > 12 || t.Day() != d || y < 1900 {
		return Date{}, fmt.Errorf("date %q does not exist", s)
	}
	return Date{y, time.Month(m), d}, nil
}

func digits(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoi converts a string digits accepted.
func atoi(s string) int {
	n := 0
	for i := range len(s) {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// ParseStatus maps a PMS status word to the neutral status and its flags
// (PMS_APIS.md §2's mapping table), case- and space-insensitively. An
// unknown word is StatusUnknown; the caller keeps the raw word.
func ParseStatus(s string) (st Status, eviction, monthToMonth bool) {
	k := strings.Join(strings.Fields(strings.ToLower(strings.ReplaceAll(s, "_", " "))), " ")
	switch k {
	case "applicant", "wait list", "waitlist", "pending", "1":
		return StatusApplicant, false, false
	case "future", "future lease", "applicant - lease signed", "pending transfer", "3":
		return StatusFuture, false, false
	case "current", "active", "pending renewal", "4":
		return StatusCurrent, false, false
	case "eviction", "evict", "under eviction":
		return StatusCurrent, true, false
	case "month to month", "monthtomonth":
		return StatusCurrent, false, true
	case "notice", "notice to vacate", "on notice", "5":
		return StatusNotice, false, false
	case "past", "former", "movedout", "moved out", "evicted", "renewed", "6":
		return StatusPast, false, false
	case "canceled", "cancelled", "2":
		return StatusCanceled, false, false
	case "denied":
		return StatusDenied, false, false
	}
	return StatusUnknown, false, false
}
