package visitor

import (
	"fmt"
	"github.com/cloudkey/cloudkey/internal/identity"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// validation collects every problem of a settings update, so that one
// answer lists them all.
type validation struct {
	errs       []string
	warnings   []string
	failed     []string
	badEntries []MisconfiguredEntry
}

func newValidation() *validation { return &validation{} }

func (v *validation) fail(id, format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf(format, args...))
	if !slices.Contains(v.failed, id) {
		v.failed = append(v.failed, id)
	}
}

func (v *validation) warn(format string, args ...any) {
	v.warnings = append(v.warnings, fmt.Sprintf(format, args...))
}

func (v *validation) misconfigured(entryID, reason string) {
	v.badEntries = append(v.badEntries, MisconfiguredEntry{EntryID: entryID, Reason: reason})
	v.fail(entryID, "entry %s: %s", entryID, reason)
}

func (v *validation) result() UpdateResult {
	r := UpdateResult{Warnings: v.warnings, FailedIDs: v.failed, MisconfiguredEntries: v.badEntries}
	if len(v.errs) > 0 {
		r.Error = true
		r.ErrorMsg = strings.Join(v.errs, "; ")
		if len(v.errs) > 1 {
			r.ErrorMsg = fmt.Sprintf("%d problems: %s", len(v.errs), r.ErrorMsg)
		}
	}
	return r
}

// settings checks everything that needs no access system and returns the
// settings in canonical form: trimmed, visitor types deduplicated (case
// insensitively, first spelling kept), emails canonical.
func (v *validation) settings(location string, in Settings) Settings {
	if location == "" || len(location) > MaxLocationLen || strings.IndexFunc(location, unicode.IsControl) >= 0 || strings.ContainsAny(location, " :{}") {
		v.fail("location", "location %q must be 1 to %d characters without spaces, colons, braces or control characters", location, MaxLocationLen)
	}
	out := Settings{
		InviteOnly:     in.InviteOnly,
		AdvanceAccess:  in.AdvanceAccess,
		AccessDuration: in.AccessDuration,
		LogoURL:        strings.TrimSpace(in.LogoURL),
		Instructions:   strings.TrimSpace(in.Instructions),
		TimeZone:       strings.TrimSpace(in.TimeZone),
	}
	v.duration("advanceAccess", in.AdvanceAccess, 0, MaxAdvanceAccess)
	v.duration("accessDuration", in.AccessDuration, MinAccessDuration, MaxAccessDuration)
	out.SignInMaxDuration = in.SignInMaxDuration
	if out.SignInMaxDuration == 0 {
		out.SignInMaxDuration = DefaultSignInMaxDuration
	}
	v.duration("signInMaxDuration", out.SignInMaxDuration, MinAccessDuration, MaxSignInMaxDuration)
	switch {
	case !out.InviteOnly && in.AdvanceAccess > 0:
		v.warn("invite only is off: passes are issued when visitors sign in at the front desk and end when they sign out (at most signInMaxDuration %v after the sign-in); Envoy invites issue no pass, so advance access and access duration apply only to visitors registered in the tenant tile", out.SignInMaxDuration)
	case out.InviteOnly && in.SignInMaxDuration != 0:
		v.warn("invite only is on: passes follow the invites (advance access, access duration) and walk-ins get none, so signInMaxDuration does not apply")
	}
	v.logo(out.LogoURL)
	if !utf8.ValidString(out.Instructions) || strings.ContainsRune(out.Instructions, 0) {
		v.fail("instructions", "instructions must be UTF-8 text")
	} else if n := utf8.RuneCountInString(out.Instructions); n > MaxInstructionsLen {
		v.fail("instructions", "instructions are %d characters, more than %d", n, MaxInstructionsLen)
	}
	v.timeZone(out.TimeZone)
	out.Entries = v.entries(in.Entries)
	out.BlockedVisitorTypes = v.types("blockedVisitorTypes", in.BlockedVisitorTypes)
	for _, b := range out.BlockedVisitorTypes {
		if len(out.entriesFor(b)) > 0 {
			v.warn("visitor type %q is both mapped to entries and blocked: blocked wins, it gets no pass", b)
		}
	}
	if len(out.Entries) == 0 {
		v.warn("no visitor type is mapped to an entry: no guest pass will be issued")
	}
	out.Protect = v.protect(in.Protect)
	return out
}

func (v *validation) duration(field string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.fail(field, "%s %v must be between %v and %v", field, d, lo, hi)
	} else if d%time.Second != 0 {
		v.fail(field, "%s %v must be whole seconds", field, d)
	}
}

func (v *validation) logo(logo string) {
	if logo == "" {
		return
	}
	u, err := url.Parse(logo)
	switch {
	case len(logo) > MaxLogoURLLen:
		v.fail("logoUrl", "logo URL is longer than %d characters", MaxLogoURLLen)
	case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.fail("logoUrl", "logo URL %q must be an absolute http or https URL", logo)
	case u.User != nil:
		v.fail("logoUrl", "logo URL must not carry credentials")
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
		v.fail("timeZone", "time zone must be an IANA name such as Europe/Paris, not Local")
		return
	}
	if _, err := time.LoadLocation(tz); err != nil {
		v.fail("timeZone", "time zone %q is not an IANA time zone name", tz)
	}
}

func (v *validation) entries(in []EntryMapping) []EntryMapping {
	if len(in) > MaxEntries {
		v.fail("entries", "%d entry mappings, more than %d", len(in), MaxEntries)
		return nil
	}
	seen := map[string]bool{}
	out := make([]EntryMapping, 0, len(in))
	for i, m := range in {
		id := strings.TrimSpace(m.EntryID)
		switch {
		case id == "":
			v.fail(fmt.Sprintf("entries[%d]", i), "entries[%d] has no entry id", i)
			continue
		case seen[id]:
			v.misconfigured(id, "mapped more than once; list all its visitor types in one mapping")
			continue
		}
		seen[id] = true
		types := v.types("entry "+id, m.VisitorTypes)
		if len(types) == 0 {
			v.misconfigured(id, "no visitor types are mapped to it")
		}
		out = append(out, EntryMapping{EntryID: id, VisitorTypes: types})
	}
	return out
}

// types canonicalises a list of visitor types: trimmed, deduplicated case
// insensitively (a duplicate is a warning), each non-empty and bounded.
func (v *validation) types(field string, in []string) []string {
	if len(in) > MaxVisitorTypes {
		v.fail(field, "%s: %d visitor types, more than %d", field, len(in), MaxVisitorTypes)
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range in {
		t = strings.TrimSpace(t)
		switch {
		case t == "":
			v.fail(field, "%s: a visitor type is empty", field)
		case utf8.RuneCountInString(t) > MaxVisitorTypeLen || strings.IndexFunc(t, unicode.IsControl) >= 0:
			v.fail(field, "%s: visitor type %.20q... must be at most %d characters of text", field, t, MaxVisitorTypeLen)
		case seen[typeKey(t)]:
			v.warn("%s: visitor type %q is listed twice", field, t)
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
		v.duration("protect.employeeAccessDuration", in.EmployeeAccessDuration, MinAccessDuration, MaxEmployeeAccessDuration)
	}
	if len(in.ExcludedEmployees) > MaxExcludedEmployees {
		v.fail("protect.excludedEmployees", "%d excluded employees, more than %d", len(in.ExcludedEmployees), MaxExcludedEmployees)
		return out
	}
	seen := map[string]bool{}
	for _, raw := range in.ExcludedEmployees {
		e := identity.FoldEmail(raw)
		a, err := mail.ParseAddress(e)
		if err != nil || a.Address != e || a.Name != "" {
			v.fail(strings.TrimSpace(raw), "excluded employee %q is not an email address", strings.TrimSpace(raw))
			continue
		}
		if !seen[e] {
			seen[e] = true
			out.ExcludedEmployees = append(out.ExcludedEmployees, e)
		}
	}
	return out
}
