package visitor

import (
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cloudkey/cloudkey/internal/identity"
)

// validation collects every problem of a settings update, so that one
// answer lists them all.
type validation struct {
	violations []Violation
	warnings   []string
	failed     []string
	badEntries []MisconfiguredEntry
	// entryField is each mapped entry's field path, by entry id, for the
	// problems found after canonicalisation (checkEntries).
	entryField map[string]string
}

func newValidation() *validation { return &validation{entryField: map[string]string{}} }

// fail records one violation: field is its path in the API's settings
// ("settings.advance_access"), problem says what is wrong with that field
// alone, and id is what FailedIDs lists (an entry id, an email, a field).
func (v *validation) fail(id, field, format string, args ...any) {
	v.violations = append(v.violations, Violation{Field: field, Problem: fmt.Sprintf(format, args...)})
	if !slices.Contains(v.failed, id) {
		v.failed = append(v.failed, id)
	}
}

func (v *validation) warn(format string, args ...any) {
	v.warnings = append(v.warnings, fmt.Sprintf(format, args...))
}

// misconfigured refuses the settings for an entry that cannot be used.
func (v *validation) misconfigured(entryID, field, reason string) {
	v.badEntries = append(v.badEntries, MisconfiguredEntry{EntryID: entryID, Reason: reason})
	v.fail(entryID, field, "entry %s: %s", entryID, reason)
}

// misconfiguredWarning reports an entry that is saved as mapped but
// behaves differently from what the mapping suggests: listed with the
// misconfigured entries, marked Warning, and among the warnings.
func (v *validation) misconfiguredWarning(m MisconfiguredEntry) {
	m.Warning = true
	v.badEntries = append(v.badEntries, m)
	v.warn("entry %s: %s", m.EntryID, m.Reason)
}

func (v *validation) result() UpdateResult {
	r := UpdateResult{Warnings: v.warnings, FailedIDs: v.failed, MisconfiguredEntries: v.badEntries, Violations: v.violations}
	if n := len(v.violations); n > 0 {
		r.Error = true
		msgs := make([]string, n)
		for i, x := range v.violations {
			msgs[i] = x.Field + ": " + x.Problem
		}
		r.ErrorMsg = strings.Join(msgs, "; ")
		if n > 1 {
			r.ErrorMsg = fmt.Sprintf("%d problems: %s", n, r.ErrorMsg)
		}
	}
	return r
}

// settings checks everything that needs no access system and returns the
// settings in canonical form: trimmed, visitor types deduplicated (case
// insensitively, first spelling kept), emails canonical.
func (v *validation) settings(location string, in Settings) Settings {
	if location == "" || len(location) > MaxLocationLen || strings.IndexFunc(location, unicode.IsControl) >= 0 || strings.ContainsAny(location, " :{}") {
		v.fail("location", "location_id", "%q must be 1 to %d characters without spaces, colons, braces or control characters", location, MaxLocationLen)
	}
	out := Settings{
		InviteOnly:     in.InviteOnly,
		AdvanceAccess:  in.AdvanceAccess,
		AccessDuration: in.AccessDuration,
		LogoURL:        strings.TrimSpace(in.LogoURL),
		Instructions:   strings.TrimSpace(in.Instructions),
		TimeZone:       strings.TrimSpace(in.TimeZone),
	}
	v.duration("advanceAccess", "settings.advance_access", in.AdvanceAccess, 0, MaxAdvanceAccess)
	v.duration("accessDuration", "settings.access_duration", in.AccessDuration, MinAccessDuration, MaxAccessDuration)
	out.SignInMaxDuration = in.SignInMaxDuration
	if out.SignInMaxDuration == 0 {
		out.SignInMaxDuration = DefaultSignInMaxDuration
	}
	v.duration("signInMaxDuration", "settings.sign_in_max_duration", out.SignInMaxDuration, MinAccessDuration, MaxSignInMaxDuration)
	switch {
	case !out.InviteOnly && in.AdvanceAccess > 0:
		v.warn("invite only is off: passes are issued when visitors sign in at the front desk and end when they sign out (at most signInMaxDuration %v after the sign-in); Envoy invites issue no pass, so advance access and access duration apply only to visitors registered in the tenant tile", out.SignInMaxDuration)
	case out.InviteOnly && in.SignInMaxDuration != 0:
		v.warn("invite only is on: passes follow the invites (advance access, access duration) and walk-ins get none, so signInMaxDuration does not apply")
	}
	v.logo(out.LogoURL)
	if !utf8.ValidString(out.Instructions) || strings.ContainsRune(out.Instructions, 0) {
		v.fail("instructions", "settings.additional_instructions", "must be UTF-8 text")
	} else if n := utf8.RuneCountInString(out.Instructions); n > MaxInstructionsLen {
		v.fail("instructions", "settings.additional_instructions", "%d characters, more than %d", n, MaxInstructionsLen)
	}
	v.timeZone(out.TimeZone)
	out.Entries = v.entries(in.Entries)
	out.BlockedVisitorTypes = v.types("blockedVisitorTypes", "settings.blocked_visitor_types", in.BlockedVisitorTypes)
	for _, b := range out.BlockedVisitorTypes {
		if len(out.entriesFor(b)) > 0 {
			v.warn("visitor type %q is both mapped to entries and blocked: blocked wins, it gets no pass", b)
		}
	}
	if len(out.Entries) == 0 {
		v.warn("no visitor type is mapped to an entry: no guest pass will be issued")
	}
	v.remoteUnlockOff(out.Entries)
	out.Enabled = in.Enabled
	if !out.enabled() {
		v.warn("the location is switched off (enabled false): no new guest pass is issued, Envoy's events are acknowledged and recorded, and passes already issued keep working until they end")
	}
	out.Hosts = v.hosts(in.Hosts)
	out.Protect = v.protect(in.Protect)
	return out
}

func (v *validation) duration(id, field string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.fail(id, field, "%v must be between %v and %v", d, lo, hi)
	} else if d%time.Second != 0 {
		v.fail(id, field, "%v must be whole seconds", d)
	}
}

func (v *validation) logo(logo string) {
	if logo == "" {
		return
	}
	u, err := url.Parse(logo)
	switch {
	case len(logo) > MaxLogoURLLen:
		v.fail("logoUrl", "settings.logo_url", "longer than %d characters", MaxLogoURLLen)
	case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.fail("logoUrl", "settings.logo_url", "%q must be an absolute http or https URL", logo)
	case u.User != nil:
		v.fail("logoUrl", "settings.logo_url", "must not carry credentials")
	case u.Scheme == "http":
		v.warn("the logo URL is plain http: browsers block or flag it on the https guest page")
	}
}

func (v *validation) timeZone(tz string) {
	if tz == "" {
		v.warn("no time zone: the guest page uses the location's time zone from Envoy's events, else UTC")
		return
	}
	if tz == "Local" {
		v.fail("timeZone", "settings.time_zone", "must be an IANA name such as Europe/Paris, not Local")
		return
	}
	if _, err := time.LoadLocation(tz); err != nil {
		v.fail("timeZone", "settings.time_zone", "%q is not an IANA time zone name", tz)
	}
}

func (v *validation) entries(in []EntryMapping) []EntryMapping {
	if len(in) > MaxEntries {
		v.fail("entries", "settings.entries", "%d entry mappings, more than %d", len(in), MaxEntries)
		return nil
	}
	seen := map[string]bool{}
	out := make([]EntryMapping, 0, len(in))
	for i, m := range in {
		id := strings.TrimSpace(m.EntryID)
		field := fmt.Sprintf("settings.entries[%d]", i)
		switch {
		case id == "":
			v.fail(fmt.Sprintf("entries[%d]", i), field+".entry_id", "no entry id")
			continue
		case seen[id]:
			v.misconfigured(id, field+".entry_id", "mapped more than once; list all its visitor types in one mapping")
			continue
		}
		seen[id] = true
		v.entryField[id] = field
		types := v.types("entry "+id, field+".visitor_types", m.VisitorTypes)
		if len(types) == 0 {
			v.misconfigured(id, field+".visitor_types", "no visitor types are mapped to it")
		}
		out = append(out, EntryMapping{EntryID: id, VisitorTypes: types, RemoteUnlock: m.RemoteUnlock})
	}
	return out
}

// types canonicalises a list of visitor types: trimmed, deduplicated case
// insensitively (a duplicate is a warning), each non-empty and bounded.
func (v *validation) types(id, field string, in []string) []string {
	if len(in) > MaxVisitorTypes {
		v.fail(id, field, "%d visitor types, more than %d", len(in), MaxVisitorTypes)
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range in {
		t = strings.TrimSpace(t)
		switch {
		case t == "":
			v.fail(id, field, "a visitor type is empty")
		case utf8.RuneCountInString(t) > MaxVisitorTypeLen || strings.IndexFunc(t, unicode.IsControl) >= 0:
			v.fail(id, field, "visitor type %.20q... must be at most %d characters of text", t, MaxVisitorTypeLen)
		case seen[typeKey(t)]:
			v.warn("%s: visitor type %q is listed twice", id, t)
		default:
			seen[typeKey(t)] = true
			out = append(out, t)
		}
	}
	return out
}

func (v *validation) protect(in ProtectSettings) ProtectSettings {
	out := ProtectSettings{Enabled: in.Enabled, EmployeeAccessDuration: in.EmployeeAccessDuration}
	if in.Enabled || in.EmployeeAccessDuration != 0 {
		v.duration("protect.employeeAccessDuration", "settings.protect.employee_access_duration", in.EmployeeAccessDuration, MinAccessDuration, MaxEmployeeAccessDuration)
	}
	if len(in.ExcludedEmployees) > MaxExcludedEmployees {
		v.fail("protect.excludedEmployees", "settings.protect.excluded_employees", "%d excluded employees, more than %d", len(in.ExcludedEmployees), MaxExcludedEmployees)
		return out
	}
	seen := map[string]bool{}
	for i, raw := range in.ExcludedEmployees {
		e := identity.FoldEmail(raw)
		if !isEmail(e) {
			v.fail(strings.TrimSpace(raw), fmt.Sprintf("settings.protect.excluded_employees[%d]", i), "%q is not an email address", strings.TrimSpace(raw))
			continue
		}
		if !seen[e] {
			seen[e] = true
			out.ExcludedEmployees = append(out.ExcludedEmployees, e)
		}
	}
	return out
}

// isEmail reports whether e, folded, is a bare email address.
func isEmail(e string) bool {
	a, err := mail.ParseAddress(e)
	return err == nil && a.Address == e && a.Name == ""
}
