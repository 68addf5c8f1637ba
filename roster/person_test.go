package roster

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		want    Date
		wantErr bool
	}{
		{"2026-11-30", Date{2026, 11, 30}, false},
		{"2026-11-30T00:00:00", Date{2026, 11, 30}, false},
		{"11/30/2026", Date{2026, 11, 30}, false},
		{"1/5/2026", Date{2026, 1, 5}, false},
		{" 02/03/2026 ", Date{2026, 2, 3}, false}, // month first, as US exports write it
		{"", Date{}, false},
		{"30/11/2026", Date{}, true}, // day-first
		{"02/30/2026", Date{}, true},
		{"2026-13-01", Date{}, true},
		{"2026-1-5", Date{}, true},
		{"11/30/26", Date{}, true},
		{"Nov 30, 2026", Date{}, true},
		{"0000-01-01", Date{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDate(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDate(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestDateJSONAndInstant(t *testing.T) {
	p := Person{Source: SourceCSV, Email: "a@b.example", MoveOut: Date{2026, 3, 8}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Person
	if err := json.Unmarshal(b, &q); err != nil || q.MoveOut != p.MoveOut || !q.MoveIn.IsZero() {
		t.Fatalf("round trip %s: %+v, %v", b, q, err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	// 2026-03-08 is the DST change in New York: 10:00 local is 14:00 UTC.
	if got := p.MoveOut.In(ny, 10*time.Hour).UTC(); !got.Equal(time.Date(2026, 3, 8, 14, 0, 0, 0, time.UTC)) {
		t.Errorf("In = %v", got)
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in            string
		st            Status
		eviction, mtm bool
	}{
		{"Current", StatusCurrent, false, false},
		{"  notice to vacate ", StatusNotice, false, false},
		{"Under Eviction", StatusCurrent, true, false},
		{"Evict", StatusCurrent, true, false},
		{"Month to Month", StatusCurrent, false, true},
		{"MovedOut", StatusPast, false, false},
		{"Former", StatusPast, false, false},
		{"Cancelled", StatusCanceled, false, false},
		{"Applicant - Lease Signed", StatusFuture, false, false},
		{"Wait List", StatusApplicant, false, false},
		{"Denied", StatusDenied, false, false},
		{"Holdover", StatusUnknown, false, false},
	}
	for _, tt := range tests {
		st, ev, mtm := ParseStatus(tt.in)
		if st != tt.st || ev != tt.eviction || mtm != tt.mtm {
			t.Errorf("ParseStatus(%q) = %s %v %v", tt.in, st, ev, mtm)
		}
	}
}
