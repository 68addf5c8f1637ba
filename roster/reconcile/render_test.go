package reconcile

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/roster"
)

func TestRender(t *testing.T) {
	people := []roster.Person{
		person(t, "1", "1A", "gi.na@x.com", roster.StatusCurrent, roster.Date{}),
		person(t, "2", "1B", "a@x.com", roster.StatusCurrent, roster.Date{}),
	}
	r := Build(Input{Property: "p", Version: 2, People: people, Today: today}, []Listing{{op, []access.DirectoryUser{
		user("11", "gina@x.com", access.StatusActive, true), user("12", "a@x.com", access.StatusActive, true),
		user("13", "=cmd@x.com", access.StatusActive, true),
	}}})
	tests := []struct {
		name  string
		write func(*bytes.Buffer) error
		check func(t *testing.T, out string)
	}{
		{"csv", func(b *bytes.Buffer) error { return r.WriteCSV(b) }, func(t *testing.T, out string) {
			recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1+len(r.Rows) || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
				t.Fatalf("CSV = %q", recs)
			}
			if recs[1][0] != "not_in_access_system" || recs[1][4] != "gi.na@x.com" || recs[1][10] != "gina@x.com (dots, p.openpath)" {
				t.Errorf("first row = %q", recs[1])
			}
			for _, rec := range recs[1:] {
				if rec[8] == "=cmd@x.com" {
					t.Errorf("a formula cell was written as is: %q", rec)
				}
			}
		}},
		{"json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }, func(t *testing.T, out string) {
			var back struct {
				Totals Totals `json:"totals"`
				Rows   []Row  `json:"rows"`
			}
			if err := json.Unmarshal([]byte(out), &back); err != nil {
				t.Fatal(err)
			}
			if back.Totals != r.Totals || len(back.Rows) != len(r.Rows) {
				t.Errorf("JSON round trip = %+v", back)
			}
			if strings.Index(out, `"totals"`) > strings.Index(out, `"rows"`) {
				t.Error("totals do not come first")
			}
		}},
		{"text", func(b *bytes.Buffer) error { return r.WriteText(b) }, func(t *testing.T, out string) {
			for _, want := range []string{"2 people: 1 matched, 1 not in the access system (1 with a near miss)", "NOT IN ACCESS SYSTEM", "gina@x.com (dots, p.openpath)", "NOT IN ROSTER"} {
				if !strings.Contains(out, want) {
					t.Errorf("text report lacks %q:\n%s", want, out)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b); err != nil {
				t.Fatal(err)
			}
			tt.check(t, b.String())
		})
	}
}
