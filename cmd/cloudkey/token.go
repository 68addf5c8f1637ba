package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
)

func token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	email := fs.String("email", "", "the app user's email (required)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	var props stringList
	fs.Var(&props, "property", "a property id for the token's properties claim (repeatable; none: the default property)")
	secret := fs.String("secret", envOr("CLOUDKEY_TOKEN_SECRET", identity.DevelopmentSecret), "HS256 key (env CLOUDKEY_TOKEN_SECRET; default: the development key the server also uses)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *email == "" {
		return fmt.Errorf("token: --email is required")
	}
	if *ttl <= 0 {
		return fmt.Errorf("token: --ttl must be positive, got %v", *ttl)
	}
	h, err := identity.NewHS256(*secret)
	if err != nil {
		return err
	}
	tok, err := h.SignFor(*email, *ttl, props)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set adds one value.
func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
