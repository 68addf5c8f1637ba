package tenant

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
)

// Limits on one import. A building's tenant list is hundreds to a few
// thousand contacts; the limits leave room for a portfolio-wide file while
// keeping one request's memory and Redis transaction bounded.
const (
	MaxFileBytes     = 5 << 20 // 5 MiB
	MaxRows          = 50_000  // data records, header and blank records not counted
	MaxNameLen       = 200     // characters
	MaxBadRowsListed = 1000    // bad records listed in a report; all are counted
)

// column is one of the three columns an import needs, or the optional
// Buildings column.
type column int

const (
	colName column = iota
	colEmail
	colPhone
	numRequired // the columns before are required
	// colBuildings lists the buildings whose visitor-registration tile the
	// contact gets: the HqO seed has property managers send "the same CSV"
	// to grant the tile, so the grant may ride along in the file.
	colBuildings = numRequired
	numColumns   = numRequired + 1
)

// columnLabels name the columns in messages, in the seed's words.
var columnLabels = [numColumns]string{"Full Name", "Email", "Phone", "Buildings"}

// headerSynonyms maps a header, as normalised by headerKey, to its column.
// Property managers export from Envoy, Excel and HR systems, each with its
// own words for the same three things.
var headerSynonyms = map[string]column{
	"full name":      colName,
	"fullname":       colName,
	"name":           colName,
	"email":          colEmail,
	"e mail":         colEmail,
	"email address":  colEmail,
	"e mail address": colEmail,
	"phone":          colPhone,
	"phone number":   colPhone,
	"mobile":         colPhone,
	"mobile number":  colPhone,
	"mobile phone":   colPhone,
	"cell":           colPhone,
	"cell phone":     colPhone,
	"telephone":      colPhone,
	// The optional grant column: building ids separated by ";" (or "|",
	// ",", spaces), e.g. "hv-tower;hv-annex".
	"buildings":                 colBuildings,
	"building":                  colBuildings,
	"building ids":              colBuildings,
	"grant tile":                colBuildings,
	"tile":                      colBuildings,
	"visitor registration":      colBuildings,
	"visitor registration tile": colBuildings,
}

// headerKey lower-cases h, turns each run of anything but letters and
// digits into one space and drops a leading "tenant contact" or "contact",
// so "Tenant Contact E-mail " becomes "e mail".
func headerKey(h string) string {
	f := strings.FieldsFunc(strings.ToLower(h), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	if len(f) > 1 && f[0] == "tenant" && f[1] == "contact" {
		f = f[2:]
	}
	if len(f) > 1 && f[0] == "contact" {
		f = f[1:]
	}
	return strings.Join(f, " ")
}

// entry is a good record.
type entry struct {
	line      int
	email     string
	name      string
	phone     string
	buildings []string // tile grants the record asks for
	warning   string   // kept, but the property manager should look (a possible-only phone)
}

// pending is a record whose fields still have to be checked.
type pending struct {
	line int
	raw  [numColumns]string
	// Set by check: the good entry, or why the record is bad (ok.email is
	// set whenever the email is valid, even when something else is bad).
	ok  entry
	bad string
}

// parsed is a checked file.
type parsed struct {
	good []entry
	// listed holds every valid email on any record, good or bad: with
	// RemoveMissing a contact on a bad record was still listed by the
	// property manager, and is kept.
	listed map[string]bool
	report ImportReport
}

// parseCSV reads and checks a whole file (see the package documentation).
// It returns an error wrapping ErrInvalidCSV when the file as a whole is
// refused; bad records are in the report.
func parseCSV(data []byte, region string, known func(building string) bool) (parsed, error) {
	data, err := decodeText(data)
	if err != nil {
		return parsed{}, err
	}
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1 // a record with the wrong count is one bad record, not the end of the file
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return parsed{}, fmt.Errorf("tenant: %w: the file is empty; expected a header row: %s", ErrInvalidCSV, strings.Join(columnLabels[:numRequired], ", "))
	}
	if err != nil {
		return parsed{}, fmt.Errorf("tenant: %w: header: %v", ErrInvalidCSV, err)
	}
	cols, warnings, err := mapHeader(header)
	if err != nil {
		return parsed{}, err
	}
	p := parsed{listed: map[string]bool{}}
	p.report.Warnings = warnings

	var (
		todo         []pending
		bad          []BadRow
		blank        int
		firstBlankAt int
	)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// Quoting errors end the record where they are found; the
			// reader carries on at the next line (an unclosed quote runs to
			// the end of the file, which is then where it stops).
			p.report.Rows++
			bad = append(bad, BadRow{Line: pe.StartLine, Reason: "malformed CSV: " + pe.Err.Error() + " (a field with a quote must be quoted and the quote doubled)"})
			continue
		}
		if err != nil {
			return parsed{}, fmt.Errorf("tenant: read CSV: %w", err)
		}
		line, _ := r.FieldPos(0)
		if isBlank(rec) {
			if blank == 0 {
				firstBlankAt = line
			}
			blank++
			continue
		}
		p.report.Rows++
		if p.report.Rows > MaxRows {
			return parsed{}, fmt.Errorf("tenant: %w: %w: more than %d rows; split the file", ErrInvalidCSV, ErrTooLarge, MaxRows)
		}
		if len(rec) != len(header) {
			bad = append(bad, BadRow{Line: line, Reason: fmt.Sprintf("has %d fields, the header has %d", len(rec), len(header))})
			continue
		}
		t := pending{line: line}
		for c := range numColumns {
			if cols[c] >= 0 {
				t.raw[c] = rec[cols[c]]
			}
		}
		todo = append(todo, t)
	}
	if p.report.Rows == 0 {
		return parsed{}, fmt.Errorf("tenant: %w: no contacts after the header row", ErrInvalidCSV)
	}
	if blank > 0 {
		what := "blank row on line"
		if blank > 1 {
			what = "blank rows, the first on line"
		}
		p.report.Warnings = append(p.report.Warnings, fmt.Sprintf("skipped %d %s %d", blank, what, firstBlankAt))
	}

	checkAll(todo, region, known)
	firstLine := map[string]int{}
	var warned []string
	for i := range todo {
		t := &todo[i]
		if e := t.ok.email; e != "" {
			p.listed[e] = true
			if first, dup := firstLine[e]; dup {
				if t.bad == "" {
					t.bad = fmt.Sprintf("email %s is already on line %d", e, first)
				}
			} else {
				firstLine[e] = t.line
			}
		}
		if t.bad != "" {
			bad = append(bad, BadRow{Line: t.line, Reason: t.bad})
			continue
		}
		p.good = append(p.good, t.ok)
		if t.ok.warning != "" {
			warned = append(warned, fmt.Sprintf("line %d: %s", t.line, t.ok.warning))
		}
	}
	if len(warned) > MaxBadRowsListed {
		warned = append(warned[:MaxBadRowsListed], fmt.Sprintf("and %d more lines with warnings", len(warned)-MaxBadRowsListed))
	}
	p.report.Warnings = append(p.report.Warnings, warned...)
	slices.SortStableFunc(bad, func(a, b BadRow) int { return a.Line - b.Line })
	p.report.BadRowCount = len(bad)
	p.report.BadRows = bad[:min(len(bad), MaxBadRowsListed)]
	return p, nil
}

// decodeText strips a UTF-8 byte-order mark (Excel's "CSV UTF-8" writes
// one) and refuses UTF-16, which Excel's "Unicode Text" writes and which
// would otherwise parse as one garbled column. Line endings may be CRLF or
// LF (encoding/csv reads both); a file with only CRs (old Mac Excel) has
// them turned into LFs.
func decodeText(data []byte) ([]byte, error) {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return nil, fmt.Errorf("tenant: %w: the file is UTF-16 text; save it as CSV UTF-8 (comma delimited)", ErrInvalidCSV)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if !bytes.Contains(data, []byte("\n")) && bytes.Contains(data, []byte("\r")) {
		data = bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
	}
	return data, nil
}

// mapHeader finds the index of each column in header. Columns it does not
// know are ignored with a warning; a missing or repeated one refuses the
// file.
func mapHeader(header []string) ([numColumns]int, []string, error) {
	var cols [numColumns]int
	var found [numColumns]bool
	for c := range cols {
		cols[c] = -1 // absent: only the optional ones may stay so
	}
	var warnings []string
	for i, h := range header {
		c, ok := headerSynonyms[headerKey(h)]
		switch {
		case !ok && strings.TrimSpace(h) == "":
			warnings = append(warnings, fmt.Sprintf("column %d has no name and was ignored", i+1))
		case !ok:
			warnings = append(warnings, fmt.Sprintf("column %d %q is not one of %s and was ignored", i+1, strings.TrimSpace(h), strings.Join(columnLabels[:], ", ")))
		case found[c]:
			return cols, nil, fmt.Errorf("tenant: %w: columns %d and %d are both the %s column", ErrInvalidCSV, cols[c]+1, i+1, columnLabels[c])
		default:
			cols[c], found[c] = i, true
		}
	}
	var missing []string
	for c := range numRequired {
		if !found[c] {
			missing = append(missing, columnLabels[c])
		}
	}
	if len(missing) == 0 {
		return cols, warnings, nil
	}
	hint := ""
	if len(header) == 1 && strings.ContainsAny(header[0], ";\t") {
		hint = "; the header looks separated by semicolons or tabs: save the file as CSV (comma delimited)"
	}
	what := "column"
	if len(missing) > 1 {
		what = "columns"
	}
	return cols, nil, fmt.Errorf("tenant: %w: missing %s %s (the header row needs %s; found %q)%s",
		ErrInvalidCSV, what, strings.Join(missing, ", "), strings.Join(columnLabels[:numRequired], ", "), header, hint)
}

func isBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}
