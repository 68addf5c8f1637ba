package visitor

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
)

func TestUpdateSettingsSaves(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.svc.Settings(ctx, "", loc); !errors.Is(err, ErrNoSettings) {
		t.Fatalf("before: %v", err)
	}
	in := defaultSettings()
	in.Entries[0].VisitorTypes = append(in.Entries[0].VisitorTypes, " visitor ") // a duplicate, differently spelt
	in.Protect.ExcludedEmployees = append(in.Protect.ExcludedEmployees, "alice@example.com")
	res, err := h.svc.UpdateSettings(ctx, "", loc, in)
	if err != nil || res.Error {
		t.Fatalf("UpdateSettings: %+v, %v", res, err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "listed twice") {
		t.Errorf("warnings: %q", res.Warnings)
	}
	got := must[Settings](t)(h.svc.Settings(ctx, "", loc))
	if !reflect.DeepEqual(got, res.Settings) || !got.UpdatedAt.Equal(t0) {
		t.Errorf("stored %+v\nanswered %+v", got, res.Settings)
	}
	if names := []string{got.Entries[0].Name, got.Entries[1].Name, got.Entries[2].Name}; !slices.Equal(names, []string{"Lobby", "Garage", "Roof Deck"}) {
		t.Errorf("entry names: %v", names)
	}
	if !slices.Equal(got.Entries[0].VisitorTypes, []string{"Visitor", "Contractor", "Interview"}) ||
		!slices.Equal(got.Protect.ExcludedEmployees, []string{"alice@example.com"}) {
		t.Errorf("not canonical: %+v", got)
	}
}

// TestUpdateSettingsValidation changes one field at a time; every bad one
// is refused, named, and changes nothing.
func TestUpdateSettingsValidation(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	saved := must[Settings](t)(h.svc.Settings(ctx, "", loc))
	tests := []struct {
		name       string
		location   string
		change     func(*Settings)
		failed     []string             // FailedIDs, in order
		misconfig  []MisconfiguredEntry // MisconfiguredEntries
		msg        string               // in ErrorMsg
		warningHas string               // for valid settings: a warning containing this
	}{
		{"empty location", "", nil, []string{"location"}, nil, "location", ""},
		{"location with a colon", "a:b", nil, []string{"location"}, nil, "location", ""},
		{"negative advance", loc, func(s *Settings) { s.AdvanceAccess = -time.Minute }, []string{"advanceAccess"}, nil, "settings.advance_access", ""},
		{"advance too long", loc, func(s *Settings) { s.AdvanceAccess = 25 * time.Hour }, []string{"advanceAccess"}, nil, "between 0s and 24h0m0s", ""},
		{"no access duration", loc, func(s *Settings) { s.AccessDuration = 0 }, []string{"accessDuration"}, nil, "settings.access_duration", ""},
		{"access duration too long", loc, func(s *Settings) { s.AccessDuration = 8 * 24 * time.Hour }, []string{"accessDuration"}, nil, "settings.access_duration", ""},
		{"fractional seconds", loc, func(s *Settings) { s.AccessDuration = time.Hour + time.Millisecond }, []string{"accessDuration"}, nil, "whole seconds", ""},
		{"relative logo", loc, func(s *Settings) { s.LogoURL = "/logo.png" }, []string{"logoUrl"}, nil, "absolute", ""},
		{"javascript logo", loc, func(s *Settings) { s.LogoURL = "javascript:alert(1)" }, []string{"logoUrl"}, nil, "absolute", ""},
		{"logo with credentials", loc, func(s *Settings) { s.LogoURL = "https://u:p@harbor.example/l.png" }, []string{"logoUrl"}, nil, "credentials", ""},
		{"long instructions", loc, func(s *Settings) { s.Instructions = strings.Repeat("é", 2001) }, []string{"instructions"}, nil, "2001 characters", ""},
		{"unknown time zone", loc, func(s *Settings) { s.TimeZone = "Mars/Olympus" }, []string{"timeZone"}, nil, "Mars/Olympus", ""},
		{"Local time zone", loc, func(s *Settings) { s.TimeZone = "Local" }, []string{"timeZone"}, nil, "IANA", ""},
		{"unknown entry", loc, func(s *Settings) {
			s.Entries = append(s.Entries, EntryMapping{EntryID: "999", VisitorTypes: []string{"Visitor"}})
		}, []string{"999"}, []MisconfiguredEntry{{EntryID: "999", Reason: "unknown to the access system"}}, "entry 999", ""},
		{"entry the service account cannot open", loc, func(s *Settings) {
			s.Entries = append(s.Entries, EntryMapping{EntryID: "105", VisitorTypes: []string{"Visitor"}})
		}, []string{"105"}, []MisconfiguredEntry{{EntryID: "105", Reason: "the integration's service account has no access to it, so guests could not open it"}}, "entry 105", ""},
		{"entry mapped twice", loc, func(s *Settings) {
			s.Entries = append(s.Entries, EntryMapping{EntryID: "101", VisitorTypes: []string{"Delivery"}})
		}, []string{"101"}, []MisconfiguredEntry{{EntryID: "101", Reason: "mapped more than once; list all its visitor types in one mapping"}}, "entry 101", ""},
		{"entry without types", loc, func(s *Settings) {
			s.Entries = append(s.Entries, EntryMapping{EntryID: "103"})
		}, []string{"103"}, []MisconfiguredEntry{{EntryID: "103", Reason: "no visitor types are mapped to it"}}, "entry 103", ""},
		{"several bad entries and fields", loc, func(s *Settings) {
			s.AccessDuration = 0
			s.Entries = append(s.Entries, EntryMapping{EntryID: "999", VisitorTypes: []string{"X"}}, EntryMapping{EntryID: "105", VisitorTypes: []string{"X"}})
		}, []string{"accessDuration", "999", "105"}, []MisconfiguredEntry{{EntryID: "999", Reason: "unknown to the access system"}, {EntryID: "105", Reason: "the integration's service account has no access to it, so guests could not open it"}}, "3 problems", ""},
		{"empty entry id", loc, func(s *Settings) { s.Entries = append(s.Entries, EntryMapping{VisitorTypes: []string{"X"}}) }, []string{"entries[3]"}, nil, "no entry id", ""},
		{"empty visitor type", loc, func(s *Settings) { s.Entries[0].VisitorTypes = append(s.Entries[0].VisitorTypes, " ") }, []string{"entry 101"}, nil, "empty", ""},
		{"empty blocked type", loc, func(s *Settings) { s.BlockedVisitorTypes = []string{""} }, []string{"blockedVisitorTypes"}, nil, "empty", ""},
		{"Protect without a duration", loc, func(s *Settings) { s.Protect.EmployeeAccessDuration = 0 }, []string{"protect.employeeAccessDuration"}, nil, "settings.protect.employee_access_duration", ""},
		{"Protect duration too long", loc, func(s *Settings) { s.Protect.EmployeeAccessDuration = 48 * time.Hour }, []string{"protect.employeeAccessDuration"}, nil, "settings.protect.employee_access_duration", ""},
		{"bad excluded email", loc, func(s *Settings) { s.Protect.ExcludedEmployees = []string{"erin@example.com", "not-an-email"} }, []string{"not-an-email"}, nil, "not-an-email", ""},
		// Valid, with warnings.
		{"mapped and blocked", loc, func(s *Settings) { s.BlockedVisitorTypes = []string{"contractor"} }, nil, nil, "", "both mapped to entries and blocked"},
		{"plain http logo", loc, func(s *Settings) { s.LogoURL = "http://harbor.example/logo.png" }, nil, nil, "", "plain http"},
		{"no time zone", loc, func(s *Settings) { s.TimeZone = "" }, nil, nil, "", "no time zone"},
		{"no mappings", loc, func(s *Settings) { s.Entries = nil }, nil, nil, "", "no guest pass will be issued"},
		{"Protect off needs no duration", loc, func(s *Settings) { s.Protect = ProtectSettings{} }, nil, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := defaultSettings()
			if tt.change != nil {
				tt.change(&in)
			}
			res, err := h.svc.UpdateSettings(ctx, "", tt.location, in)
			if tt.failed == nil {
				if err != nil || res.Error {
					t.Fatalf("valid settings refused: %+v, %v", res, err)
				}
				if tt.warningHas != "" && !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, tt.warningHas) }) {
					t.Errorf("warnings %q lack %q", res.Warnings, tt.warningHas)
				}
				h.configure(nil) // back to the saved settings
				return
			}
			var ise *InvalidSettingsError
			if !errors.Is(err, ErrInvalidSettings) || !errors.As(err, &ise) || !reflect.DeepEqual(ise.Result, res) {
				t.Fatalf("err = %v, want an InvalidSettingsError carrying the result", err)
			}
			if !res.Error || !strings.Contains(res.ErrorMsg, tt.msg) || !slices.Equal(res.FailedIDs, tt.failed) ||
				!reflect.DeepEqual(res.MisconfiguredEntries, tt.misconfig) {
				t.Errorf("result %+v\nwant failed %v, misconfigured %v, message with %q", res, tt.failed, tt.misconfig, tt.msg)
			}
			if got := must[Settings](t)(h.svc.Settings(ctx, "", loc)); !reflect.DeepEqual(got, saved) {
				t.Errorf("refused settings changed the saved ones:\n%+v", got)
			}
		})
	}
}

// TestUpdateSettingsAccessDown: when the access system cannot be asked,
// nothing is saved and the error says why.
func TestUpdateSettingsAccessDown(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	saved := must[Settings](t)(h.svc.Settings(ctx, "", loc))
	if err := h.sim.SetFaults(sim.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	in := defaultSettings()
	in.AccessDuration = time.Hour
	res, err := h.svc.UpdateSettings(ctx, "", loc, in)
	if !errors.Is(err, access.ErrUnavailable) || errors.Is(err, ErrInvalidSettings) || !res.Error || !strings.Contains(res.ErrorMsg, "access system") {
		t.Fatalf("UpdateSettings = %+v, %v", res, err)
	}
	if got := must[Settings](t)(h.svc.Settings(ctx, "", loc)); !reflect.DeepEqual(got, saved) {
		t.Error("settings changed while the access system was down")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	h := newHarness(t)
	good := Config{Store: h.store, Access: OneSystem(h.access), Notifier: h.notes, BaseURL: "https://ck.example.com"}
	for name, change := range map[string]func(*Config){
		"no redis":        func(c *Config) { c.Store = nil },
		"no access":       func(c *Config) { c.Access = nil },
		"no notifier":     func(c *Config) { c.Notifier = nil },
		"no base URL":     func(c *Config) { c.BaseURL = "" },
		"relative URL":    func(c *Config) { c.BaseURL = "/g" },
		"URL with query":  func(c *Config) { c.BaseURL = "https://ck.example.com/?x=1" },
		"not http(s) URL": func(c *Config) { c.BaseURL = "ftp://ck.example.com" },
	} {
		cfg := good
		change(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	svc, err := New(good)
	if err != nil || svc.Link("abc") != "https://ck.example.com/g/abc" {
		t.Errorf("New(good) = %v; link %s", err, svc.Link("abc"))
	}
}
