package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
)

func token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	email := fs.String("email", "", "the app user's email (required)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
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
	tok, err := h.Sign(*email, *ttl)
	if err != nil {
		return fmt.Errorf("token: --email: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
