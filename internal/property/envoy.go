package property

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// DefaultEnvoyURL is Envoy's API, the url of an envoy block that names
// none.
const DefaultEnvoyURL = "https://app.envoy.com"

// Envoy is a property's connection to Envoy's REST API (issue 16): the
// tenant tile registers its visitors there, as invites, at the Envoy
// locations the connection serves. The OAuth client's secret is never
// inline; its id may be, or come from the environment or a file like the
// secret. Envoy's webhooks are verified with the deployment's webhook
// secret (CLOUDKEY_ENVOY_SECRET), not with anything here.
type Envoy struct {
	// URL is Envoy's API base; empty: DefaultEnvoyURL.
	URL string `yaml:"url"`
	// The OAuth client id: inline, or from the environment or a file.
	ClientID     string `yaml:"client_id"`
	ClientIDEnv  string `yaml:"client_id_env"`
	ClientIDFile string `yaml:"client_id_file"`
	// The OAuth client secret, from the environment or a file only.
	ClientSecretEnv  string `yaml:"client_secret_env"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// Locations are the Envoy location ids whose tile registrations go
	// to Envoy; at least one, each served by one property only.
	Locations []string `yaml:"locations"`

	// InlineSecret is refused, with a message saying where it goes.
	InlineSecret string `yaml:"client_secret"`

	// Secret is the client secret, read by Load from the environment or
	// the file named.
	Secret string `yaml:"-"`
}

// Serves reports whether e is connected at Envoy location id. A nil e
// serves none.
func (e *Envoy) Serves(location string) bool {
	return e != nil && location != "" && slices.Contains(e.Locations, location)
}

// BaseURL is e's URL, or DefaultEnvoyURL.
func (e *Envoy) BaseURL() string {
	if e.URL == "" {
		return DefaultEnvoyURL
	}
	return strings.TrimRight(e.URL, "/")
}

// String shows the connection without its secret.
func (e *Envoy) String() string {
	return "envoy " + e.BaseURL() + " client " + e.ClientID + " locations " + strings.Join(e.Locations, ",")
}

// envoyLocationPattern is an Envoy id: JSON:API ids are strings, Envoy's
// are numeric, but nothing here needs them to be.
var envoyLocationPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// checkEnvoy checks a properties file's envoy block and reads its
// client id and secret. Errors name the field, never a secret.
func checkEnvoy(e *Envoy, env Lookup, readFile func(string) ([]byte, error)) error {
	c := oauthClient{idName: "OAuth client id", inlineSecret: e.InlineSecret, id: e.ClientID, idEnv: e.ClientIDEnv, idFile: e.ClientIDFile,
		secretEnv: e.ClientSecretEnv, secretFile: e.ClientSecretFile}
	e.InlineSecret = ""
	id, secret, err := c.read(env, readFile)
	if err != nil {
		return fmt.Errorf("envoy.%w", err)
	}
	e.ClientID, e.Secret = id, secret
	if f := ValidateEnvoy(e); f != nil {
		return fmt.Errorf("envoy.%s: %s", f.Field, f.Reason)
	}
	return nil
}

// ValidateEnvoy checks a connection given with its secret in clear and
// trims its fields; nil when it is good. The FieldError's Field is
// "url", "client_id", "client_secret" or "locations" (Conn is -1).
func ValidateEnvoy(e *Envoy) *FieldError {
	bad := func(field, reason string) *FieldError { return &FieldError{Conn: -1, Field: field, Reason: reason} }
	e.URL, e.ClientID, e.Secret = strings.TrimSpace(e.URL), strings.TrimSpace(e.ClientID), strings.TrimSpace(e.Secret)
	if e.URL != "" && !strings.HasPrefix(e.URL, "https://") && !strings.HasPrefix(e.URL, "http://") {
		return bad("url", fmt.Sprintf("%q: want an http(s) URL", e.URL))
	}
	if e.ClientID == "" {
		return bad("client_id", "the OAuth client id is required (client_id, client_id_env or client_id_file)")
	}
	if e.Secret == "" {
		return bad("client_secret", "required, from client_secret_env or client_secret_file")
	}
	if len(e.Locations) == 0 {
		return bad("locations", "name the Envoy location ids this connection serves")
	}
	seen := map[string]bool{}
	for i, l := range e.Locations {
		l = strings.TrimSpace(l)
		if !envoyLocationPattern.MatchString(l) {
			return bad("locations", fmt.Sprintf("[%d] %q is not an Envoy location id", i, l))
		}
		if seen[l] {
			return bad("locations", fmt.Sprintf("%s is named twice", l))
		}
		seen[l] = true
		e.Locations[i] = l
	}
	return nil
}

// checkEnvoyLocations refuses an Envoy location served by the envoy
// blocks of two properties: a tile registration there would not know
// whose Envoy account to use.
func checkEnvoyLocations(ps []Property) error {
	owner := map[string]string{}
	for _, p := range ps {
		if p.Envoy == nil {
			continue
		}
		for _, l := range p.Envoy.Locations {
			if o, ok := owner[l]; ok {
				return fmt.Errorf("property %s: envoy.locations: %s is served by property %s too", p.ID, l, o)
			}
			owner[l] = p.ID
		}
	}
	return nil
}
