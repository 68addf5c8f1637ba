package roster

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// Field is a canonical roster column (PMS_APIS.md §3).
type Field string

// The canonical columns. FieldName is a whole name to split; FieldNotice
// and FieldHousehold are not in the documented header but read when
// present.
const (
	FieldProperty   Field = "property_id"
	FieldUnit       Field = "unit"
	FieldResidentID Field = "resident_id"
	FieldHousehold  Field = "household_id"
	FieldName       Field = "name"
	FieldFirstName  Field = "first_name"
	FieldLastName   Field = "last_name"
	FieldEmail      Field = "email"
	FieldPhone      Field = "phone"
	FieldStatus     Field = "status"
	FieldMoveIn     Field = "move_in"
	FieldMoveOut    Field = "move_out"
	FieldNotice     Field = "notice_date"
	FieldLeaseStart Field = "lease_start"
	FieldLeaseEnd   Field = "lease_end"
	FieldRole       Field = "role"
)

// aliases maps a header, folded by foldHeader, to its field: the canonical
// names and the aliases real exports and APIs use (PMS_APIS.md §3).
// "Tenant" is both a name and an id in the wild: it is read as a name, and
// an id in parentheses inside it is split out. "Occupancy ID" is AppFolio's
// lease (household) id, which its exports list beside "Tenant ID".
var aliases = map[string]Field{}

func init() {
	for f, names := range map[Field][]string{
		FieldProperty:   {"property_id", "Property", "Property Code", "Property ID", "Property Name", "YardiPropertyId", "propertyId"},
		FieldUnit:       {"unit", "Unit Number", "Unit Name", "UnitNumber", "unit_number"},
		FieldResidentID: {"resident_id", "Resident", "Resident Code", "Tenant Code", "Tenant ID", "Customer ID", "TenantId", "Id", "Person ID", "personId"},
		FieldHousehold:  {"household_id", "Occupancy ID", "OccupancyId", "Lease ID", "LeaseId", "Household"},
		FieldName:       {"name", "Resident Name", "Tenant", "Tenant Name", "Full Name"},
		FieldFirstName:  {"first_name", "First", "FirstName"},
		FieldLastName:   {"last_name", "Last", "LastName"},
		FieldEmail:      {"email", "Email Address", "E-mail", "Tenant Email", "emailAddress", "Emails", "Email Addresses"},
		FieldPhone:      {"phone", "Cell Phone", "Mobile", "Tenant Phone Number", "Phone Numbers", "Phone Number"},
		FieldStatus:     {"status", "Tenant Status", "Resident Status", "Lease Status", "LeaseStatus", "leaseStatusType"},
		FieldMoveIn:     {"move_in", "Move In Date", "Move-In Date", "MoveIn", "MoveInDate", "MoveInOn", "Actual Move In"},
		FieldMoveOut:    {"move_out", "Move Out Date", "Move-Out Date", "MoveOut", "MoveOutDate", "MoveOutOn"},
		FieldNotice:     {"notice_date", "Notice Given Date", "NoticeGivenDate", "Notice Date", "Notice Given"},
		FieldLeaseStart: {"lease_start", "Lease From", "Lease From Date", "Lease Start Date", "LeaseFromDate"},
		FieldLeaseEnd:   {"lease_end", "Lease To", "Lease To Date", "Lease End Date", "Lease Expiration", "LeaseToDate"},
		FieldRole:       {"role", "Resident Type", "Relationship"},
	} {
		for _, n := range names {
			aliases[foldHeader(n)] = f
		}
	}
}

// foldHeader drops case, spaces and punctuation: "Move-In Date",
// "move_in_date" and "MoveInDate" fold alike.
func foldHeader(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// IssueKind says why a row was skipped or flagged.
type IssueKind string

// The kinds of issues. Preamble, section, vacant, total, blank and header
// rows are the shapes of real exports, skipped as expected; the others
// are for the manager to fix.
const (
	IssuePreamble    IssueKind = "preamble"     // a title line above the header
	IssueSection     IssueKind = "section"      // "Current/Notice/Vacant Residents"
	IssueVacant      IssueKind = "vacant"       // a VACANT unit row
	IssueTotal       IssueKind = "total"        // a totals footer
	IssueBlank       IssueKind = "blank"        // an empty line
	IssueHeader      IssueKind = "header"       // the header repeated (paged exports)
	IssueNoEmail     IssueKind = "no_email"     // a person without an email: skipped
	IssueBadRow      IssueKind = "bad_row"      // a malformed value: skipped
	IssueDuplicate   IssueKind = "duplicate"    // a second row with the same key: the less permissive is skipped
	IssueStatus      IssueKind = "status"       // an unknown status word: kept as unknown
	IssueSharedEmail IssueKind = "shared_email" // two people with one email: both kept, never merged
)

// Expected reports whether the kind is a normal part of an export's shape
// rather than something the manager should look at.
func (k IssueKind) Expected() bool {
	switch k {
	case IssuePreamble, IssueSection, IssueVacant, IssueTotal, IssueBlank, IssueHeader:
		return true
	}
	return false
}

// Issue is a row skipped or flagged, by CSV line (1-based; 0 for an API
// pull).
type Issue struct {
	Line    int       `json:"line,omitempty"`
	Kind    IssueKind `json:"kind"`
	Skipped bool      `json:"skipped"`
	Reason  string    `json:"reason"`
	Key     string    `json:"key,omitempty"`
}

func (i Issue) String() string {
	verb := "flagged"
	if i.Skipped {
		verb = "skipped"
	}
	if i.Line > 0 {
		return fmt.Sprintf("line %d %s (%s): %s", i.Line, verb, i.Kind, i.Reason)
	}
	return fmt.Sprintf("%s (%s): %s", verb, i.Kind, i.Reason)
}

// ErrNoHeader is returned when no row of the file names the roster's
// columns.
var ErrNoHeader = errors.New("roster: no header row found")

// ErrNoEmailColumn is returned for a file whose header has no email
// column (a Yardi rent roll, for one).
var ErrNoEmailColumn = errors.New("roster: the header has no email column")

// CSVOptions tune ParseCSV.
type CSVOptions struct {
	// MaxRows bounds the data rows read (0: 200,000), so an upload cannot
	// take unbounded memory.
	MaxRows int
}

// Import is a parsed CSV roster: the assembled roster, and where the
// header was and what it meant.
type Import struct {
	Roster
	// HeaderLine is the header's line number.
	HeaderLine int `json:"headerLine"`
	// Columns maps each recognised field to the header as written.
	Columns map[Field]string `json:"columns"`
	// Rows counts the data rows read (good and bad).
	Rows int `json:"rows"`
}

// idInName finds "Gianna Barile (s0005974)": a name, then a PMS id in
// parentheses (Yardi t-, r- and s-codes, numeric ids).
var idInName = regexp.MustCompile(`^(.*\S)\s*\(\s*([A-Za-z]{0,4}[0-9][A-Za-z0-9-]*)\s*\)$`)

// headerRows is how far down a file the header is looked for.
const headerRows = 50

// ParseCSV reads a roster exported as CSV: the canonical columns or their
// aliases in any order, below any title block, with section rows, VACANT
// rows and totals footers skipped, a "Name (t0012345)" cell split into
// name and id, dates as YYYY-MM-DD or MM/DD/YYYY. Every row skipped or
// flagged is in Issues with its line; rows without an email are skipped.
// It fails only when the file has no usable header, no email column or
// cannot be read.
func ParseCSV(r io.Reader, opts CSVOptions) (*Import, error) {
	maxRows := opts.MaxRows
	if maxRows <= 0 {
		maxRows = 200_000
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.TrimLeadingSpace = true

	im := &Import{}
	var (
		cols     []Field // by column index; "" for columns not read
		issues   []Issue
		rows     []Person
		section  Status
		preamble []Issue
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			if cols == nil {
				preamble = append(preamble, Issue{Line: perr.StartLine, Kind: IssuePreamble, Skipped: true, Reason: "unreadable line: " + perr.Err.Error()})
				continue
			}
			issues = append(issues, Issue{Line: perr.StartLine, Kind: IssueBadRow, Skipped: true, Reason: "unreadable CSV: " + perr.Err.Error()})
			im.Rows++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("roster: read CSV: %w", err)
		}
		line, _ := cr.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(strings.TrimPrefix(rec[i], "\uFEFF"))
		}
		if cols == nil {
			if c, ok := header(rec); ok {
				cols, im.HeaderLine = c, line
				im.Columns = map[Field]string{}
				for i, f := range cols {
					if f != "" {
						im.Columns[f] = rec[i]
					}
				}
				if _, ok := im.Columns[FieldEmail]; !ok {
					return nil, fmt.Errorf("%w (line %d: %s): export a resident directory report that lists each resident's email", ErrNoEmailColumn, line, strings.Join(nonEmpty(rec), ","))
				}
				issues = append(issues, preamble...)
				continue
			}
			if line > headerRows {
				break
			}
			if len(nonEmpty(rec)) == 0 {
				preamble = append(preamble, Issue{Line: line, Kind: IssueBlank, Skipped: true, Reason: "empty line"})
			} else {
				preamble = append(preamble, Issue{Line: line, Kind: IssuePreamble, Skipped: true, Reason: "above the header: " + clip(strings.Join(nonEmpty(rec), " "))})
			}
			continue
		}
		if im.Rows >= maxRows {
			return nil, fmt.Errorf("roster: more than %d rows; split the file", maxRows)
		}
		im.Rows++
		p, iss, sec := readRow(rec, cols, line, section)
		section = sec
		if iss != nil {
			issues = append(issues, *iss)
			if iss.Skipped {
				continue
			}
		}
		rows = append(rows, p)
	}
	if cols == nil {
		return nil, fmt.Errorf("%w in the first %d lines: the header must name at least two of the columns %s (or their aliases)", ErrNoHeader, headerRows, canonicalHeader)
	}
	im.Roster = Assemble(rows)
	im.Issues = append(issues, im.Issues...)
	sort.SliceStable(im.Issues, func(i, j int) bool { return im.Issues[i].Line < im.Issues[j].Line })
	return im, nil
}

// canonicalHeader is the documented header.
const canonicalHeader = "property_id,unit,resident_id,first_name,last_name,email,phone,status,move_in,move_out,lease_start,lease_end,role"

// header reports whether rec is a header row, and the field of each
// column: at least two distinct fields, one of which names a person or a
// unit. A field named twice is read from its first column.
func header(rec []string) ([]Field, bool) {
	cols := make([]Field, len(rec))
	seen := map[Field]bool{}
	for i, h := range rec {
		f, ok := aliases[foldHeader(h)]
		if !ok || seen[f] {
			continue
		}
		seen[f] = true
		cols[i] = f
	}
	person := seen[FieldEmail] || seen[FieldName] || seen[FieldFirstName] || seen[FieldResidentID] || seen[FieldUnit]
	return cols, len(seen) >= 2 && person
}

// readRow turns one data row into a Person, or an issue when the row is
// skipped (or flagged and kept). section is the status hint of the last
// section row; the new hint is returned.
func readRow(rec []string, cols []Field, line int, section Status) (Person, *Issue, Status) {
	skip := func(k IssueKind, reason string) (Person, *Issue, Status) {
		return Person{}, &Issue{Line: line, Kind: k, Skipped: true, Reason: reason}, section
	}
	filled := nonEmpty(rec)
	if len(filled) == 0 {
		return skip(IssueBlank, "empty line")
	}
	if h, ok := header(rec); ok && equalFields(h, cols) {
		return skip(IssueHeader, "the header again")
	}
	first := strings.ToLower(filled[0])
	if strings.HasPrefix(first, "total") || strings.HasPrefix(first, "grand total") || strings.HasPrefix(first, "subtotal") {
		return skip(IssueTotal, "totals: "+clip(strings.Join(filled, " ")))
	}
	for _, c := range rec {
		if strings.EqualFold(c, "vacant") {
			return skip(IssueVacant, "vacant unit")
		}
	}
	v := map[Field]string{}
	for i, c := range rec {
		if i < len(cols) && cols[i] != "" && c != "" {
			v[cols[i]] = c
		}
	}
	if len(filled) == 1 && isSection(rec, cols) {
		// One cell alone is a section title such as "Future
		// Residents/Applicants"; it hints the status of the rows below.
		hint := sectionStatus(filled[0])
		_, iss, _ := skip(IssueSection, "section: "+clip(filled[0]))
		return Person{}, iss, hint
	}

	p := Person{Source: SourceCSV, Line: line, PropertyID: v[FieldProperty], Unit: v[FieldUnit], HouseholdID: v[FieldHousehold]}
	var problems []string

	// Names and ids: "First Last (t0012345)" in whichever column; "Last,
	// First"; separate first and last name columns win over a whole name.
	name := v[FieldName]
	id := v[FieldResidentID]
	for _, f := range []Field{FieldName, FieldResidentID, FieldFirstName, FieldLastName} {
		m := idInName.FindStringSubmatch(v[f])
		if m == nil {
			continue
		}
		switch f {
		case FieldResidentID:
			id = m[2]
			if name == "" {
				name = m[1]
			}
		case FieldName:
			name = m[1]
			if id == "" {
				id = m[2]
			}
		default:
			v[f] = m[1]
			if id == "" {
				id = m[2]
			}
		}
	}
	if name == "" && id != "" && strings.ContainsRune(id, ' ') && v[FieldFirstName] == "" {
		// A "Resident" column holding a name without an id.
		name, id = id, ""
	}
	p.PersonID = id
	p.FirstName, p.LastName = v[FieldFirstName], v[FieldLastName]
	if p.FirstName == "" && p.LastName == "" {
		p.FirstName, p.LastName = splitName(name)
	}

	// Email: the first of several is the primary one.
	emails := splitEmails(v[FieldEmail])
	if len(emails) == 0 {
		who := p.Name()
		if who == "" {
			who = "a person"
		}
		if p.Unit != "" {
			who += " in unit " + p.Unit
		}
		return skip(IssueNoEmail, who+" has no email: add one in the PMS, or the person cannot be matched to a door user")
	}
	if err := p.SetEmail(emails[0]); err != nil {
		problems = append(problems, fmt.Sprintf("email %q is not an address", emails[0]))
	}
	p.OtherEmails = emails[1:]
	p.Phone = v[FieldPhone]

	for _, d := range []struct {
		f  Field
		to *Date
	}{
		{FieldMoveIn, &p.MoveIn}, {FieldMoveOut, &p.MoveOut}, {FieldNotice, &p.NoticeDate},
		{FieldLeaseStart, &p.LeaseStart}, {FieldLeaseEnd, &p.LeaseEnd},
	} {
		t, err := ParseDate(v[d.f])
		if err != nil {
			problems = append(problems, string(d.f)+": "+err.Error())
		}
		*d.to = t
	}
	if len(problems) > 0 {
		return skip(IssueBadRow, strings.Join(problems, "; "))
	}
	p.Role = parseRole(v[FieldRole])

	var flag *Issue
	p.SourceStatus = v[FieldStatus]
	switch {
	case p.SourceStatus != "":
		p.Status, p.Eviction, p.MonthToMonth = ParseStatus(p.SourceStatus)
		if p.Status == StatusUnknown {
			flag = &Issue{Line: line, Kind: IssueStatus, Reason: fmt.Sprintf("status %q is not one cloudkey knows; kept as unknown", p.SourceStatus)}
		}
	case section != "":
		p.Status = section
	default:
		// A directory export without statuses lists current residents.
		p.Status = StatusCurrent
	}
	if p.Status == StatusCurrent && p.SourceStatus == "" && !p.MoveOut.IsZero() {
		p.Status = StatusNotice
	}
	return p, flag, section
}

// isSection reports whether a row of one cell is a section title
// ("Future Residents/Applicants"): words, in the first column or in one
// that holds no person; not an email, a bare number or a "Name (id)".
func isSection(rec []string, cols []Field) bool {
	for i, c := range rec {
		if c == "" {
			continue
		}
		var f Field
		if i < len(cols) {
			f = cols[i]
		}
		if f == FieldEmail || !strings.ContainsFunc(c, unicode.IsLetter) || idInName.MatchString(c) {
			return false
		}
		switch f {
		case FieldName, FieldFirstName, FieldLastName, FieldResidentID:
			return i == 0
		}
		return true
	}
	return false
}

// sectionStatus reads the status a section title implies ("Future
// Residents/Applicants"); "" when it implies none.
func sectionStatus(title string) Status {
	t := strings.ToLower(title)
	switch {
	case strings.Contains(t, "future"):
		return StatusFuture
	case strings.Contains(t, "past") || strings.Contains(t, "former"):
		return StatusPast
	case strings.Contains(t, "applicant"):
		return StatusApplicant
	case strings.Contains(t, "current") || strings.Contains(t, "notice"):
		return StatusCurrent
	}
	return ""
}

// splitName splits "Last, First" or "First Middle Last".
func splitName(s string) (first, last string) {
	if l, f, ok := strings.Cut(s, ","); ok {
		return strings.TrimSpace(f), strings.TrimSpace(l)
	}
	parts := strings.Fields(s)
	switch len(parts) {
	case 0:
		return "", ""
	case 1:
		return parts[0], ""
	}
	return strings.Join(parts[:len(parts)-1], " "), parts[len(parts)-1]
}

// splitEmails splits a cell holding one or more emails.
func splitEmails(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == '|' || unicode.IsSpace(r) })
}

func parseRole(s string) Role {
	switch foldHeader(s) {
	case "":
		return ""
	case "primary", "headofhousehold", "financiallyresponsible", "lessee", "leaseholder", "primarytenant":
		return RolePrimary
	case "coresident", "roommate", "cotenant", "colessee", "resident":
		return RoleCoResident
	case "occupant", "dependent", "minor", "child":
		return RoleOccupant
	case "guarantor", "cosigner":
		return RoleGuarantor
	}
	return RoleOther
}

func nonEmpty(rec []string) []string {
	var out []string
	for _, c := range rec {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func equalFields(a, b []Field) bool {
	n := max(len(a), len(b))
	for i := range n {
		var x, y Field
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return false
		}
	}
	return true
}

// clip shortens s for a report line.
func clip(s string) string {
	const n = 80
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
