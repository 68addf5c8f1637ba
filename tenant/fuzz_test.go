package tenant

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cloudkey/cloudkey/internal/identity"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// FuzzParseCSV: a file is either refused as a whole (ErrInvalidCSV) or
// every data record is accounted for exactly once, as a good contact or a
// bad row; good contacts are valid, canonical and unique; bad rows are
// listed in line order with a reason.
func FuzzParseCSV(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseCSV(data, DefaultRegion, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalidCSV) {
				t.Fatalf("parseCSV error %v does not match ErrInvalidCSV", err)
			}
			return
		}
		r := p.report
		if r.Rows == 0 || r.Rows != len(p.good)+r.BadRowCount {
			t.Fatalf("rows %d != %d good + %d bad", r.Rows, len(p.good), r.BadRowCount)
		}
		if len(r.BadRows) != min(r.BadRowCount, MaxBadRowsListed) {
			t.Fatalf("%d bad rows listed of %d", len(r.BadRows), r.BadRowCount)
		}
		for i, b := range r.BadRows {
			if b.Line < 2 || b.Reason == "" || (i > 0 && b.Line < r.BadRows[i-1].Line) {
				t.Fatalf("bad row %d: %+v (previous %+v): want line >= 2, a reason, line order", i, b, r.BadRows[max(i-1, 0)])
			}
		}
		seen := map[string]bool{}
		last := 1
		for _, e := range p.good {
			if e.line <= last {
				t.Fatalf("good contact on line %d after line %d", e.line, last)
			}
			last = e.line
			if c, err := identity.CanonicalEmail(e.email); err != nil || c != e.email {
				t.Fatalf("line %d: email %q is not canonical (%v)", e.line, e.email, err)
			}
			if seen[e.email] || !p.listed[e.email] {
				t.Fatalf("line %d: email %q is repeated or not listed", e.line, e.email)
			}
			seen[e.email] = true
			if e.name == "" || e.name != strings.Join(strings.Fields(e.name), " ") || !utf8.ValidString(e.name) ||
				utf8.RuneCountInString(e.name) > MaxNameLen || strings.IndexFunc(e.name, unicode.IsControl) >= 0 {
				t.Fatalf("line %d: name %q is not a clean name", e.line, e.name)
			}
			if e.phone != "" && !e164.MatchString(e.phone) {
				t.Fatalf("line %d: phone %q is not E.164", e.line, e.phone)
			}
		}
	})
}
