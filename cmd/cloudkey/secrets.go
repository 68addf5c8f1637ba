package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cloudkey/cloudkey/access/kisi/loginredis"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

const secretsUsage = `usage:
  cloudkey secrets new-key [--id ID]
                      print a new key entry: put it first in CLOUDKEY_SECRETS_KEY,
                      keep the older keys after it
  cloudkey secrets rotate
                      re-encrypt every stored secret with the first key of
                      CLOUDKEY_SECRETS_KEY (required); needs --redis-url (CLOUDKEY_REDIS_URL)
CLOUDKEY_SECRETS_KEY is comma-separated id:base64key entries (32-byte keys):
the first encrypts, all decrypt.`

// secretsCmd makes keys for CLOUDKEY_SECRETS_KEY and re-encrypts the
// stored secrets (Kisi logins) with its first key.
func secretsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	switch {
	case len(args) > 0 && isHelp(args[0]):
		fmt.Fprintln(stdout, secretsUsage)
		return flag.ErrHelp
	case len(args) == 0 || (args[0] != "new-key" && args[0] != "rotate"):
		return usageError{errors.New(secretsUsage)}
	}
	verb := args[0]
	fs := flag.NewFlagSet("secrets "+verb, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), secretsUsage)
		fs.PrintDefaults()
	}
	var id, redisURL *string
	if verb == "new-key" {
		id = fs.String("id", "k"+time.Now().UTC().Format("20060102"), "the key's id: 1 to 32 of A-Z a-z 0-9 _ -, unique in CLOUDKEY_SECRETS_KEY")
	} else {
		redisURL = fs.String("redis-url", envOr("CLOUDKEY_REDIS_URL", ""), "Redis cloudkey uses (env CLOUDKEY_REDIS_URL)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("secrets %s: unexpected arguments %q\n%s", verb, fs.Args(), secretsUsage)}
	}
	if verb == "new-key" {
		entry, err := secrets.NewKeySpec(*id)
		if err != nil {
			return usageError{err}
		}
		fmt.Fprintf(stdout, "%s\n# put it first in CLOUDKEY_SECRETS_KEY (CLOUDKEY_SECRETS_KEY=%s:...,<older keys>),\n"+
			"# then run `cloudkey secrets rotate`; drop an older key only after that.\n", entry, *id)
		return nil
	}
	spec := os.Getenv("CLOUDKEY_SECRETS_KEY")
	if spec == "" {
		return errors.New("secrets rotate: CLOUDKEY_SECRETS_KEY is required: rotating to the development key would expose every secret")
	}
	keys, err := secrets.Parse(spec)
	if err != nil {
		return fmt.Errorf("secrets rotate: CLOUDKEY_SECRETS_KEY: %w", err)
	}
	if keys.Development() {
		fmt.Fprintln(stdout, "# warning: the first key of CLOUDKEY_SECRETS_KEY is the public development key")
	}
	if *redisURL == "" {
		return errors.New("secrets rotate: --redis-url (CLOUDKEY_REDIS_URL) is required: the embedded Redis lives inside `cloudkey serve`")
	}
	rdb, err := redisconn.Dial(*redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	rotated, total, err := loginredis.Rotate(ctx, rdb, keys)
	fmt.Fprintf(stdout, "rotated %d of %d\n", rotated, total)
	if err != nil {
		return fmt.Errorf("secrets rotate: %w", err)
	}
	// The properties' connection secrets (stored since issue 14).
	if rotated, total, err = propertyredis.Rotate(ctx, rdb, keys); total > 0 || err != nil {
		fmt.Fprintf(stdout, "properties: rotated %d of %d\n", rotated, total)
	}
	if err != nil {
		return fmt.Errorf("secrets rotate: %w", err)
	}
	return nil
}
