package property

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// FieldError is a property refused by Validate: which field, and why.
type FieldError struct {
	// Conn is the index of the connection at fault in Access; -1 when
	// the field is the property's own.
	Conn int
	// Field is "id", "name", "timezone" or "access" for the property;
	// "system", "name", "url", "org", "email", "secret" or "places" for a
	// connection.
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Conn < 0 {
		return e.Field + ": " + e.Reason
	}
	return fmt.Sprintf("access[%d].%s: %s", e.Conn, e.Field, e.Reason)
}

// Validate checks a property given with its secrets in clear (the admin
// API's), by the properties file's rules, and fills the defaults (the
// name, each connection's name). The secret is required.
func Validate(p *Property) error {
	bad := func(conn int, field, reason string) error {
		return &FieldError{Conn: conn, Field: field, Reason: reason}
	}
	p.ID = strings.TrimSpace(p.ID)
	if !idPattern.MatchString(p.ID) {
		return bad(-1, "id", fmt.Sprintf("%q: want 1 to 63 of a-z, 0-9 and -", p.ID))
	}
	if p.Name = strings.TrimSpace(p.Name); p.Name == "" {
		p.Name = p.ID
	}
	if p.TimeZone != "" {
		if _, err := time.LoadLocation(p.TimeZone); err != nil {
			return bad(-1, "timezone", fmt.Sprintf("%q is not an IANA time zone", p.TimeZone))
		}
	}
	if len(p.Access) == 0 {
		return bad(-1, "access", "name at least one access-system connection")
	}
	names := map[string]bool{}
	for i := range p.Access {
		c := &p.Access[i]
		switch c.System {
		case Openpath, Kisi:
		case "":
			return bad(i, "system", "name the access system (openpath or kisi)")
		default:
			return bad(i, "system", fmt.Sprintf("%q is not supported (openpath or kisi)", c.System))
		}
		if c.Name == "" {
			c.Name = c.System
		}
		if !namePattern.MatchString(c.Name) {
			return bad(i, "name", fmt.Sprintf("%q: want 1 to 32 of a-z, 0-9 and -", c.Name))
		}
		if names[c.Name] {
			return bad(i, "name", fmt.Sprintf("%q is used twice in the property; give each connection of the same system its own name", c.Name))
		}
		names[c.Name] = true
		if !strings.HasPrefix(c.URL, "https://") && !strings.HasPrefix(c.URL, "http://") {
			return bad(i, "url", fmt.Sprintf("%q: want an http(s) URL", c.URL))
		}
		switch c.System {
		case Openpath:
			if c.Email == "" {
				return bad(i, "email", "the service account's email is required for openpath")
			}
			if len(c.Places) > 0 {
				return bad(i, "places", "places are for kisi connections")
			}
		case Kisi:
			if c.Email != "" {
				return bad(i, "email", "kisi connections take an API key, not a service account")
			}
			if c.Org != "" {
				return bad(i, "org", "kisi connections take an API key, whose organisation is implied")
			}
			if slices.ContainsFunc(c.Places, func(id int64) bool { return id <= 0 }) {
				return bad(i, "places", "want positive Kisi place ids")
			}
		}
		if strings.TrimSpace(c.Secret) == "" {
			return bad(i, "secret", "required")
		}
		c.Secret = strings.TrimSpace(c.Secret)
	}
	return nil
}
