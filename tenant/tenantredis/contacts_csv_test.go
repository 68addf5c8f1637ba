package tenantredis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/tenant"
)

// person is what a test expects stored for a contact.
type person struct{ name, phone string }

func testImportCSV(t *testing.T, dial backends.Dial) {
	s, _, _ := newStore(t, dial)
	goodOnly := tenant.ImportOptions{GoodRowsOnly: true}
	// The property's buildings, for the optional Buildings column.
	known := tenant.ImportOptions{KnownBuilding: func(b string) bool { return b == "hv-tower" || b == "hv-annex" }}
	tests := []struct {
		file         string
		opts         tenant.ImportOptions
		wantErr      error           // nil: imported
		wantErrText  string          // in the error
		rows         int             // data records read
		bad          []tenant.BadRow // Reason is a substring
		warnings     []string        // substrings, in order
		wantContacts map[string]person
		wantGrants   map[string][]string // contact → buildings, sorted
	}{
		{
			// The HqO seed's own example: (555) 555-5555 is a possible US
			// number but not a valid one, kept with a warning for its line.
			file: "hqo_sample.csv", rows: 1,
			warnings:     []string{`line 2: phone "(555) 555-5555" is not a valid US number`},
			wantContacts: map[string]person{"liz@example.com": {"Liz Thomson", "+15555555555"}},
		},
		{
			// The optional Buildings column grants the tile in the same import.
			file: "grants.csv", opts: known, rows: 3,
			warnings: []string{`line 3: phone "(555) 555-5555"`},
			wantContacts: map[string]person{
				"ada@example.com":   {"Ada Lovelace", "+14155550123"},
				"grace@example.com": {"Grace Hopper", "+15555555555"},
				"alan@example.com":  {"Alan Turing", ""},
			},
			wantGrants: map[string][]string{"ada@example.com": {"hv-tower"}, "grace@example.com": {"hv-annex", "hv-tower"}},
		},
		{
			// An unknown building fails the whole import, naming line and building.
			file: "grants_unknown.csv", opts: known, rows: 2,
			wantErr: tenant.ErrBadRows, wantErrText: "1 of 2 rows are bad; nothing was imported",
			bad: []tenant.BadRow{{Line: 3, Reason: `building "hv-garage" is not one of the property's buildings`}},
		},
		{
			// Without a list of buildings any well-formed id is granted.
			file: "grants_unknown.csv", rows: 2,
			wantContacts: map[string]person{
				"ada@example.com":   {"Ada Lovelace", "+14155550123"},
				"grace@example.com": {"Grace Hopper", ""},
			},
			wantGrants: map[string][]string{"ada@example.com": {"hv-tower"}, "grace@example.com": {"hv-garage", "hv-tower"}},
		},
		{
			file: "seed.csv", rows: 3,
			wantContacts: map[string]person{
				"ada@example.com":          {"Ada Lovelace", "+14155550123"},
				"grace.hopper@example.com": {"Grace Hopper", "+12125550199"},
				"alan@example.com":         {"Alan Turing", ""},
			},
		},
		{
			// Commas, doubled quotes and newlines inside quoted fields; the
			// bad records come after multi-line ones, so their line numbers
			// prove that physical lines are counted.
			file: "quoted.csv", opts: goodOnly, rows: 6,
			bad: []tenant.BadRow{
				{Line: 6, Reason: `invalid email: "not-an-email"`},
				{Line: 10, Reason: `phone "12"`},
			},
			wantContacts: map[string]person{
				"ada@example.com":     {"Lovelace, Ada", "+14155550123"},
				"grace@example.com":   {`Grace "Amazing Grace" Hopper`, "+12125550199"},
				"alan@example.com":    {"Alan Turing", ""},
				"dorothy@example.com": {"Dorothy Vaughan", "+17575550100"},
			},
		},
		{
			// BOM, CRLF (also inside a quoted field) and header synonyms.
			file: "bom_crlf.csv", opts: goodOnly, rows: 3,
			bad: []tenant.BadRow{{Line: 5, Reason: `invalid email: "alan.example.com"`}},
			wantContacts: map[string]person{
				"ada@example.com":   {"Ada Lovelace", "+14155550123"},
				"grace@example.com": {"Grace Hopper", ""},
			},
		},
		{
			file: "cr_only.csv", rows: 2,
			wantContacts: map[string]person{
				"ada@example.com":   {"Ada Lovelace", ""},
				"grace@example.com": {"Grace Hopper", ""},
			},
		},
		{
			file: "extra_column.csv", rows: 1,
			warnings: []string{`column 2 "Company" is not one of Full Name, Email, Phone, Buildings and was ignored`, "column 5 has no name and was ignored"},
			wantContacts: map[string]person{
				"ada@example.com": {"Ada Lovelace", "+14155550123"},
			},
		},
		{file: "missing_column.csv", wantErr: tenant.ErrInvalidCSV, wantErrText: "missing column Phone"},
		{file: "semicolon.csv", wantErr: tenant.ErrInvalidCSV, wantErrText: "separated by semicolons"},
		{file: "duplicate_column.csv", wantErr: tenant.ErrInvalidCSV, wantErrText: "columns 1 and 3 are both the Full Name column"},
		{file: "empty.csv", wantErr: tenant.ErrInvalidCSV, wantErrText: "the file is empty; expected a header row: Full Name, Email, Phone"},
		{file: "header_only.csv", wantErr: tenant.ErrInvalidCSV, wantErrText: "no contacts after the header row"},
		{file: "utf16.csv", wantErr: tenant.ErrInvalidCSV, wantErrText: "UTF-16"},
		{
			file: "field_count.csv", wantErr: tenant.ErrBadRows, wantErrText: "2 of 4 rows are bad", rows: 4,
			bad: []tenant.BadRow{{Line: 3, Reason: "has 2 fields, the header has 3"}, {Line: 4, Reason: "has 4 fields, the header has 3"}},
		},
		{
			file: "field_count.csv", opts: goodOnly, rows: 4,
			bad: []tenant.BadRow{{Line: 3, Reason: "has 2 fields"}, {Line: 4, Reason: "has 4 fields"}},
			wantContacts: map[string]person{
				"ada@example.com":       {"Ada Lovelace", "+14155550123"},
				"katherine@example.com": {"Katherine Johnson", ""},
			},
		},
		{
			file: "malformed_quote.csv", opts: goodOnly, rows: 2,
			bad: []tenant.BadRow{{Line: 2, Reason: `malformed CSV: bare " in non-quoted-field`}},
			wantContacts: map[string]person{
				"grace@example.com": {"Grace Hopper", ""},
			},
		},
		{
			// All or nothing: nothing at all is written.
			file: "bad_rows.csv", wantErr: tenant.ErrBadRows, wantErrText: "5 of 7 rows are bad; nothing was imported", rows: 7,
			bad: []tenant.BadRow{
				{Line: 3, Reason: `invalid email: "ada-at-example.com"`},
				{Line: 4, Reason: `phone "555-5555" is not a valid US number`},
				{Line: 5, Reason: "extensions and vanity numbers are not supported"},
				{Line: 6, Reason: "full name is empty"},
				{Line: 7, Reason: "email ada@example.com is already on line 2"},
			},
			warnings: []string{"skipped 1 blank row on line 8"},
		},
		{
			file: "bad_rows.csv", opts: goodOnly, rows: 7,
			bad:      []tenant.BadRow{{Line: 3, Reason: "invalid email"}, {Line: 4, Reason: "not a valid US number"}, {Line: 5, Reason: "extensions"}, {Line: 6, Reason: "full name is empty"}, {Line: 7, Reason: "already on line 2"}},
			warnings: []string{"skipped 1 blank row"},
			wantContacts: map[string]person{
				"ada@example.com":   {"Ada Lovelace", "+14155550123"},
				"grace@example.com": {"Grace Hopper", "+442079460958"},
			},
		},
		{
			// Phones without "+" are read in the region: a UK file.
			file: "region_gb.csv", opts: tenant.ImportOptions{Region: "gb"}, rows: 2,
			wantContacts: map[string]person{
				"ada@example.co.uk":  {"Ada Lovelace", "+442079460958"},
				"alan@example.co.uk": {"Alan Turing", "+14155550123"},
			},
		},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/good-only=%v", tt.file, tt.opts.GoodRowsOnly), func(t *testing.T) {
			org := fmt.Sprintf("org-%d", i)
			rep, err := s.Import(context.Background(), org, bytes.NewReader(fixture(t, tt.file)), tt.opts)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Import: %v (report %+v)", err, rep)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Import error = %v, want %v", err, tt.wantErr)
			case err != nil && !strings.Contains(err.Error(), tt.wantErrText):
				t.Errorf("Import error %q does not say %q", err, tt.wantErrText)
			}
			if rep.Rows != tt.rows {
				t.Errorf("Rows = %d, want %d", rep.Rows, tt.rows)
			}
			checkBadRows(t, rep, tt.bad)
			if len(rep.Warnings) != len(tt.warnings) {
				t.Errorf("warnings %q, want %d like %q", rep.Warnings, len(tt.warnings), tt.warnings)
			}
			for i, w := range tt.warnings {
				if i < len(rep.Warnings) && !strings.Contains(rep.Warnings[i], w) {
					t.Errorf("warning %d = %q, want %q", i, rep.Warnings[i], w)
				}
			}
			got := all(t, s, org)
			if len(got) != len(tt.wantContacts) || rep.Created != len(tt.wantContacts) {
				t.Errorf("stored %d contacts, reported %d created; want %d", len(got), rep.Created, len(tt.wantContacts))
			}
			for email, want := range tt.wantContacts {
				c, ok := got[email]
				if !ok {
					t.Errorf("%s not stored; have %v", email, got)
					continue
				}
				if c.Name != want.name || c.Phone != want.phone || c.Org != org {
					t.Errorf("%s = %q %q in %q, want %q %q", email, c.Name, c.Phone, c.Org, want.name, want.phone)
				}
				if g := c.Buildings; strings.Join(g, ",") != strings.Join(tt.wantGrants[email], ",") {
					t.Errorf("%s has the tile for %q, want %q", email, g, tt.wantGrants[email])
				}
			}
			granted := 0
			for _, b := range tt.wantGrants {
				granted += len(b)
			}
			if tt.wantErr == nil && rep.Granted != granted {
				t.Errorf("Granted = %d, want %d", rep.Granted, granted)
			}
		})
	}
}

func checkBadRows(t *testing.T, rep tenant.ImportReport, want []tenant.BadRow) {
	t.Helper()
	if len(rep.BadRows) != len(want) || rep.BadRowCount != len(want) {
		t.Errorf("bad rows %+v (count %d), want %d: %+v", rep.BadRows, rep.BadRowCount, len(want), want)
		return
	}
	for i, w := range want {
		if g := rep.BadRows[i]; g.Line != w.Line || !strings.Contains(g.Reason, w.Reason) {
			t.Errorf("bad row %d = line %d %q, want line %d %q", i, g.Line, g.Reason, w.Line, w.Reason)
		}
	}
}

// Names are cleaned and bounded; cases too fiddly for a fixture file.
func testImportNames(t *testing.T, dial backends.Dial) {
	s, _, _ := newStore(t, dial)
	long := strings.Repeat("é", tenant.MaxNameLen)
	csv := "Full Name,Email,Phone\n" +
		"  Ada \t Lovelace ,a@example.com,\n" +
		long + ",b@example.com,\n" +
		long + "x,c@example.com,\n" +
		"Nul\x00Name,d@example.com,\n" +
		"\xff\xfe,e@example.com,\n"
	rep, err := s.Import(context.Background(), "1", strings.NewReader(csv), tenant.ImportOptions{GoodRowsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	checkBadRows(t, rep, []tenant.BadRow{
		{Line: 4, Reason: fmt.Sprintf("full name is longer than %d characters", tenant.MaxNameLen)},
		{Line: 5, Reason: "control characters"},
		{Line: 6, Reason: "not UTF-8 text"},
	})
	got := all(t, s, "1")
	if got["a@example.com"].Name != "Ada Lovelace" || got["b@example.com"].Name != long || len(got) != 2 {
		t.Errorf("stored %+v", got)
	}
}

// A file with more bad rows than a report lists still counts them all.
func testImportManyBadRows(t *testing.T, dial backends.Dial) {
	s, _, _ := newStore(t, dial)
	var b strings.Builder
	b.WriteString("Full Name,Email,Phone\n")
	n := tenant.MaxBadRowsListed + 5
	for i := range n {
		fmt.Fprintf(&b, "Person %d,person%d-at-example.com,\n", i, i)
	}
	rep, err := s.Import(context.Background(), "1", strings.NewReader(b.String()), tenant.ImportOptions{GoodRowsOnly: true})
	if !errors.Is(err, tenant.ErrBadRows) {
		t.Fatalf("Import = %v, want ErrBadRows (no good row at all)", err)
	}
	if rep.BadRowCount != n || len(rep.BadRows) != tenant.MaxBadRowsListed || rep.BadRows[0].Line != 2 {
		t.Errorf("BadRowCount %d, listed %d (first line %d); want %d, %d, 2", rep.BadRowCount, len(rep.BadRows), rep.BadRows[0].Line, n, tenant.MaxBadRowsListed)
	}
}
