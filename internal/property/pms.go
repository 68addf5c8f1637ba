package property

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PMS systems a pms block may name.
const (
	Buildium = "buildium"
)

// DefaultBuildiumURL is Buildium's API, without /v1.
const DefaultBuildiumURL = "https://api.buildium.com"

// Pull intervals of a pms block: hourly unless told otherwise, as the
// access vendors that sync a PMS do (PMS_APIS.md §4), and never more often
// than every 5 minutes, which would only spend the PMS's rate limit.
const (
	DefaultPMSEvery = time.Hour
	MinPMSEvery     = 5 * time.Minute
)

// PMS is a property's property-management system: where its resident
// roster is pulled from, on a schedule (issue 15). Only Buildium for now.
type PMS struct {
	System string `yaml:"system"`
	// URL is the API's base (default DefaultBuildiumURL).
	URL string `yaml:"url"`
	// The API key's client id: inline (it is not a secret), or from an
	// environment variable or a file, exactly one.
	ClientID     string `yaml:"client_id"`
	ClientIDEnv  string `yaml:"client_id_env"`
	ClientIDFile string `yaml:"client_id_file"`
	// The API key's client secret, from an environment variable or a
	// file; never inline.
	ClientSecretEnv  string `yaml:"client_secret_env"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// PropertyIDs are the Buildium rental property ids whose leases make
	// up this property's roster.
	PropertyIDs []int32 `yaml:"property_ids"`
	// Every is the pull interval (default DefaultPMSEvery, at least
	// MinPMSEvery).
	Every time.Duration `yaml:"every"`

	// InlineClientSecret is refused, with a message saying where it goes.
	InlineClientSecret string `yaml:"client_secret"`

	// ClientSecret is read by Load from the environment or the file named.
	ClientSecret string `yaml:"-"`
}

// String shows the block without its secret.
func (p PMS) String() string {
	ids := make([]string, len(p.PropertyIDs))
	for i, id := range p.PropertyIDs {
		ids[i] = fmt.Sprint(id)
	}
	return fmt.Sprintf("%s %s properties %s every %s", p.System, p.URL, strings.Join(ids, ","), p.Every)
}

// Equal reports whether a and b pull the same roster the same way,
// secrets compared in clear and the *_env/*_file names ignored (what the
// store keeps). Two nil blocks are equal.
func (p *PMS) Equal(o *PMS) bool {
	if p == nil || o == nil {
		return p == o
	}
	return p.System == o.System && p.URL == o.URL && p.ClientID == o.ClientID && p.ClientSecret == o.ClientSecret &&
		slices.Equal(p.PropertyIDs, o.PropertyIDs) && p.Every == o.Every
}

// checkPMS checks a property's pms block (nil: none), fills its defaults
// and reads its secrets. Errors start with the field at fault, so the
// caller prefixes "pms.".
func checkPMS(p *PMS, env Lookup, readFile func(string) ([]byte, error)) error {
	if p == nil {
		return nil
	}
	switch p.System {
	case Buildium:
	case "":
		return errors.New("system: name the property-management system (buildium)")
	default:
		return fmt.Errorf("system: %q is not supported (buildium)", p.System)
	}
	c := oauthClient{idName: "API key's client id", inlineSecret: p.InlineClientSecret, id: p.ClientID, idEnv: p.ClientIDEnv, idFile: p.ClientIDFile,
		secretEnv: p.ClientSecretEnv, secretFile: p.ClientSecretFile}
	p.InlineClientSecret = ""
	if p.URL == "" {
		p.URL = DefaultBuildiumURL
	}
	if !strings.HasPrefix(p.URL, "https://") && !strings.HasPrefix(p.URL, "http://") {
		return fmt.Errorf("url: %q: want an http(s) URL such as %s", p.URL, DefaultBuildiumURL)
	}
	p.URL = strings.TrimRight(p.URL, "/")
	id, secret, err := c.read(env, readFile)
	if err != nil {
		return err
	}
	p.ClientID, p.ClientSecret = id, secret
	if len(p.PropertyIDs) == 0 {
		return errors.New("property_ids: name at least one Buildium rental property id (Buildium shows it in the property's URL)")
	}
	seen := map[int32]bool{}
	for _, id := range p.PropertyIDs {
		if id <= 0 {
			return fmt.Errorf("property_ids: %d is not a Buildium rental property id (a positive number)", id)
		}
		if seen[id] {
			return fmt.Errorf("property_ids: %d is named twice", id)
		}
		seen[id] = true
	}
	switch {
	case p.Every == 0:
		p.Every = DefaultPMSEvery
	case p.Every < MinPMSEvery:
		return fmt.Errorf("every: %s is more often than every %s", p.Every, MinPMSEvery)
	}
	return nil
}
