package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/tenant/tenantredis"
)

const contactsUsage = `usage:
  cloudkey contacts import FILE --org ORG [--good-rows-only] [--remove-missing] [--region US]
  cloudkey contacts list --org ORG
  cloudkey contacts grant --org ORG --email EMAIL --building BUILDING
  cloudkey contacts revoke --org ORG --email EMAIL --building BUILDING
FILE is a CSV with the columns Full Name, Email, Phone and optionally Buildings ("-" reads standard input).
Every command needs --redis-url (CLOUDKEY_REDIS_URL).`

// contactsCmd manages tenant contacts and their visitor-registration tile
// grants in the Redis cloudkey uses. An import that writes nothing because
// of bad rows prints them and fails, so a script notices.
func contactsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprintln(stdout, contactsUsage)
		return flag.ErrHelp
	case len(args) == 0:
		return usageError{errors.New(contactsUsage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("contacts "+verb, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), contactsUsage)
		fs.PrintDefaults()
	}
	redisURL := fs.String("redis-url", envOr("CLOUDKEY_REDIS_URL", ""), "Redis cloudkey uses (env CLOUDKEY_REDIS_URL)")
	org := fs.String("org", envOr("CLOUDKEY_ACCESS_ORG", ""), "access-system organisation of the contacts (env CLOUDKEY_ACCESS_ORG)")
	var (
		opts            tenant.ImportOptions
		email, building string
	)
	switch verb {
	case "import":
		fs.BoolVar(&opts.GoodRowsOnly, "good-rows-only", false, "import the good rows even when some are bad (default: all or nothing)")
		fs.BoolVar(&opts.RemoveMissing, "remove-missing", false, "delete the organisation's contacts, and their grants, that the file does not list")
		fs.StringVar(&opts.Region, "region", tenant.DefaultRegion, "country that phone numbers without + are in (ISO code)")
	case "list":
	case "grant", "revoke":
		fs.StringVar(&email, "email", "", "the contact's email")
		fs.StringVar(&building, "building", "", "the building id whose visitor-registration tile is granted or revoked")
	default:
		return usageError{fmt.Errorf("contacts: unknown command %q\n%s", verb, contactsUsage)}
	}
	operands, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	switch {
	case verb == "import" && len(operands) == 0:
		return fmt.Errorf("contacts import: FILE is required\n%s", contactsUsage)
	case verb == "import" && len(operands) > 1, verb != "import" && len(operands) > 0:
		return fmt.Errorf("contacts %s: unexpected arguments %q\n%s", verb, operands, contactsUsage)
	}
	if *redisURL == "" {
		return errors.New("contacts: --redis-url (CLOUDKEY_REDIS_URL) is required: the embedded Redis lives inside `cloudkey serve`")
	}
	if *org == "" {
		return errors.New("contacts: --org is required")
	}
	rdb, err := redisconn.Dial(*redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	store := tenant.NewStore(tenantredis.NewContacts(rdb, cache.DefaultPrefix))
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	switch verb {
	case "import":
		return importContacts(ctx, store, *org, operands[0], opts, stdout)
	case "list":
		return listContacts(ctx, store, *org, stdout)
	case "grant":
		if err := store.Grant(ctx, *org, email, building); err != nil {
			return fmt.Errorf("contacts grant: %w", err)
		}
		fmt.Fprintf(stdout, "granted %s the visitor-registration tile for building %s\n", email, building)
		return nil
	default: // revoke
		if err := store.Revoke(ctx, *org, email, building); err != nil {
			return fmt.Errorf("contacts revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked %s's visitor-registration tile for building %s\n", email, building)
		return nil
	}
}

// parseInterspersed parses flags wherever they are among the operands
// (`import FILE --org 1` as well as `import --org 1 FILE`), which the flag
// package alone stops at the first operand.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func importContacts(ctx context.Context, store *tenant.Store, org, file string, opts tenant.ImportOptions, stdout io.Writer) error {
	in := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("contacts import: %w", err)
		}
		defer f.Close()
		in = f
	}
	rep, err := store.Import(ctx, org, in, opts)
	if err != nil && !errors.Is(err, tenant.ErrBadRows) {
		return fmt.Errorf("contacts import %s: %w", file, err)
	}
	printReport(stdout, org, rep)
	if err != nil {
		return fmt.Errorf("contacts import %s: %w", file, err)
	}
	return nil
}

func printReport(w io.Writer, org string, r tenant.ImportReport) {
	fmt.Fprintf(w, "organisation %s: %d rows: %d created, %d updated, %d unchanged, %d removed, %d bad\n",
		org, r.Rows, r.Created, r.Updated, r.Unchanged, r.Removed, r.BadRowCount)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	for _, b := range r.BadRows {
		fmt.Fprintf(w, "line %d: %s\n", b.Line, b.Reason)
	}
	if more := r.BadRowCount - len(r.BadRows); more > 0 {
		fmt.Fprintf(w, "… and %d more bad %s\n", more, plural(more, "row"))
	}
}

func listContacts(ctx context.Context, store *tenant.Store, org string, stdout io.Writer) error {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tNAME\tPHONE\tBUILDINGS\tUPDATED")
	cursor, n := "", 0
	for {
		page, err := store.List(ctx, org, cursor, tenant.MaxListLimit)
		if err != nil {
			return fmt.Errorf("contacts list: %w", err)
		}
		for _, c := range page.Contacts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Email, c.Name, c.Phone,
				strings.Join(c.Buildings, ","), c.UpdatedAt.Format(time.RFC3339))
			n++
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d %s in organisation %s\n", n, plural(n, "contact"), org)
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
