package moveout

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/roster"
)

func TestPolicyValidate(t *testing.T) {
	ok := DefaultPolicy()
	with := func(f func(*Policy)) Policy { p := ok; f(&p); return p }
	tests := []struct {
		name  string
		p     Policy
		field string // "" valid
	}{
		{"default", ok, ""},
		{"auto, no grace, midnight, all", with(func(p *Policy) { p.Mode, p.GraceDays, p.Cutoff, p.MaxSuspendShare = ModeAuto, 0, 0, 1 }), ""},
		{"longest grace, 23:59", with(func(p *Policy) { p.GraceDays, p.Cutoff = MaxGraceDays, 23*60+59 }), ""},
		{"unknown mode", with(func(p *Policy) { p.Mode = "sometimes" }), "mode"},
		{"empty mode", with(func(p *Policy) { p.Mode = "" }), "mode"},
		{"negative grace", with(func(p *Policy) { p.GraceDays = -1 }), "grace_days"},
		{"grace too long", with(func(p *Policy) { p.GraceDays = MaxGraceDays + 1 }), "grace_days"},
		{"cut-off 24:00", with(func(p *Policy) { p.Cutoff = 24 * 60 }), "cutoff"},
		{"negative cut-off", with(func(p *Policy) { p.Cutoff = -1 }), "cutoff"},
		{"share 0", with(func(p *Policy) { p.MaxSuspendShare = 0 }), "max_suspend_share"},
		{"share above 1", with(func(p *Policy) { p.MaxSuspendShare = 1.01 }), "max_suspend_share"},
		{"share NaN", with(func(p *Policy) { p.MaxSuspendShare = math.NaN() }), "max_suspend_share"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("Validate = %v, want valid", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Fatalf("Validate = %v, want an error on %s", err, tt.field)
			}
		})
	}
}

// TestPolicyJSON: the cut-off travels as HH:MM and comes back the same.
func TestPolicyJSON(t *testing.T) {
	p := Policy{Mode: ModeAuto, GraceDays: 2, Cutoff: 9*60 + 5, MaxSuspendShare: 0.2, UpdatedAt: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	b, err := json.Marshal(p)
	if err != nil || string(b) != `{"mode":"auto","graceDays":2,"cutoff":"09:05","maxSuspendShare":0.2,"updatedAt":"2026-12-02T09:00:00Z"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back Policy
	if err := json.Unmarshal(b, &back); err != nil || back != p {
		t.Fatalf("Unmarshal = %+v, %v; want %+v", back, err, p)
	}
	if err := json.Unmarshal([]byte(`{"mode":"auto","cutoff":"9h"}`), &back); err == nil {
		t.Fatal("a bad cut-off was read")
	}
}

func TestParseCutoff(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int // -1: refused
	}{
		{"12:00", 720}, {"00:00", 0}, {"23:59", 1439}, {"9:30", 570}, {" 07:05 ", 425},
		{"24:00", -1}, {"12:60", -1}, {"12", -1}, {"12:5", -1}, {"noon", -1}, {"-1:00", -1}, {"123:00", -1}, {"", -1},
	} {
		got, err := ParseCutoff(tt.in)
		if tt.want < 0 {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "cutoff" {
				t.Errorf("ParseCutoff(%q) = %d, %v; want an error on cutoff", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want || FormatCutoff(got) != fmtWant(tt.want) {
			t.Errorf("ParseCutoff(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func fmtWant(m int) string { return time.Date(0, 1, 1, m/60, m%60, 0, 0, time.UTC).Format("15:04") }

func TestAllowance(t *testing.T) {
	p := DefaultPolicy()
	for _, tt := range []struct{ linked, want int }{{0, 3}, {5, 3}, {39, 3}, {40, 4}, {1000, 100}} {
		if got := p.Allowance(tt.linked); got != tt.want {
			t.Errorf("Allowance(%d) = %d, want %d", tt.linked, got, tt.want)
		}
	}
}

// TestEndOfAccess turns a move-out date into the instant access ends, in
// the property's zone: around midnight and across both DST changes.
func TestEndOfAccess(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	akl, _ := time.LoadLocation("Pacific/Auckland")
	day := func(s string) roster.Date { d, _ := roster.ParseDate(s); return d }
	pol := func(grace int, cutoff string) Policy {
		p := DefaultPolicy()
		p.GraceDays = grace
		p.Cutoff, _ = ParseCutoff(cutoff)
		return p
	}
	tests := []struct {
		name    string
		moveOut string
		p       Policy
		loc     *time.Location
		want    string // RFC 3339, UTC
	}{
		{"noon the next day", "2026-12-01", pol(1, "12:00"), ny, "2026-12-02T17:00:00Z"},
		{"no grace, midnight: the very start of the day", "2026-12-01", pol(0, "00:00"), ny, "2026-12-01T05:00:00Z"},
		{"23:59 is still the same local day", "2026-12-01", pol(0, "23:59"), ny, "2026-12-02T04:59:00Z"},
		{"UTC", "2026-12-01", pol(1, "12:00"), time.UTC, "2026-12-02T12:00:00Z"},
		{"grace across the month end", "2026-01-31", pol(1, "12:00"), ny, "2026-02-01T17:00:00Z"},
		{"Auckland midnight is the previous day in UTC", "2026-12-01", pol(0, "00:00"), akl, "2026-11-30T11:00:00Z"},
		// Clocks go forward on 2026-03-08 at 02:00 EST: 02:30 does not
		// exist, access ends when the clocks jump (03:00 EDT).
		{"spring forward, cut-off in the gap", "2026-03-07", pol(1, "02:30"), ny, "2026-03-08T07:00:00Z"},
		{"spring forward, noon is EDT", "2026-03-07", pol(1, "12:00"), ny, "2026-03-08T16:00:00Z"},
		{"the day before spring forward, noon is EST", "2026-03-06", pol(1, "12:00"), ny, "2026-03-07T17:00:00Z"},
		// Clocks go back on 2026-11-01 at 02:00 EDT: 01:30 happens twice,
		// access ends at the first.
		{"fall back, cut-off in the overlap", "2026-10-31", pol(1, "01:30"), ny, "2026-11-01T05:30:00Z"},
		{"fall back, noon is EST", "2026-10-31", pol(1, "12:00"), ny, "2026-11-01T17:00:00Z"},
		// Auckland's own changes (southern hemisphere): forward on
		// 2026-09-27 at 02:00, back on 2026-04-05 at 03:00.
		{"Auckland spring forward gap", "2026-09-26", pol(1, "02:15"), akl, "2026-09-26T14:00:00Z"},
		{"Auckland fall back overlap", "2026-04-04", pol(1, "02:30"), akl, "2026-04-04T13:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EndOfAccess(day(tt.moveOut), tt.p, tt.loc)
			if got.UTC().Format(time.RFC3339) != tt.want {
				t.Fatalf("EndOfAccess = %s (%s), want %s", got.UTC().Format(time.RFC3339), got, tt.want)
			}
		})
	}
}
