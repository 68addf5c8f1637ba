// Package moveout ends residents' access at move-out, under each
// property's policy: off, report (the default: runs only say what they
// would do) or auto (cloudkey suspends the users it linked to moved-out
// residents, and reactivates those it suspended who are current again).
//
// Nothing is scheduled once and remembered: every run recomputes who has
// moved out from the latest roster and a fresh reconciliation, in the
// property's time zone, so a postponed or cancelled move-out stops a
// pending suspension. cloudkey acts only on users linked to a roster row,
// never reactivates a user it did not suspend (it keeps a record of
// those it did, in Redis), treats a user a person reactivated as the
// manager's override, and suspends nobody in a run that would suspend
// more than the policy's share of the linked residents (a truncated
// export must not lock a building out).
package moveout

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is what a property's runs do.
type Mode string

// The modes.
const (
	// ModeOff: runs do nothing.
	ModeOff Mode = "off"
	// ModeReport: runs say what they would do and change nothing (the
	// default, as Latch's "Approval Required").
	ModeReport Mode = "report"
	// ModeAuto: runs suspend and reactivate users.
	ModeAuto Mode = "auto"
)

// Policy bounds and defaults.
const (
	// MaxGraceDays is the longest grace period.
	MaxGraceDays = 90
	// DefaultGraceDays: access ends the day after the move-out date.
	DefaultGraceDays = 1
	// DefaultCutoff is noon, in minutes after midnight local time.
	DefaultCutoff = 12 * 60
	// DefaultMaxSuspendShare: one run suspends at most a tenth of the
	// linked residents.
	DefaultMaxSuspendShare = 0.1
	// MinSuspendAllowance is how many residents a run may always suspend,
	// whatever the share: a small building's move-outs of one day are not
	// a truncated export.
	MinSuspendAllowance = 3
)

// Policy is a property's move-out policy.
type Policy struct {
	Mode Mode `json:"mode"`
	// GraceDays is how many whole days after the move-out date access
	// ends (0..MaxGraceDays).
	GraceDays int `json:"graceDays"`
	// Cutoff is the local time of day access ends at, in minutes after
	// midnight (0..1439); JSON and the API write it HH:MM.
	Cutoff int `json:"-"`
	// MaxSuspendShare is the largest share (0 < x <= 1) of the property's
	// linked residents one run may suspend (but always
	// MinSuspendAllowance).
	MaxSuspendShare float64 `json:"maxSuspendShare"`
	// UpdatedAt is when the policy was last saved; zero for the default.
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// DefaultPolicy is the policy of a property that never set one.
func DefaultPolicy() Policy {
	return Policy{Mode: ModeReport, GraceDays: DefaultGraceDays, Cutoff: DefaultCutoff, MaxSuspendShare: DefaultMaxSuspendShare}
}

// FieldError is a policy value that is not valid, naming the field
// as the admin API names it (mode, grace_days, cutoff,
// max_suspend_share).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "move-out policy: " + e.Field + ": " + e.Reason }

// ParseMode reads off, report or auto (case-insensitively).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeOff, ModeReport, ModeAuto:
		return m, nil
	}
	return "", &FieldError{Field: "mode", Reason: fmt.Sprintf("%q is not off, report or auto", s)}
}

// ParseCutoff reads a local time of day, HH:MM on a 24-hour clock
// ("12:00", "9:30"), into minutes after midnight.
func ParseCutoff(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(h) < 1 || len(h) > 2 || len(m) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, &FieldError{Field: "cutoff", Reason: fmt.Sprintf("%q is not a time of day HH:MM (00:00 to 23:59)", s)}
	}
	return hh*60 + mm, nil
}

// FormatCutoff writes minutes after midnight as HH:MM.
func FormatCutoff(minutes int) string {
	return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60)
}

// CutoffString is the policy's cut-off as HH:MM.
func (p Policy) CutoffString() string { return FormatCutoff(p.Cutoff) }

// Validate reports the first value out of bounds, naming its field.
func (p Policy) Validate() error {
	if _, err := ParseMode(string(p.Mode)); err != nil {
		return err
	}
	if p.GraceDays < 0 || p.GraceDays > MaxGraceDays {
		return &FieldError{Field: "grace_days", Reason: fmt.Sprintf("%d days is not 0 to %d", p.GraceDays, MaxGraceDays)}
	}
	if p.Cutoff < 0 || p.Cutoff >= 24*60 {
		return &FieldError{Field: "cutoff", Reason: fmt.Sprintf("%d minutes after midnight is not 00:00 to 23:59", p.Cutoff)}
	}
	// NaN fails both comparisons, so it is refused too.
	if !(p.MaxSuspendShare > 0 && p.MaxSuspendShare <= 1) {
		return &FieldError{Field: "max_suspend_share", Reason: fmt.Sprintf("%v is not above 0 and at most 1", p.MaxSuspendShare)}
	}
	return nil
}

// Allowance is how many residents one run may suspend when linked
// residents are linked: the share of them, rounded down, but at least
// MinSuspendAllowance.
func (p Policy) Allowance(linked int) int {
	n := int(p.MaxSuspendShare * float64(linked))
	return max(n, MinSuspendAllowance)
}

// Describe is the policy in words, for the audit: "auto, grace 1 day,
// cut-off 12:00, at most 10% a run".
func (p Policy) Describe() string {
	days := "days"
	if p.GraceDays == 1 {
		days = "day"
	}
	return fmt.Sprintf("%s, grace %d %s, cut-off %s, at most %s a run", p.Mode, p.GraceDays, days, p.CutoffString(),
		strconv.FormatFloat(p.MaxSuspendShare*100, 'f', -1, 64)+"%")
}

// policyJSON is how a policy is stored: the cut-off as HH:MM.
type policyJSON struct {
	Mode            Mode      `json:"mode"`
	GraceDays       int       `json:"graceDays"`
	Cutoff          string    `json:"cutoff"`
	MaxSuspendShare float64   `json:"maxSuspendShare"`
	UpdatedAt       time.Time `json:"updatedAt,omitzero"`
}

// MarshalJSON writes the policy with its cut-off as HH:MM.
func (p Policy) MarshalJSON() ([]byte, error) { return json.Marshal(p.toJSON()) }

// UnmarshalJSON reads what MarshalJSON writes; it does not Validate.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var j policyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	c, err := ParseCutoff(j.Cutoff)
	if err != nil {
		return err
	}
	*p = Policy{Mode: j.Mode, GraceDays: j.GraceDays, Cutoff: c, MaxSuspendShare: j.MaxSuspendShare, UpdatedAt: j.UpdatedAt}
	return nil
}

func (p Policy) toJSON() policyJSON {
	return policyJSON{Mode: p.Mode, GraceDays: p.GraceDays, Cutoff: p.CutoffString(), MaxSuspendShare: p.MaxSuspendShare, UpdatedAt: p.UpdatedAt}
}

func (j policyJSON) policy() (Policy, error) {
	c, err := ParseCutoff(j.Cutoff)
	if err != nil {
		return Policy{}, err
	}
	p := Policy{Mode: j.Mode, GraceDays: j.GraceDays, Cutoff: c, MaxSuspendShare: j.MaxSuspendShare, UpdatedAt: j.UpdatedAt}
	return p, p.Validate()
}
