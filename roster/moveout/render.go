package moveout

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteText writes the run for a person: what it did (or would do), what
// is pending, the overrides and the guard, each change on a line.
func (r Result) WriteText(w io.Writer) error {
	tz := r.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	what := "run"
	switch {
	case r.DryRun:
		what = "dry run"
	case !r.Applied && r.Skipped == "":
		what = "report (the policy is " + string(r.Policy.Mode) + ": nothing was changed)"
	}
	fmt.Fprintf(w, "property %s: move-out %s at %s (%s), roster version %d\npolicy: %s\n",
		r.Property, what, r.At.Format(time.RFC3339), tz, r.RosterVersion, r.Policy.Describe())
	if r.Skipped != "" {
		_, err := fmt.Fprintf(w, "nothing done: %s\n", r.Skipped)
		return err
	}
	if g := r.Guard; g.Tripped {
		fmt.Fprintf(w, "GUARD: suspended nobody: %d of %d linked residents would be suspended, at most %d allowed; check the roster (a truncated export?), then raise max_suspend_share or suspend by hand\n",
			g.Suspensions, g.Linked, g.Allowed)
	}
	verb := "to do now"
	if r.Applied {
		verb = "done"
	}
	section := func(title string, cs []Change) {
		fmt.Fprintf(w, "\n%s: %d\n", title, len(cs))
		if len(cs) == 0 {
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ACTION\tUNIT\tNAME\tCONNECTION\tUSER\tEMAIL\tDUE\tOUTCOME\tWHY")
		for _, c := range cs {
			due := "at once"
			if !c.Due.IsZero() {
				due = c.Due.Format(time.RFC3339)
			} else if c.Action == Reactivate {
				due = "-"
			}
			outcome := "-"
			switch {
			case c.Error != "":
				outcome = "FAILED: " + c.Error
			case c.Done:
				outcome = "done"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Action, c.Unit, nameOr(&c), c.Connection, c.UserID, c.Email, due, outcome, c.Reason)
		}
		_ = tw.Flush()
	}
	section("changes "+verb, r.Changes)
	if len(r.Held) > 0 {
		section("held by the guard", r.Held)
	}
	section("pending (due later)", r.Pending)
	if len(r.Overrides) > 0 {
		fmt.Fprintf(w, "\noverrides (reactivated by a person; left alone): %d\n", len(r.Overrides))
		for _, o := range r.Overrides {
			fmt.Fprintf(w, "  %s %s %s/%s %s: %s\n", o.Unit, o.Name, o.Connection, o.UserID, o.Email, o.Reason)
		}
	}
	if r.Failed > 0 {
		fmt.Fprintf(w, "\n%d changes failed; the next run tries them again\n", r.Failed)
	}
	return nil
}
