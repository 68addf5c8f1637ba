package roster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// row is the part of a Person the table tests check.
type row struct {
	key, first, last, email, unit, status string
	moveOut                               string
}

func rowOf(p Person) row {
	return row{p.Key(), p.FirstName, p.LastName, p.CanonicalEmail, p.Unit, string(p.Status), p.MoveOut.String()}
}

func issueList(iss []Issue) []string {
	var out []string
	for _, i := range iss {
		out = append(out, fmt.Sprintf("%d %s %v", i.Line, i.Kind, i.Skipped))
	}
	return out
}

func parseFile(t *testing.T, name string) (*Import, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ParseCSV(f, CSVOptions{})
}

func TestParseCSVFiles(t *testing.T) {
	tests := []struct {
		file       string
		headerLine int
		people     []row
		issues     []string // "line kind skipped"
	}{{
		file: "canonical.csv", headerLine: 1,
		people: []row{
			{"id:t0000101", "Alice", "Anders", "alice@example.com", "4B", "current", ""},
			{"id:t0000102", "Bob", "Baker", "bob@example.com", "5C", "current", ""},
			{"id:t0000103", "Carol", "Chen", "carol@example.com", "2A", "past", "2026-10-31"},
			{"id:t0000104", "Erin", "Evans", "erin@example.com", "3D", "notice", "2026-11-30"},
			{"id:t0000105", "Dana", "Diaz", "dana@example.com", "9F", "future", ""},
		},
	}, {
		// Yardi's rent roll with an Email column added: title block,
		// section rows, VACANT, "Name (t-code)" cells, a totals footer.
		file: "yardi_rentroll_emails.csv", headerLine: 5,
		people: []row{
			{"id:s0005974", "Gianna", "Barile", "gianna.barile@example.com", "101", "current", ""},
			{"id:t0012345", "Chidi", "Okafor", "chidi@example.com", "103", "notice", "2026-09-30"},
			{"id:t0012399", "Tomás", "Alvarez", "tomas@example.com", "105", "future", ""},
		},
		issues: []string{
			"1 preamble true", "2 preamble true", "3 preamble true", "4 blank true",
			"6 section true", "8 vacant true", "10 no_email true", "11 section true", "13 total true",
		},
	}, {
		file: "appfolio_tickler.csv", headerLine: 1,
		people: []row{
			{"id:70003#3290", "Jordan", "Park", "jordan.park@example.com", "18", "current", ""},
			{"id:70012#3301", "Morgan", "Lee", "morgan.lee@example.com", "12", "current", ""},
			{"id:70013#3302", "Riley", "Quinn", "riley.quinn@example.com", "14", "notice", "2026-11-15"},
			{"id:70020#3310", "Sam", "Ortiz", "sam.ortiz@example.com", "16", "future", ""},
		},
	}, {
		file: "messy.csv", headerLine: 4,
		people: []row{
			{"id:r0000110#L4", "Lee", "Park", "parks@example.com", "7A", "current", ""},
			{"id:t0000101#L1", "Alice", "Anders", "alice@example.com", "4B", "current", ""},
			{"id:t0000109#L4", "Ken", "Park", "parks@example.com", "7A", "current", ""},
			{"id:t0000111#L5", "Uma", "Roy", "uma@example.com", "8C", "unknown", ""},
			{"id:t0000112#L6", "Vic", "Stone", "vic@example.com", "9D", "current", ""},
			{"id:t0000114#L8", "Xia", "Lin", "xia@example.com", "11F", "past", "2025-12-31"},
			{"id:t0000114#L9", "Xia", "Lin", "xia.lin@example.com", "11F", "current", ""},
		},
		issues: []string{
			"0 shared_email false",
			"1 preamble true", "2 preamble true", // line 3 is empty: CSV readers skip it
			"6 no_email true",   // Max Anders, a minor without an email
			"7 bad_row true",    // not-an-email
			"8 bad_row true",    // 31/01/2025 is day-first
			"11 status false",   // Holdover: kept as unknown
			"12 duplicate true", // Vic's Past row loses to his Current one
			"14 header true",
			"15 bad_row true", // 02/30/2025 does not exist
			"18 total true",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			im, err := parseFile(t, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if im.HeaderLine != tt.headerLine {
				t.Errorf("header line %d, want %d", im.HeaderLine, tt.headerLine)
			}
			var got []row
			for _, p := range im.People {
				got = append(got, rowOf(p))
			}
			if !slices.Equal(got, tt.people) {
				t.Errorf("people:\n got %v\nwant %v", got, tt.people)
			}
			if gi := issueList(im.Issues); !slices.Equal(gi, tt.issues) {
				t.Errorf("issues:\n got %q\nwant %q\n%v", gi, tt.issues, im.Issues)
			}
		})
	}
}

func TestParseCSVRowDetails(t *testing.T) {
	im, err := parseFile(t, "appfolio_tickler.csv")
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]Person{}
	for _, p := range im.People {
		by[p.PersonID] = p
	}
	morgan := by["70012"]
	if morgan.Email != "morgan.lee@example.com" || !slices.Equal(morgan.OtherEmails, []string{"m.lee@work.example"}) {
		t.Errorf("several emails: %q %q", morgan.Email, morgan.OtherEmails)
	}
	if morgan.Phone != "(617) 555-0144" || morgan.PropertyID != "Harbor View - 12 Pier St" || morgan.HouseholdID != "3301" {
		t.Errorf("morgan %+v", morgan)
	}
	if want := (Date{2025, time.November, 1}); morgan.LeaseStart != want || morgan.MoveIn != want {
		t.Errorf("US dates: lease start %v, move in %v", morgan.LeaseStart, morgan.MoveIn)
	}
	if j := by["70003"]; !j.Eviction || j.Status != StatusCurrent || j.SourceStatus != "Evict" {
		t.Errorf("Evict: %+v", j)
	}
	if im.Columns[FieldEmail] != "Tenant Email" || im.Columns[FieldResidentID] != "Tenant ID" || im.Columns[FieldName] != "Tenant" {
		t.Errorf("columns %v", im.Columns)
	}

	m, err := parseFile(t, "messy.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Shared) != 1 || m.Shared[0].Email != "parks@example.com" ||
		!slices.Equal(m.Shared[0].Keys, []string{"id:r0000110", "id:t0000109"}) {
		t.Errorf("shared emails %+v", m.Shared)
	}
	for _, i := range m.Issues {
		if i.Line == 8 && !strings.Contains(i.Reason, "day-first") {
			t.Errorf("line 8 reason %q", i.Reason)
		}
		if i.Line == 6 && !strings.Contains(i.Reason, "Max Anders in unit 4B has no email") {
			t.Errorf("line 6 reason %q", i.Reason)
		}
	}
}

func TestParseCSVRefuses(t *testing.T) {
	_, err := parseFile(t, "yardi_rentroll.csv")
	if !errors.Is(err, ErrNoEmailColumn) || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("rent roll without emails: %v", err)
	}
	for name, in := range map[string]string{
		"empty":     "",
		"no header": "hello,world\n1,2\n",
		"one field": "Email\nalice@example.com\n",
	} {
		if _, err := ParseCSV(strings.NewReader(in), CSVOptions{}); !errors.Is(err, ErrNoHeader) {
			t.Errorf("%s: %v, want ErrNoHeader", name, err)
		}
	}
	big := "unit,email\n" + strings.Repeat("1,a@b.example\n", 11)
	if _, err := ParseCSV(strings.NewReader(big), CSVOptions{MaxRows: 10}); err == nil {
		t.Error("MaxRows not enforced")
	}
}

func TestParseCSVKeysWithoutIDs(t *testing.T) {
	in := "\uFEFFUnit,Tenant Name,Email\n" +
		"4B,\"Anders, Alice\",Alice@Example.com\n" +
		"4B,Alice Anders,alice@example.com\n" + // the same person again
		"5B,Alice Anders,alice@example.com\n" // same email, another unit: another person
	im, err := ParseCSV(strings.NewReader(in), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range im.People {
		keys = append(keys, p.Key())
	}
	if want := []string{"ue:|4B|alice@example.com", "ue:|5B|alice@example.com"}; !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if got := issueList(im.Issues); !slices.Equal(got, []string{"0 shared_email false", "3 duplicate true"}) {
		t.Errorf("issues %q", got)
	}
	if p := im.People[0]; p.FirstName != "Alice" || p.LastName != "Anders" || p.Email != "Alice@Example.com" {
		t.Errorf("Last, First: %+v", p)
	}
}
