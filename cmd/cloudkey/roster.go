package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/internal/setup"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/pmspull"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/unlock/auditredis"
)

const rosterUsage = `usage:
  cloudkey roster import FILE --property P [--dry-run]
  cloudkey roster versions --property P
  cloudkey roster report --property P [--format text|json|csv]
  cloudkey roster policy --property P [--mode off|report|auto] [--grace DAYS] [--cutoff HH:MM] [--max-share X]
  cloudkey roster moveout --property P [--dry-run] [--format text|json]
  cloudkey roster pull --property P
FILE is a CSV resident roster exported from the PMS ("-" reads standard input):
the columns property_id,unit,resident_id,first_name,last_name,email,phone,status,
move_in,move_out,lease_start,lease_end,role or their usual aliases, in any order,
below any title block. Each import is a new version of the property's roster.
report compares the current roster with the property's access systems, read
live (no credential is created), and records the links it finds; it reads
the property from the Redis of ` + "`cloudkey serve`" + `, its secrets opened with
CLOUDKEY_SECRETS_KEY.
policy shows the property's move-out policy, or changes the values given:
mode (report, the default, only says what would be done), grace days after
the move-out date, the local cut-off time, and the largest share of linked
residents one run may suspend.
moveout runs the policy now, as the server does after each import: with
--dry-run (or in report mode) it prints the exact changes and writes
nothing; in auto mode it suspends and reactivates users and audits each.
pull pulls the roster from the property's PMS (its pms: block) now, as the
scheduled pull does: what changed since the last pull, merged into a new
version, then reconciled.
Every command needs --redis-url (CLOUDKEY_REDIS_URL).`

// rosterCmd imports PMS roster exports into the Redis cloudkey uses and
// lists the stored versions. An import stores the good rows and prints
// every row it skipped, by line.
func rosterCmd(ctx context.Context, args []string, stdout io.Writer) error {
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprintln(stdout, rosterUsage)
		return flag.ErrHelp
	case len(args) == 0:
		return usageError{errors.New(rosterUsage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("roster "+verb, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), rosterUsage)
		fs.PrintDefaults()
	}
	redisURL := fs.String("redis-url", envOr("CLOUDKEY_REDIS_URL", ""), "Redis cloudkey uses (env CLOUDKEY_REDIS_URL)")
	property := fs.String("property", "", "the cloudkey property id the roster is of")
	var dryRun, moveDry bool
	var mode, cutoff *string
	var grace *int
	var share *float64
	format := "text"
	switch verb {
	case "import":
		fs.BoolVar(&dryRun, "dry-run", false, "parse and report, store nothing")
	case "report":
		fs.StringVar(&format, "format", "text", "text, json or csv")
	case "policy":
		mode = fs.String("mode", "", "off, report or auto")
		grace = fs.Int("grace", 0, "whole days after the move-out date access ends (0 to 90)")
		cutoff = fs.String("cutoff", "", "local time of day access ends, HH:MM")
		share = fs.Float64("max-share", 0, "largest share of linked residents one run may suspend (0 < x <= 1)")
	case "moveout":
		fs.BoolVar(&moveDry, "dry-run", false, "print the changes, make none")
		fs.StringVar(&format, "format", "text", "text or json")
	case "versions", "pull":
	default:
		return usageError{fmt.Errorf("roster: unknown command %q\n%s", verb, rosterUsage)}
	}
	operands, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	switch {
	case verb == "import" && len(operands) == 0:
		return fmt.Errorf("roster import: FILE is required\n%s", rosterUsage)
	case verb == "import" && len(operands) > 1, verb != "import" && len(operands) > 0:
		return fmt.Errorf("roster %s: unexpected arguments %q\n%s", verb, operands, rosterUsage)
	}
	if *property == "" {
		return errors.New("roster: --property is required")
	}
	if verb == "moveout" && format != "text" && format != "json" {
		return usageError{fmt.Errorf("roster moveout: --format %q: want text or json", format)}
	}
	if format != "text" && format != "json" && format != "csv" {
		return usageError{fmt.Errorf("roster report: --format %q: want text, json or csv", format)}
	}
	if err := rosterredis.CheckProperty(*property); err != nil {
		return fmt.Errorf("roster: --property: %w", err)
	}
	if *redisURL == "" && !dryRun {
		return errors.New("roster: --redis-url (CLOUDKEY_REDIS_URL) is required: the embedded Redis lives inside `cloudkey serve`")
	}
	timeout := time.Minute
	if verb == "report" || verb == "moveout" || verb == "pull" {
		timeout = 10 * time.Minute // one Openpath request per user
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var store *rosterredis.Store
	var policies *moveout.Store
	var directories directoriesFunc
	var pull func(ctx context.Context, property string) (pmspull.Status, error)
	if !dryRun {
		rdb, err := redisconn.Dial(*redisURL)
		if err != nil {
			return err
		}
		defer rdb.Close()
		store = rosterredis.New(rdb)
		policies = moveout.NewStore(rdb)
		directories = func(ctx context.Context, property string) (string, []reconcile.Connection, error) {
			keys, err := secretsFromEnv()
			if err != nil {
				return "", nil, err
			}
			return setup.RosterDirectories(ctx, rdb, keys, property)
		}
		pull = func(ctx context.Context, property string) (pmspull.Status, error) {
			keys, err := secretsFromEnv()
			if err != nil {
				return pmspull.Status{}, err
			}
			return setup.PullRoster(ctx, rdb, keys, property, nil)
		}
	}
	switch verb {
	case "policy":
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "mode", "grace", "cutoff", "max-share":
				set[f.Name] = true
			}
		})
		return rosterPolicy(ctx, *redisURL, *property, policyFlags{set: set, mode: *mode, grace: *grace, cutoff: *cutoff, share: *share}, stdout)
	case "moveout":
		return rosterMoveOut(ctx, *redisURL, *property, moveDry, format, stdout)
	case "versions":
		return listRosterVersions(ctx, store, *property, stdout)
	case "report":
		return rosterReport(ctx, directories, store, policies, *property, format, stdout)
	case "pull":
		return pullRoster(ctx, pull, *property, stdout)
	}
	return importRoster(ctx, store, *property, operands[0], stdout)
}

func importRoster(ctx context.Context, store *rosterredis.Store, property, file string, stdout io.Writer) error {
	in := io.Reader(os.Stdin)
	origin := "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("roster import: %w", err)
		}
		defer f.Close()
		in, origin = f, filepath.Base(file)
	}
	im, err := roster.ParseCSV(in, roster.CSVOptions{})
	if err != nil {
		return fmt.Errorf("roster import %s: %w", file, err)
	}
	if len(im.People) == 0 {
		printRosterIssues(stdout, im.Issues)
		return fmt.Errorf("roster import %s: no row has a person with an email; nothing was stored", file)
	}
	fmt.Fprintf(stdout, "property %s: %s: header on line %d, %d data %s, %d %s\n",
		property, origin, im.HeaderLine, im.Rows, plural(im.Rows, "row"), len(im.People), plural(len(im.People), "person"))
	if store == nil {
		fmt.Fprintln(stdout, "dry run: nothing stored")
	} else {
		v, err := store.Save(ctx, property, rosterredis.Snapshot{Source: roster.SourceCSV, Origin: origin, People: im.People, Issues: im.Issues})
		if err != nil {
			return fmt.Errorf("roster import %s: %w", file, err)
		}
		fmt.Fprintf(stdout, "version %d: %d created, %d updated, %d removed, %d unchanged\n",
			v.Number, v.Added, v.Changed, v.Removed, v.People-v.Added-v.Changed)
		printRosterDiff(stdout, v.Diff)
	}
	printRosterIssues(stdout, im.Issues)
	return nil
}

// printRosterDiff lists the changes that matter to access: who is new,
// who is gone, whose email, status or move-out changed.
func printRosterDiff(w io.Writer, d roster.Diff) {
	const most = 20
	show := func(what string, people []roster.Person) {
		for i, p := range people {
			if i == most {
				fmt.Fprintf(w, "  … and %d more %s\n", len(people)-most, what)
				break
			}
			fmt.Fprintf(w, "  %s %s <%s> unit %s (%s)\n", what, p.Name(), p.Email, p.Unit, p.Status)
		}
	}
	show("created", d.Added)
	show("removed", d.Removed)
	for i, c := range d.Changed {
		if i == most {
			fmt.Fprintf(w, "  … and %d more updated\n", len(d.Changed)-most)
			break
		}
		var parts []string
		for _, f := range c.Fields {
			parts = append(parts, fmt.Sprintf("%s %q → %q", f.Field, f.Old, f.New))
		}
		fmt.Fprintf(w, "  updated %s (%s): %s\n", c.Name, c.Key, strings.Join(parts, ", "))
	}
}

// printRosterIssues prints the rows to look at one per line, and the
// export's expected layout rows (title, sections, VACANT, totals) as one
// line of line numbers per kind.
func printRosterIssues(w io.Writer, issues []roster.Issue) {
	layout := map[roster.IssueKind][]string{}
	for _, i := range issues {
		if i.Kind.Expected() {
			layout[i.Kind] = append(layout[i.Kind], strconv.Itoa(i.Line))
			continue
		}
		fmt.Fprintf(w, "%s\n", i)
	}
	kinds := make([]string, 0, len(layout))
	for k := range layout {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		lines := layout[roster.IssueKind(k)]
		fmt.Fprintf(w, "skipped as export layout (%s): %s %s\n", k, plural(len(lines), "line"), strings.Join(lines, ", "))
	}
}

// directoriesFunc gives a stored property's time zone and its access
// systems' user directories.
type directoriesFunc func(ctx context.Context, property string) (string, []reconcile.Connection, error)

// rosterReport reconciles the property's roster with its access systems
// and prints the report.
func rosterReport(ctx context.Context, directories directoriesFunc, store *rosterredis.Store, policies *moveout.Store, property, format string, stdout io.Writer) error {
	tz, conns, err := directories(ctx, property)
	if err != nil {
		return fmt.Errorf("roster report: %w", err)
	}
	r, err := reconcile.Reconcile(ctx, store, property, tz, conns, time.Now())
	if err != nil {
		return fmt.Errorf("roster report: %w", err)
	}
	// What the move-out policy would do as the roster stands, from this
	// reconciliation (the same plan as the admin API's JSON report); the
	// CSV stays one line per finding.
	var plan *moveout.Result
	if policies != nil && format != "csv" {
		if p, err := moveOutPlan(ctx, store, policies, property, tz, r); err != nil {
			fmt.Fprintf(os.Stderr, "warning: no move-out plan: %v\n", err)
		} else {
			plan, r.MoveOutPlan = &p, p
		}
	}
	switch format {
	case "json":
		return r.WriteJSON(stdout)
	case "csv":
		return r.WriteCSV(stdout)
	}
	if err := r.WriteText(stdout); err != nil {
		return err
	}
	if plan != nil {
		fmt.Fprintln(stdout, "\nMOVE-OUT POLICY")
		return plan.WriteText(stdout)
	}
	return nil
}

// moveOutPlan is the property's move-out plan from reconciliation r.
func moveOutPlan(ctx context.Context, store *rosterredis.Store, policies *moveout.Store, property, tz string, r *reconcile.Report) (moveout.Result, error) {
	cur, ok, err := store.Current(ctx, property)
	if err != nil || !ok {
		return moveout.Result{}, fmt.Errorf("read the roster: %v", err)
	}
	runner, err := moveout.New(moveout.Config{Store: policies, Rosters: store,
		Systems: func(string) (string, []moveout.Connection, bool) { return tz, nil, true }})
	if err != nil {
		return moveout.Result{}, err
	}
	return runner.PlanFor(ctx, property, tz, cur.People, r)
}

// secretsFromEnv is the keyring of CLOUDKEY_SECRETS_KEY, or the
// development one (with a warning on standard error) when it is unset,
// as serve does.
func secretsFromEnv() (*secrets.Keyring, error) {
	spec := os.Getenv("CLOUDKEY_SECRETS_KEY")
	if spec == "" {
		fmt.Fprintln(os.Stderr, "warning: CLOUDKEY_SECRETS_KEY is not set: using the development key, as `cloudkey serve` does")
		return secrets.Development(), nil
	}
	keys, err := secrets.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("CLOUDKEY_SECRETS_KEY: %w", err)
	}
	return keys, nil
}

func listRosterVersions(ctx context.Context, store *rosterredis.Store, property string, stdout io.Writer) error {
	vs, err := store.Versions(ctx, property)
	if err != nil {
		return fmt.Errorf("roster versions: %w", err)
	}
	if len(vs) == 0 {
		fmt.Fprintf(stdout, "property %s has no roster yet: import one with `cloudkey roster import FILE --property %s`\n", property, property)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCREATED\tSOURCE\tORIGIN\tPEOPLE\tADDED\tUPDATED\tREMOVED")
	for _, v := range vs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", v.Number, v.CreatedAt.Format(time.RFC3339), v.Source, v.Origin, v.People, v.Added, v.Changed, v.Removed)
	}
	return tw.Flush()
}

// policyFlags are the policy values given on the command line (set names
// the flags given).
type policyFlags struct {
	set    map[string]bool
	mode   string
	grace  int
	cutoff string
	share  float64
}

// rosterPolicy prints the property's move-out policy, after changing the
// values given (audited as the admin API's changes are).
func rosterPolicy(ctx context.Context, redisURL, property string, f policyFlags, stdout io.Writer) error {
	rdb, err := redisconn.Dial(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := moveout.NewStore(rdb)
	p, saved, err := store.Policy(ctx, property)
	if err != nil {
		return fmt.Errorf("roster policy: %w", err)
	}
	if len(f.set) > 0 {
		if f.set["mode"] {
			if p.Mode, err = moveout.ParseMode(f.mode); err != nil {
				return usageError{fmt.Errorf("roster policy: --mode: %w", err)}
			}
		}
		if f.set["grace"] {
			p.GraceDays = f.grace
		}
		if f.set["cutoff"] {
			if p.Cutoff, err = moveout.ParseCutoff(f.cutoff); err != nil {
				return usageError{fmt.Errorf("roster policy: --cutoff: %w", err)}
			}
		}
		if f.set["max-share"] {
			p.MaxSuspendShare = f.share
		}
		before, _, err := store.SetPolicy(ctx, property, p, time.Now())
		if err != nil {
			return fmt.Errorf("roster policy: %w", err)
		}
		audit := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{})
		audit.Record(unlock.Attempt{Kind: unlock.KindSettingsChanged, At: time.Now().UTC(), Email: "cli:cloudkey roster policy",
			EntryID: "moveout-policy", Property: property, Status: unlock.OK,
			Message: fmt.Sprintf("move-out policy: %s → %s", before.Describe(), p.Describe())})
		if err := audit.Close(ctx); err != nil {
			return fmt.Errorf("roster policy: saved, but the audit record was not written: %w", err)
		}
		saved = true
	}
	state := "set"
	if !saved {
		state = "the default; none set"
	}
	fmt.Fprintf(stdout, "property %s move-out policy (%s):\n  mode %s\n  grace %d days\n  cutoff %s (the property's time zone)\n  max-share %s\n",
		property, state, p.Mode, p.GraceDays, p.CutoffString(), strconv.FormatFloat(p.MaxSuspendShare, 'f', -1, 64))
	return nil
}

// rosterMoveOut runs the property's move-out policy now (or its dry run)
// and prints the result.
func rosterMoveOut(ctx context.Context, redisURL, property string, dryRun bool, format string, stdout io.Writer) error {
	rdb, err := redisconn.Dial(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	keys, err := secretsFromEnv()
	if err != nil {
		return err
	}
	audit := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{})
	runner, err := setup.MoveOutRunner(ctx, rdb, keys, audit, property)
	if err != nil {
		_ = audit.Close(ctx)
		return fmt.Errorf("roster moveout: %w", err)
	}
	r, runErr := runner.Run(ctx, property, dryRun)
	// Flush the audit before answering, even after a failed run.
	if err := audit.Close(context.WithoutCancel(ctx)); err != nil && runErr == nil {
		fmt.Fprintf(os.Stderr, "warning: the audit records were not all written: %v\n", err)
	}
	if runErr != nil {
		return fmt.Errorf("roster moveout: %w", runErr)
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteText(stdout)
}

// pullRoster pulls the property's roster from its PMS now and prints
// what the pull did.
func pullRoster(ctx context.Context, pull func(context.Context, string) (pmspull.Status, error), property string, stdout io.Writer) error {
	st, err := pull(ctx, property)
	if err != nil {
		return fmt.Errorf("roster pull: %w", err)
	}
	kind := "incremental"
	if st.Full {
		kind = "full"
	}
	if st.Version == 0 {
		fmt.Fprintf(stdout, "property %s: %s pull, nothing changed (%d people, %d PMS requests)\n", property, kind, st.People, st.Requests)
	} else {
		fmt.Fprintf(stdout, "property %s: %s pull, version %d: %d people, %d created, %d updated, %d removed (%d PMS requests)\n",
			property, kind, st.Version, st.People, st.Added, st.Changed, st.Removed, st.Requests)
	}
	if st.Skipped > 0 {
		fmt.Fprintf(stdout, "%d %s skipped (no usable email); `cloudkey roster versions` and the report list them\n", st.Skipped, plural(st.Skipped, "row"))
	}
	fmt.Fprintf(stdout, "reconciled; the next incremental pull asks for changes since %s\n", st.Cursor.Format(time.RFC3339))
	return nil
}
