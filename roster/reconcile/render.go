package reconcile

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// csvHeader is the CSV report's header: one line per row, totals aside.
var csvHeader = []string{"category", "connection", "unit", "name", "email", "status", "move_out", "user_id", "access_email", "access_status", "near_misses", "detail", "line"}

// WriteCSV writes the rows as CSV, most urgent first, for a spreadsheet.
// Near misses are "email (kind, connection)" joined by "; ". A cell that
// would start a formula (=, +, -, @) is prefixed with a quote, since the
// emails and names come from other systems.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("reconcile: write the CSV report: %w", err)
	}
	for _, row := range r.Rows {
		line := ""
		if row.Line > 0 {
			line = fmt.Sprint(row.Line)
		}
		rec := []string{string(row.Category), row.Connection, row.Unit, row.Name, row.Email, string(row.Status), row.MoveOut.String(),
			row.UserID, row.AccessEmail, string(row.AccessStatus), nearMissText(row.NearMisses), row.Detail, line}
		for i, c := range rec {
			rec[i] = cellSafe(c)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("reconcile: write the CSV report: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("reconcile: write the CSV report: %w", err)
	}
	return nil
}

// WriteJSON writes the report as indented JSON: totals, then rows.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("reconcile: write the JSON report: %w", err)
	}
	return nil
}

// WriteText writes the report for a terminal: the totals, then the rows
// grouped by category.
func (r *Report) WriteText(w io.Writer) error {
	t := r.Totals
	fmt.Fprintf(w, "property %s, roster version %d, %s, against %s\n", r.Property, r.RosterVersion, r.Today, strings.Join(r.Connections, ", "))
	fmt.Fprintf(w, "%d people: %d matched, %d not in the access system (%d with a near miss), %d without entries, %d suspended although current, %d active after move-out, %d overdue notices, %d sharing an email; %d access-system users not in the roster\n",
		t.People, t.Matched, t.NotInAccessSystem, t.WithNearMiss, t.NoEntries, t.SuspendedButCurrent, t.ActiveAfterMoveOut, t.OverdueNotice, t.SharedEmail, t.NotInRoster)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var cat Category
	for _, row := range r.Rows {
		if row.Category != cat {
			cat = row.Category
			fmt.Fprintf(tw, "\n%s\n", strings.ToUpper(strings.ReplaceAll(string(cat), "_", " ")))
		}
		who := row.Email
		if row.Category == NotInRoster {
			who = row.AccessEmail
		}
		where := row.Connection
		if row.UserID != "" {
			where += " user " + row.UserID
		}
		detail := row.Detail
		if len(row.NearMisses) > 0 {
			detail += "; access system has: " + nearMissText(row.NearMisses)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", row.Unit, row.Name, who, row.Status, where, detail)
	}
	return tw.Flush()
}

func nearMissText(ns []NearMiss) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = fmt.Sprintf("%s (%s, %s)", n.Email, strings.ReplaceAll(n.Kind, "_", " "), n.Connection)
	}
	return strings.Join(parts, "; ")
}

// cellSafe keeps a spreadsheet from reading a cell as a formula.
func cellSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
