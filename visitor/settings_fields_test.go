package visitor

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/unlock"
)

func ptr[T any](v T) *T { return &v }

// TestSettingsFieldsValidation: the fields after the Rhombus seed's
// IEnvoyType (enabled, per-door remote unlock, per-host guest permission)
// are validated field by field; an omitted switch or flag means on and
// warns of nothing.
func TestSettingsFieldsValidation(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	tests := []struct {
		name       string
		change     func(*Settings)
		violations []Violation // refused: exactly these
		warnings   []string    // saved: a warning containing each
		misconfig  []MisconfiguredEntry
		check      func(t *testing.T, st Settings)
	}{
		{name: "omitted switches and flags", change: nil, check: func(t *testing.T, st Settings) {
			if st.Enabled != nil || st.Hosts != nil || st.Entries[0].RemoteUnlock != nil || !st.enabled() || !st.guestDoor("101") || !st.guestsAllowed("x@example.com") {
				t.Errorf("omitted is not on: %+v", st)
			}
		}},
		{name: "enabled true", change: func(s *Settings) { s.Enabled = ptr(true) }, check: func(t *testing.T, st Settings) {
			if !st.enabled() {
				t.Error("off")
			}
		}},
		{name: "enabled false", change: func(s *Settings) { s.Enabled = ptr(false) }, warnings: []string{"switched off"},
			check: func(t *testing.T, st Settings) {
				if st.enabled() {
					t.Error("on")
				}
			}},
		{name: "remote unlock off", change: func(s *Settings) { s.Entries[2].RemoteUnlock = ptr(false) },
			warnings:  []string{"entry 104: remote unlock is off"},
			misconfig: []MisconfiguredEntry{{EntryID: "104", Reason: "remote unlock is off: no guest pass opens it, and the guest page does not offer it", Warning: true}},
			check: func(t *testing.T, st Settings) {
				if got := st.entriesFor("Visitor"); len(got) != 1 || got[0].ID != "101" {
					t.Errorf("Visitor's entries %+v, want Lobby only", got)
				}
			}},
		{name: "a type left with only remote-unlock-off entries", change: func(s *Settings) {
			s.Entries = append(s.Entries, EntryMapping{EntryID: "103", VisitorTypes: []string{"Delivery"}, RemoteUnlock: ptr(false)})
		}, warnings: []string{`visitor type "Delivery" is mapped only to entries with remote unlock off`},
			misconfig: []MisconfiguredEntry{{EntryID: "103", Reason: "remote unlock is off: no guest pass opens it, and the guest page does not offer it", Warning: true}}},
		{name: "remote unlock on explicitly", change: func(s *Settings) { s.Entries[0].RemoteUnlock = ptr(true) }},
		{name: "hosts folded", change: func(s *Settings) {
			s.Hosts = map[string]HostSettings{" Erin@Example.COM ": {GuestsEnabled: ptr(false)}, "bob@example.com": {}}
		}, check: func(t *testing.T, st Settings) {
			want := map[string]HostSettings{"erin@example.com": {GuestsEnabled: ptr(false)}, "bob@example.com": {}}
			if !reflect.DeepEqual(st.Hosts, want) || st.guestsAllowed("ERIN@example.com") || !st.guestsAllowed("bob@example.com") {
				t.Errorf("hosts %+v", st.Hosts)
			}
		}},
		{name: "host listed twice alike", change: func(s *Settings) {
			s.Hosts = map[string]HostSettings{"erin@example.com": {GuestsEnabled: ptr(false)}, "Erin@example.com": {GuestsEnabled: ptr(false)}}
		}, warnings: []string{"listed twice"}},
		{name: "host not an email", change: func(s *Settings) {
			s.Hosts = map[string]HostSettings{"erin": {GuestsEnabled: ptr(false)}}
		}, violations: []Violation{{Field: `settings.hosts["erin"]`, Problem: `"erin" is not an email address`}}},
		{name: "host listed twice, differently", change: func(s *Settings) {
			s.Hosts = map[string]HostSettings{"erin@example.com": {GuestsEnabled: ptr(false)}, "Erin@example.com": {GuestsEnabled: ptr(true)}}
		}, violations: []Violation{{Field: `settings.hosts["erin@example.com"]`, Problem: "the host erin@example.com is listed twice, with guests enabled and disabled"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := defaultSettings()
			if tt.change != nil {
				tt.change(&in)
			}
			res, err := h.svc.UpdateSettings(ctx, "", loc, in)
			if tt.violations != nil {
				if err == nil || !res.Error || !reflect.DeepEqual(res.Violations, tt.violations) {
					t.Fatalf("violations %+v (err %v), want %+v", res.Violations, err, tt.violations)
				}
				return
			}
			if err != nil || res.Error {
				t.Fatalf("refused: %+v, %v", res, err)
			}
			defer h.configure(nil)
			for _, w := range tt.warnings {
				if !slices.ContainsFunc(res.Warnings, func(got string) bool { return strings.Contains(got, w) }) {
					t.Errorf("warnings %q lack %q", res.Warnings, w)
				}
			}
			if tt.warnings == nil && len(res.Warnings) != 0 {
				t.Errorf("unexpected warnings %q", res.Warnings)
			}
			if !reflect.DeepEqual(res.MisconfiguredEntries, tt.misconfig) {
				t.Errorf("misconfigured %+v, want %+v", res.MisconfiguredEntries, tt.misconfig)
			}
			saved := must[Settings](t)(h.svc.Settings(ctx, "", loc))
			if !reflect.DeepEqual(saved, res.Settings) {
				t.Errorf("saved %+v\nanswered %+v", saved, res.Settings)
			}
			if tt.check != nil {
				tt.check(t, saved)
			}
		})
	}
}

// TestViolationsOwnProblem: each violation names its field and states its
// own problem only; the message summarises them all.
func TestViolationsOwnProblem(t *testing.T) {
	h := newHarness(t)
	in := defaultSettings()
	in.AccessDuration = 0
	in.TimeZone = "Mars/Olympus"
	in.Entries = append(in.Entries, EntryMapping{EntryID: "999", VisitorTypes: []string{"Visitor"}}, EntryMapping{VisitorTypes: []string{"X"}})
	in.Protect.ExcludedEmployees = []string{"ok@example.com", "nope"}
	res, err := h.svc.UpdateSettings(context.Background(), "", loc, in)
	if err == nil || !res.Error {
		t.Fatalf("accepted: %+v", res)
	}
	want := []Violation{
		{Field: "settings.access_duration", Problem: "0s must be between 1m0s and 168h0m0s"},
		{Field: "settings.time_zone", Problem: `"Mars/Olympus" is not an IANA time zone name`},
		{Field: "settings.entries[4].entry_id", Problem: "no entry id"},
		{Field: "settings.protect.excluded_employees[1]", Problem: `"nope" is not an email address`},
		{Field: "settings.entries[3].entry_id", Problem: "entry 999: unknown to the access system"},
	}
	if !reflect.DeepEqual(res.Violations, want) {
		t.Fatalf("violations\n%+v\nwant\n%+v", res.Violations, want)
	}
	if !strings.HasPrefix(res.ErrorMsg, "5 problems: settings.access_duration: 0s must be") {
		t.Errorf("message %q", res.ErrorMsg)
	}
	for _, v := range want {
		if !strings.Contains(res.ErrorMsg, v.Field+": "+v.Problem) {
			t.Errorf("message %q lacks %s", res.ErrorMsg, v.Field)
		}
	}
}

// TestEntryAtTwoLocations: an entry another location of the property
// maps is reported with that location named, and saved (the seed's
// misconfiguredDoors); the index follows each save, and another
// property's locations are not compared.
func TestEntryAtTwoLocations(t *testing.T) {
	h := newHarness(t)
	h.configure(nil) // loc: 101, 102, 104
	ctx := context.Background()
	second := func(entries ...string) UpdateResult {
		t.Helper()
		st := defaultSettings()
		st.Entries = nil
		for _, e := range entries {
			st.Entries = append(st.Entries, EntryMapping{EntryID: e, VisitorTypes: []string{"Visitor"}})
		}
		res, err := h.svc.UpdateSettings(ctx, "", "L2", st)
		if err != nil || res.Error {
			t.Fatalf("L2 refused: %+v, %v", res, err)
		}
		return res
	}
	tests := []struct {
		name    string
		save    func() UpdateResult
		want    []MisconfiguredEntry
		warning string
	}{
		{"L2 maps the lobby too", func() UpdateResult { return second("101", "103") },
			[]MisconfiguredEntry{{EntryID: "101", OtherLocations: []string{loc}, Warning: true,
				Reason: "also mapped at location " + loc + ": it opens for the guests of both"}},
			"entry 101: also mapped at location " + loc},
		{"loc, saved again, sees L2", func() UpdateResult {
			return must[UpdateResult](t)(h.svc.UpdateSettings(ctx, "", loc, defaultSettings()))
		}, []MisconfiguredEntry{{EntryID: "101", OtherLocations: []string{"L2"}, Warning: true,
			Reason: "also mapped at location L2: it opens for the guests of both"}}, "entry 101: also mapped at location L2"},
		{"L2 drops the lobby", func() UpdateResult { return second("103") }, nil, ""},
		{"loc no longer sees L2", func() UpdateResult {
			return must[UpdateResult](t)(h.svc.UpdateSettings(ctx, "", loc, defaultSettings()))
		}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.save()
			if !reflect.DeepEqual(res.MisconfiguredEntries, tt.want) {
				t.Errorf("misconfigured %+v\nwant %+v", res.MisconfiguredEntries, tt.want)
			}
			if tt.warning != "" && !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.HasPrefix(w, tt.warning) }) {
				t.Errorf("warnings %q lack %q", res.Warnings, tt.warning)
			}
		})
	}
	got := must[map[string][]string](t)(h.store.EntryLocations(ctx, "", []string{"101", "103", "104"}))
	if want := map[string][]string{"101": {loc}, "103": {"L2"}, "104": {loc}}; !reflect.DeepEqual(got, want) {
		t.Errorf("index %v, want %v", got, want)
	}
}

// TestDisabledLocation: a switched-off location issues no pass for
// Envoy's events, which are acknowledged, recorded and audited; a pass
// issued before keeps working, and a sign-out still ends it.
func TestDisabledLocation(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.configure(nil)
	out := h.handle(event(t, "invite_created"))
	if out.Action != ActionIssued {
		t.Fatalf("invite while on: %+v", out)
	}
	token := h.tokenOf("ada.lovelace@example.com")
	h.configure(func(s *Settings) { s.Enabled = ptr(false) })

	tests := []struct {
		name   string
		body   []byte
		action Action
		reason string
	}{
		{"an existing pass is kept", event(t, "invite_updated"), ActionUnchanged, "kept unchanged until it ends"},
		{"a new invite gets none", event(t, "invite_created", id("555")), ActionRefused, reasonDisabled},
		{"a walk-in gets none", event(t, "entry_sign_in", id("777")), ActionRefused, reasonDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := h.handle(tt.body)
			if out.Action != tt.action || !strings.Contains(out.Reason, tt.reason) {
				t.Fatalf("outcome %+v, want %s with %q", out, tt.action, tt.reason)
			}
		})
	}
	if v := h.visit("555", ""); v.Pass != nil || len(v.Decisions) != 1 || v.Decisions[0].Reason != reasonDisabled {
		t.Errorf("refused visit: %+v", v)
	}
	refusals := h.audit.kinds(unlock.KindPassRefused)
	if len(refusals) != 2 || refusals[0].EntryID != "invite 555" || refusals[1].EntryID != "entry 777" ||
		!strings.Contains(refusals[0].Message, reasonDisabled) || refusals[0].Email != "envoy" {
		t.Errorf("refusals audited: %+v", refusals)
	}
	h.clock.Set(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "101")); res.Status != unlock.OK {
		t.Errorf("the pass issued before: %+v", res)
	}
}

// TestRemoteUnlockOff: a door with remote unlock off is never opened from
// a guest pass, even one issued before it was switched off: the unlock is
// refused before the access system (the Openpath simulator) is asked, and
// the guest page does not offer it; a pass issued after leaves it out.
func TestRemoteUnlockOff(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.configure(nil)
	h.handle(event(t, "invite_created"))
	token := h.tokenOf("ada.lovelace@example.com")
	h.clock.Set(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC))
	if res := must[Result](t)(h.svc.GuestUnlock(ctx, token, "104")); res.Status != unlock.OK {
		t.Fatalf("roof deck while on: %+v", res)
	}
	h.configure(func(s *Settings) { s.Entries[2].RemoteUnlock = ptr(false) }) // 104, Roof Deck

	tests := []struct {
		entry   string
		status  unlock.Status
		message string
		upcalls bool
	}{
		{"104", unlock.Denied, MessageNotHere, false},
		{"101", unlock.OK, "Unlocked", true},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			calls := h.upstreamCalls()
			res := must[Result](t)(h.svc.GuestUnlock(ctx, token, tt.entry))
			if res.Status != tt.status || res.Message != tt.message {
				t.Errorf("unlock %s: %+v", tt.entry, res)
			}
			if asked := h.upstreamCalls() != calls; asked != tt.upcalls {
				t.Errorf("access system asked: %v, want %v", asked, tt.upcalls)
			}
		})
	}
	view := must[View](t)(h.svc.PassView(ctx, token))
	if len(view.Entries) != 1 || view.Entries[0].ID != "101" {
		t.Errorf("guest page offers %+v", view.Entries)
	}
	h.handle(event(t, "invite_created", id("555"), attr("email", "bea@example.com")))
	if p := h.visit("555", "").Pass; p == nil || len(p.Entries) != 1 || p.Entries[0].ID != "101" {
		t.Errorf("new pass entries: %+v", p)
	}
}

// TestHostGuestsDisabled: the guests of a host with guests disabled get
// no pass (recorded and audited), whatever the spelling of the host's
// email; other hosts' guests do, and a host not listed is allowed.
func TestHostGuestsDisabled(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		body   []byte
		action Action
	}{
		{"invite by erin", event(t, "invite_created"), ActionRefused},
		{"walk-in for erin, spelt otherwise", event(t, "entry_sign_in", id("701"), attr("host-email", " Erin@Example.com ")), ActionRefused},
		{"invite by bob", event(t, "invite_created", id("702"), attr("inviter-email", "bob@example.com")), ActionIssued},
		{"walk-in for someone not listed", event(t, "entry_sign_in", id("703"), attr("host-email", "carol@example.com")), ActionIssued},
		{"walk-in without a host", event(t, "entry_sign_in", id("704"), attr("host-email", nil), attr("host", nil)), ActionIssued},
	}
	h.configure(func(s *Settings) {
		s.InviteOnly = false // walk-ins get passes
		s.Hosts = map[string]HostSettings{"ERIN@example.com": {GuestsEnabled: ptr(false)}, "bob@example.com": {GuestsEnabled: ptr(true)}}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := h.handle(tt.body)
			if tt.action == ActionRefused {
				if out.Action != ActionRefused || out.Reason != "the host erin@example.com has guests disabled in the settings" {
					t.Errorf("outcome %+v", out)
				}
				return
			}
			// Invite only off: an invite is kept for its sign-in, a walk-in gets a pass.
			if out.Action == ActionRefused && strings.Contains(out.Reason, "host") {
				t.Errorf("outcome %+v", out)
			}
		})
	}
	refusals := h.audit.kinds(unlock.KindPassRefused)
	hostRefusals := slices.DeleteFunc(refusals, func(a unlock.Attempt) bool { return !strings.Contains(a.Message, "guests disabled") })
	if len(hostRefusals) != 2 || hostRefusals[0].EntryID != "invite 9876543" || hostRefusals[1].EntryID != "entry 701" {
		t.Errorf("audited: %+v", hostRefusals)
	}
	if v := h.visit("", "703"); v.Pass == nil {
		t.Errorf("carol's guest: %+v", v)
	}
}

// TestSettingsSavedBeforeTheFields: settings JSON as the current release
// saves it (no enabled, remote unlock or hosts) decodes with every
// switch on and issues the same pass.
func TestSettingsSavedBeforeTheFields(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old := `{"InviteOnly":true,"AdvanceAccess":900000000000,"AccessDuration":7200000000000,"SignInMaxDuration":43200000000000,` +
		`"Entries":[{"EntryID":"101","VisitorTypes":["Visitor"],"Name":"Lobby"},{"EntryID":"104","VisitorTypes":["Visitor"],"Name":"Roof Deck"}],` +
		`"BlockedVisitorTypes":null,"LogoURL":"","Instructions":"","TimeZone":"Europe/Paris",` +
		`"Protect":{"Enabled":false,"EmployeeAccessDuration":0,"ExcludedEmployees":null},"UpdatedAt":"2026-11-01T00:00:00Z","Property":""}`
	if err := h.store.PutSettings(ctx, loc, []byte(old)); err != nil {
		t.Fatal(err)
	}
	st := must[Settings](t)(h.svc.Settings(ctx, "", loc))
	if st.Enabled != nil || st.Hosts != nil || st.Entries[0].RemoteUnlock != nil || !st.enabled() || !st.guestDoor("104") {
		t.Fatalf("decoded %+v", st)
	}
	out := h.handle(event(t, "invite_created"))
	p := h.visit("9876543", "").Pass
	if out.Action != ActionIssued || p == nil || len(p.Entries) != 2 {
		t.Fatalf("outcome %+v, pass %+v", out, p)
	}
	// Saved again unchanged, the document has none of the new keys.
	in := st
	in.Entries = []EntryMapping{{EntryID: "101", VisitorTypes: []string{"Visitor"}}, {EntryID: "104", VisitorTypes: []string{"Visitor"}}}
	must[UpdateResult](t)(h.svc.UpdateSettings(ctx, "", loc, in))
	raw, _, err := h.store.Settings(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Enabled", "Hosts"} {
		if _, ok := keys[k]; ok {
			t.Errorf("saved %s: %s", k, raw)
		}
	}
	if strings.Contains(string(raw), "RemoteUnlock") {
		t.Errorf("saved RemoteUnlock: %s", raw)
	}
}

// TestEnvoyHostShown: the host Envoy names is kept on the visit and shown
// in the manager's view.
func TestEnvoyHostShown(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	h.handle(event(t, "invite_created", attr("inviter-email", "Erin@Example.com")))
	page := must[PassPage](t)(h.svc.ListPasses(context.Background(), PassQuery{}))
	if len(page.Passes) != 1 {
		t.Fatalf("passes %+v", page.Passes)
	}
	if p := page.Passes[0]; p.EnvoyHost != "Erin Ekström" || p.EnvoyHostEmail != "erin@example.com" || p.Host != "" || p.Issued != IssuedInvite {
		t.Errorf("pass %+v", p)
	}
}

// TestEntryIndexBackfill: settings saved before the entry index (written
// as the current release writes them, with no index) are compared too:
// the first save in a process indexes every location's entries.
func TestEntryIndexBackfill(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	old := `{"InviteOnly":true,"AccessDuration":7200000000000,"Entries":[{"EntryID":"101","VisitorTypes":["Visitor"],"Name":"Lobby"}],"Property":""}`
	if err := h.store.PutSettings(ctx, loc, []byte(old)); err != nil {
		t.Fatal(err)
	}
	st := defaultSettings()
	st.Entries = []EntryMapping{{EntryID: "101", VisitorTypes: []string{"Visitor"}}, {EntryID: "103", VisitorTypes: []string{"Visitor"}}}
	res := must[UpdateResult](t)(h.svc.UpdateSettings(ctx, "", "L2", st))
	want := []MisconfiguredEntry{{EntryID: "101", OtherLocations: []string{loc}, Warning: true,
		Reason: "also mapped at location " + loc + ": it opens for the guests of both"}}
	if !reflect.DeepEqual(res.MisconfiguredEntries, want) {
		t.Errorf("misconfigured %+v, want %+v", res.MisconfiguredEntries, want)
	}
}
