package visitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/identity"
)

// Settings is the visitor integration of one Envoy location (building).
type Settings struct {
	// InviteOnly is Openpath's "Only allow invited guests". On: passes
	// are issued on invites (advance access and access duration apply)
	// and a sign-in without an invite (a walk-in) gets none. Off: passes
	// are issued on sign-in only (an invite alone issues none) and end at
	// sign-out, at most SignInMaxDuration after the sign-in.
	InviteOnly bool
	// AdvanceAccess is how long before the expected arrival an invited
	// visitor's pass starts working (0 to MaxAdvanceAccess); invite only
	// on, and tile registrations.
	AdvanceAccess time.Duration
	// AccessDuration is how long a pass works: from the expected arrival,
	// or from the sign-in (MinAccessDuration to MaxAccessDuration); invite
	// only on, and tile registrations.
	AccessDuration time.Duration
	// SignInMaxDuration bounds a pass issued at sign-in (invite only off),
	// which otherwise ends at sign-out: the safety net for a visitor who
	// leaves without signing out (MinAccessDuration to
	// MaxSignInMaxDuration; zero on input means DefaultSignInMaxDuration).
	SignInMaxDuration time.Duration
	// Entries maps entries (doors) to the visitor types (Envoy flow names)
	// that may open them; one entry serves several types, and one type may
	// open several entries. An entry must appear once.
	Entries []EntryMapping
	// BlockedVisitorTypes never get a pass, even when mapped.
	BlockedVisitorTypes []string
	// LogoURL (absolute http(s)) and Instructions are shown on the guest
	// page.
	LogoURL      string
	Instructions string
	// TimeZone (IANA, e.g. "Europe/Paris") shows pass windows on the guest
	// page and in messages. Empty means the location's time zone from
	// Envoy's events, else UTC.
	TimeZone string
	Protect  ProtectSettings
	// UpdatedAt is set when the settings are saved.
	UpdatedAt time.Time
	// Property is the property the location belongs to, set when the
	// settings are first saved (ignored on input); "" in settings saved
	// before properties: the default property's.
	Property string
	// Enabled switches the location's guest passes (the Rhombus seed's
	// IEnvoyType enabled). nil, as in every settings document saved before
	// it existed, means on, as the seed's nullable booleans do. Off: no new
	// pass is issued (Envoy's events are acknowledged, and each refusal is
	// recorded and audited); passes already issued keep working until
	// they end, by their window, a sign-out, the invite's removal or a
	// manager. Protect has its own switch.
	Enabled *bool `json:",omitempty"`
	// Hosts are per-host guest permissions by host email, folded (the
	// seed's envoyUserSettingsMap): a host whose GuestsEnabled is false
	// gets no pass for their guests. A host not listed is allowed.
	Hosts map[string]HostSettings `json:",omitempty"`
}

// EntryMapping is one entry and the visitor types that may open it.
type EntryMapping struct {
	EntryID      string
	VisitorTypes []string
	// Name is the entry's name in the access system, filled in when the
	// settings are saved (ignored on input).
	Name string
	// RemoteUnlock is the seed's per-door remoteUnlock: nil (omitted, and
	// in settings saved before it existed) means on. Off: no guest pass
	// opens the entry, even one issued before it was switched off, and
	// the guest page does not offer it; mapping it is a warning.
	RemoteUnlock *bool `json:",omitempty"`
}

// ProtectSettings drive employee activation from Envoy Protect.
type ProtectSettings struct {
	Enabled bool
	// EmployeeAccessDuration is how long an employee stays active after a
	// passed screening, unless they sign out sooner (MinAccessDuration to
	// MaxEmployeeAccessDuration).
	EmployeeAccessDuration time.Duration
	// ExcludedEmployees (emails) are never activated or suspended.
	ExcludedEmployees []string
}

// Bounds of the settings.
const (
	MaxAdvanceAccess          = 24 * time.Hour
	MinAccessDuration         = time.Minute
	MaxAccessDuration         = 7 * 24 * time.Hour
	MaxEmployeeAccessDuration = 24 * time.Hour
	DefaultSignInMaxDuration  = 12 * time.Hour
	MaxSignInMaxDuration      = 24 * time.Hour
	MaxEntries                = 500
	MaxVisitorTypes           = 200 // per entry, and blocked
	MaxVisitorTypeLen         = 100
	MaxExcludedEmployees      = 10_000
	MaxLogoURLLen             = 2048
	MaxInstructionsLen        = 2000 // characters
	MaxLocationLen            = 128
)

// UpdateResult answers UpdateSettings, after the Rhombus
// updateEnvoyIntegrationV2 response: Error and ErrorMsg say whether the
// settings were refused, Warnings what was saved but looks wrong,
// FailedIDs the ids or fields that failed (entry ids, emails, field
// names), MisconfiguredEntries the entries that cannot be used and why.
type UpdateResult struct {
	Error                bool
	ErrorMsg             string
	Warnings             []string
	FailedIDs            []string
	MisconfiguredEntries []MisconfiguredEntry
	// Violations are the refused settings' problems, one per field, each
	// stating only its own; ErrorMsg summarises them.
	Violations []Violation
	// Settings are the saved settings, canonicalised (entry names filled
	// in, types and emails deduplicated); zero when refused.
	Settings Settings
}

// MisconfiguredEntry is an entry mapping that cannot be used.
type MisconfiguredEntry struct {
	EntryID string
	Reason  string
	// OtherLocations are the other locations of the property that map the
	// entry (the seed's misconfiguredDoors).
	OtherLocations []string
	// Warning: the settings were saved with the entry mapped; it is
	// reported because it does not behave as a plain mapping would
	// (mapped at another location too, remote unlock off).
	Warning bool
}

// Violation is one problem of refused settings: Field is the field's path
// in the API's settings ("settings.entries[2].visitor_types"), Problem
// what is wrong with it.
type Violation struct {
	Field   string
	Problem string
}

// ErrInvalidSettings matches the error UpdateSettings returns for settings
// that do not validate (an *InvalidSettingsError).
var ErrInvalidSettings = errors.New("invalid visitor settings")

// ErrNoSettings: the location has no settings.
var ErrNoSettings = errors.New("the location has no visitor settings")

// InvalidSettingsError carries the result of refused settings; nothing was
// saved.
type InvalidSettingsError struct {
	Result UpdateResult
}

func (e *InvalidSettingsError) Error() string {
	return "visitor: invalid settings: " + e.Result.ErrorMsg
}

// Is makes an InvalidSettingsError match ErrInvalidSettings.
func (e *InvalidSettingsError) Is(target error) bool { return target == ErrInvalidSettings }

// UpdateSettings validates s and, when it is valid, saves it as the
// settings of location, replacing the previous ones. It is all or nothing:
// settings with any error change nothing, and the error (an
// *InvalidSettingsError, matching ErrInvalidSettings) carries the same
// result as the one returned. Entry mappings are checked against the
// access system: each entry must exist and the service account must be
// able to open it. When the access system cannot be asked, nothing is saved
// and the error is that failure.
//
// A visitor type both mapped and blocked is a warning, not an error:
// blocking a type for a while without deleting its mapping is how an
// administrator is expected to use the block list; blocked wins.
//
// The settings are property's ("" is the default property): a location
// whose settings belong to another property is ErrOtherProperty, and a
// property without an access system for guest passes is ErrNoGuestAccess;
// nothing is saved. (Two properties saving a new location's first
// settings at the same moment both pass the check, the last write
// winning: location ids are Envoy's, one location one building.)
func (s *Service) UpdateSettings(ctx context.Context, property, location string, in Settings) (UpdateResult, error) {
	property = s.property(property)
	prev, err := s.settingsOf(ctx, property, location)
	if err != nil && !errors.Is(err, ErrNoSettings) {
		return UpdateResult{Error: true, ErrorMsg: err.Error()}, err
	}
	sys, err := s.accessFor(property)
	if err != nil {
		return UpdateResult{Error: true, ErrorMsg: err.Error()}, err
	}
	v := newValidation()
	out := v.settings(location, in)
	out.Property = property
	if len(out.Entries) > 0 {
		if err := s.checkEntries(ctx, sys, v, out.Entries); err != nil {
			res := UpdateResult{Error: true, ErrorMsg: "cannot check the entries with the access system: " + err.Error()}
			return res, fmt.Errorf("visitor: update settings of %s: %w", location, err)
		}
	}
	if !slices.Contains(v.failed, "location") { // else no location to compare with the others'
		if err := s.checkOtherLocations(ctx, v, property, location, out.Entries); err != nil {
			res := UpdateResult{Error: true, ErrorMsg: "cannot read the entries mapped at the other locations: " + err.Error()}
			return res, fmt.Errorf("visitor: update settings of %s: %w", location, err)
		}
	}
	res := v.result()
	if res.Error {
		return res, &InvalidSettingsError{Result: res}
	}
	out.UpdatedAt = s.now().UTC()
	b, err := json.Marshal(out)
	if err != nil {
		return UpdateResult{Error: true, ErrorMsg: err.Error()}, fmt.Errorf("visitor: encode settings: %w", err)
	}
	if err := s.store.SaveSettings(ctx, settingsWrite(property, location, prev, out, b)); err != nil {
		res := UpdateResult{Error: true, ErrorMsg: "cannot save the settings: " + err.Error()}
		return res, fmt.Errorf("visitor: save settings of %s: %w", location, err)
	}
	res.Settings = out
	return res, nil
}

// Settings returns the settings of location at property ("": the
// default property), ErrNoSettings, or ErrOtherProperty when the location
// is another property's.
func (s *Service) Settings(ctx context.Context, property, location string) (Settings, error) {
	return s.settingsOf(ctx, s.property(property), location)
}

func (s *Service) settingsOf(ctx context.Context, property, location string) (Settings, error) {
	st, ok, err := s.loadSettings(ctx, location)
	if err != nil {
		return Settings{}, err
	}
	if !ok {
		return Settings{}, fmt.Errorf("visitor: %s: %w", location, ErrNoSettings)
	}
	if st.Property != property {
		return Settings{}, fmt.Errorf("visitor: %w", ErrOtherProperty)
	}
	return st, nil
}

func (s *Service) loadSettings(ctx context.Context, location string) (Settings, bool, error) {
	b, ok, err := s.store.Settings(ctx, location)
	if err == nil && !ok {
		return Settings{}, false, nil
	}
	if err != nil {
		return Settings{}, false, fmt.Errorf("visitor: read settings of %s: %w", location, err)
	}
	var st Settings
	if err := json.Unmarshal(b, &st); err != nil {
		return Settings{}, false, fmt.Errorf("visitor: decode settings of %s: %w", location, err)
	}
	st.Property = s.property(st.Property) // saved before properties: the default property's
	st.SignInMaxDuration = st.signInMax() // saved before the bound: the default
	return st, true, nil
}

// checkEntries marks the mapped entries the access system does not know,
// or the service account cannot open, and fills in their names.
func (s *Service) checkEntries(ctx context.Context, sys access.GuestSystem, v *validation, mappings []EntryMapping) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AccessTimeout)
	defer cancel()
	all, err := sys.ListOrgEntries(ctx)
	if err != nil {
		return err
	}
	mine, err := sys.ServiceEntries(ctx)
	if err != nil {
		return err
	}
	names := make(map[string]string, len(all))
	for _, e := range all {
		names[e.ID] = e.Name
	}
	canOpen := make(map[string]bool, len(mine))
	for _, e := range mine {
		canOpen[e.ID] = true
	}
	for i := range mappings {
		m := &mappings[i]
		name, known := names[m.EntryID]
		switch {
		case !known:
			v.misconfigured(m.EntryID, v.entryField[m.EntryID]+".entry_id", "unknown to the access system")
		case !canOpen[m.EntryID]:
			v.misconfigured(m.EntryID, v.entryField[m.EntryID]+".entry_id", "the integration's service account has no access to it, so guests could not open it")
		}
		m.Name = name
	}
	return nil
}

// typeKey is how visitor types compare: Envoy flow names, trimmed and
// case-insensitive.
func typeKey(t string) string { return strings.ToLower(strings.TrimSpace(t)) }

// blocked reports whether visitor type t is on the block list.
func (st *Settings) blocked(t string) bool {
	k := typeKey(t)
	for _, b := range st.BlockedVisitorTypes {
		if typeKey(b) == k {
			return true
		}
	}
	return false
}

// entriesFor returns the entries visitor type t may open from a guest
// pass, in settings order: those with remote unlock off are left out.
func (st *Settings) entriesFor(t string) []PassEntry {
	k := typeKey(t)
	var out []PassEntry
	for _, m := range st.Entries {
		if !m.remoteUnlock() {
			continue // never opened from a guest pass
		}
		for _, vt := range m.VisitorTypes {
			if typeKey(vt) == k {
				out = append(out, PassEntry{ID: m.EntryID, Name: m.Name})
				break
			}
		}
	}
	return out
}

// signInMax is the bound of a pass issued at sign-in; settings saved
// before it existed get the default.
func (st *Settings) signInMax() time.Duration {
	if st.SignInMaxDuration <= 0 {
		return DefaultSignInMaxDuration
	}
	return st.SignInMaxDuration
}

// reasonDisabled is why a switched-off location issues no pass.
const reasonDisabled = "the location's guest passes are switched off in its settings (enabled false)"

// enabled reports whether the location issues new guest passes: an
// omitted switch, and settings saved before it existed, mean on.
func (st *Settings) enabled() bool { return st.Enabled == nil || *st.Enabled }

// excluded reports whether email is excluded from Protect.
func (st *Settings) excluded(email string) bool {
	e := identity.FoldEmail(email)
	for _, x := range st.Protect.ExcludedEmployees {
		if x == e {
			return true
		}
	}
	return false
}
