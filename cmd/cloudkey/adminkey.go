package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/redisconn"
)

const adminKeyUsage = `usage:
  cloudkey admin-key create --property ID --name NAME   a key for one property
  cloudkey admin-key create --portfolio --name NAME     a key for every property
  cloudkey admin-key create --org ORG --name NAME       as before properties: the default property
  cloudkey admin-key revoke --key KEY
Every command needs --redis-url (CLOUDKEY_REDIS_URL).`

// adminKeyCmd manages admin API keys in the Redis cloudkey uses.
func adminKeyCmd(ctx context.Context, args []string, stdout io.Writer) error {
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprintln(stdout, adminKeyUsage)
		return flag.ErrHelp
	case len(args) == 0 || (args[0] != "create" && args[0] != "revoke"):
		return usageError{errors.New(adminKeyUsage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("admin-key "+verb, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), adminKeyUsage)
		fs.PrintDefaults()
	}
	redisURL := fs.String("redis-url", envOr("CLOUDKEY_REDIS_URL", ""), "Redis cloudkey uses (env CLOUDKEY_REDIS_URL)")
	org := fs.String("org", envOr("CLOUDKEY_ACCESS_ORG", ""), "access-system organisation the key is scoped to (env CLOUDKEY_ACCESS_ORG)")
	prop := fs.String("property", "", "the one property the key may see and change (instead of --org)")
	portfolio := fs.Bool("portfolio", false, "the key may see and change every property (instead of --org)")
	name := fs.String("name", "", "who or what uses the key, e.g. 'front desk integration'")
	key := fs.String("key", "", "the key to revoke")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *redisURL == "" {
		return fmt.Errorf("admin-key: --redis-url (CLOUDKEY_REDIS_URL) is required: the embedded Redis lives inside `cloudkey serve`, which prints a development admin key at start")
	}
	rdb, err := redisconn.Dial(*redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	store := adminkey.NewStore(rdb, cache.DefaultPrefix)
	if verb == "revoke" {
		if err := store.Revoke(ctx, *key); err != nil {
			return fmt.Errorf("admin-key revoke: %w", err)
		}
		fmt.Fprintln(stdout, "revoked")
		return nil
	}
	scope := adminkey.Scope{Org: *org, Property: *prop, Portfolio: *portfolio}
	if *prop != "" || *portfolio {
		scope.Org = "" // --org's default comes from the environment: a scope given here wins
	}
	plain, k, err := store.CreateScoped(ctx, scope, *name)
	if err != nil {
		return err
	}
	what := "organisation " + k.Org
	switch {
	case k.Portfolio:
		what = "the whole portfolio"
	case k.Property != "":
		what = "property " + k.Property
	}
	fmt.Fprintf(stdout, "%s\n# key id %s for %s (%s); shown once, stored hashed\n", plain, k.ID, what, k.Name)
	return nil
}
