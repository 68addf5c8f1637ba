// Package property reads the properties file (PRODUCT.md, "Access systems
// and properties"): each property with its id, name, time zone and
// access-system connections. Secrets are never inline: a connection names
// an environment variable (*_env) or a file (*_file) for each, and Load
// reads them, so nothing secret is kept in the file or echoed in an error.
//
// It imports the standard library and a YAML decoder; it knows no access
// system's client, no Redis and no gRPC.
package property

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Systems a connection may name.
const (
	Openpath = "openpath"
	Kisi     = "kisi"
)

// Property is one residential community or office building.
type Property struct {
	ID       string       `yaml:"id"`
	Name     string       `yaml:"name"`
	TimeZone string       `yaml:"timezone"`
	Default  bool         `yaml:"default"`
	Access   []Connection `yaml:"access"`
	Envoy    *Envoy       `yaml:"envoy"` // optional: the tile's Envoy connection (envoy.go)
	PMS      *PMS         `yaml:"pms"`   // optional: the scheduled roster pull (pms.go)
}

// Connection is one access-system connection of a property.
type Connection struct {
	System string `yaml:"system"`
	// Name tells two connections of the same system apart; default: the
	// system. The connection's id is "<property id>.<name>".
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Openpath: the service account and, optionally, the organisation.
	Org          string `yaml:"org"`
	Email        string `yaml:"email"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// Kisi: the organisation's API key and, optionally, the places whose
	// locks the connection shows (default: every place of the key's
	// organisation).
	APIKeyEnv  string  `yaml:"api_key_env"`
	APIKeyFile string  `yaml:"api_key_file"`
	Places     []int64 `yaml:"places"`

	// Inline secrets are refused, with a message saying where they go.
	InlinePassword string `yaml:"password"`
	InlineAPIKey   string `yaml:"api_key"`

	// Secret is the password (Openpath) or API key (Kisi), read by Load
	// from the environment or the file the connection names.
	Secret string `yaml:"-"`
}

// ID is the connection's id within the deployment.
func (c Connection) ID(p Property) string { return p.ID + "." + c.Name }

// String shows the connection without its secret.
func (c Connection) String() string { return c.System + " " + c.URL }

// File is a properties file.
type File struct {
	Properties []Property `yaml:"properties"`
}

// Default returns the default property: the one that says so, or the
// first.
func (f File) Default() Property {
	for _, p := range f.Properties {
		if p.Default {
			return p
		}
	}
	return f.Properties[0]
}

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	namePattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	envPattern  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Lookup reads an environment variable (os.LookupEnv in production).
type Lookup func(name string) (string, bool)

// Load reads and checks the properties file at path, and reads each
// connection's secret.
func Load(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("properties file: %w", err)
	}
	f, err := Parse(data, os.LookupEnv, os.ReadFile)
	if err != nil {
		return File{}, fmt.Errorf("properties file %s: %w", path, err)
	}
	return f, nil
}

// Parse is Load on data, with env and readFile for the secrets.
func Parse(data []byte, env Lookup, readFile func(string) ([]byte, error)) (File, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silent default
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return File{}, errors.New("empty: want a list under properties:")
		}
		return File{}, err
	}
	if len(f.Properties) == 0 {
		return File{}, errors.New("properties: name at least one property")
	}
	ids := map[string]bool{}
	defaults := 0
	for i := range f.Properties {
		p := &f.Properties[i]
		at := fmt.Sprintf("properties[%d]", i)
		if !idPattern.MatchString(p.ID) {
			return File{}, fmt.Errorf("%s.id: %q: want 1 to 63 of a-z, 0-9 and -", at, p.ID)
		}
		at = fmt.Sprintf("property %s", p.ID)
		if ids[p.ID] {
			return File{}, fmt.Errorf("%s: the id is used twice", at)
		}
		ids[p.ID] = true
		if p.Name == "" {
			p.Name = p.ID
		}
		if p.TimeZone != "" {
			if _, err := time.LoadLocation(p.TimeZone); err != nil {
				return File{}, fmt.Errorf("%s: timezone %q: %w", at, p.TimeZone, err)
			}
		}
		if p.Default {
			defaults++
		}
		if len(p.Access) == 0 {
			return File{}, fmt.Errorf("%s: access: name at least one access-system connection", at)
		}
		names := map[string]bool{}
		for j := range p.Access {
			if err := checkConnection(&p.Access[j], names, env, readFile); err != nil {
				return File{}, fmt.Errorf("%s: access[%d]: %w", at, j, err)
			}
		}
		if p.Envoy != nil {
			if err := checkEnvoy(p.Envoy, env, readFile); err != nil {
				return File{}, fmt.Errorf("%s: %w", at, err)
			}
		}
		if err := checkPMS(p.PMS, env, readFile); err != nil {
			return File{}, fmt.Errorf("%s: pms.%w", at, err)
		}
	}
	if defaults > 1 {
		return File{}, errors.New("more than one property says default: true")
	}
	if err := checkEnvoyLocations(f.Properties); err != nil {
		return File{}, err
	}
	return f, nil
}

func checkConnection(c *Connection, names map[string]bool, env Lookup, readFile func(string) ([]byte, error)) error {
	switch c.System {
	case Openpath, Kisi:
	case "":
		return errors.New("system: name the access system (openpath or kisi)")
	default:
		return fmt.Errorf("system: %q is not supported (openpath or kisi)", c.System)
	}
	if c.InlinePassword != "" || c.InlineAPIKey != "" {
		c.InlinePassword, c.InlineAPIKey = "", ""
		return errors.New("secrets are never inline: name an environment variable (password_env, api_key_env) or a file (password_file, api_key_file)")
	}
	if c.Name == "" {
		c.Name = c.System
	}
	if !namePattern.MatchString(c.Name) {
		return fmt.Errorf("name: %q: want 1 to 32 of a-z, 0-9 and -", c.Name)
	}
	if names[c.Name] {
		return fmt.Errorf("name: %q is used twice in the property; give each connection of the same system its own name", c.Name)
	}
	names[c.Name] = true
	if !strings.HasPrefix(c.URL, "https://") && !strings.HasPrefix(c.URL, "http://") {
		return fmt.Errorf("url: %q: want an http(s) URL", c.URL)
	}
	var what, fromEnv, fromFile string
	switch c.System {
	case Openpath:
		if c.Email == "" {
			return errors.New("email: the service account's email is required for openpath")
		}
		if c.APIKeyEnv != "" || c.APIKeyFile != "" || len(c.Places) > 0 {
			return errors.New("api_key_env, api_key_file and places are for kisi connections")
		}
		what, fromEnv, fromFile = "password", c.PasswordEnv, c.PasswordFile
	case Kisi:
		if c.Email != "" || c.Org != "" || c.PasswordEnv != "" || c.PasswordFile != "" {
			return errors.New("email, org, password_env and password_file are for openpath connections; kisi takes api_key_env or api_key_file")
		}
		what, fromEnv, fromFile = "api_key", c.APIKeyEnv, c.APIKeyFile
		if slices.ContainsFunc(c.Places, func(id int64) bool { return id <= 0 }) {
			return errors.New("places: want positive Kisi place ids")
		}
	}
	secret, err := readSecret(what, fromEnv, fromFile, env, readFile)
	if err != nil {
		return err
	}
	c.Secret = secret
	return nil
}

// oauthClient is an OAuth or API-key client as the properties file's
// pms: and envoy: blocks give it: a client id inline (it is not a secret)
// or from the environment or a file, and a secret from the environment
// or a file, never inline.
type oauthClient struct {
	idName                string // what the id is, for the error: "OAuth client id"
	inlineSecret          string
	id, idEnv, idFile     string
	secretEnv, secretFile string
}

// read returns the client id and secret, or an error naming the field
// (never a value).
func (c oauthClient) read(env Lookup, readFile func(string) ([]byte, error)) (id, secret string, err error) {
	if c.inlineSecret != "" {
		return "", "", errors.New("client_secret: secrets are never inline: name an environment variable (client_secret_env) or a file (client_secret_file)")
	}
	switch n := countSet(c.id, c.idEnv, c.idFile); {
	case n > 1:
		return "", "", errors.New("client_id, client_id_env and client_id_file: give one")
	case n == 0:
		return "", "", fmt.Errorf("client_id: the %s is required (client_id, client_id_env or client_id_file)", c.idName)
	case c.id != "":
		id = strings.TrimSpace(c.id)
	default:
		if id, err = readSecret("client_id", c.idEnv, c.idFile, env, readFile); err != nil {
			return "", "", err
		}
	}
	if secret, err = readSecret("client_secret", c.secretEnv, c.secretFile, env, readFile); err != nil {
		return "", "", err
	}
	return id, secret, nil
}

func countSet(vs ...string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

// readSecret reads a secret from the environment variable or the file
// named, exactly one of them. Errors name the variable or file, never the
// value.
func readSecret(what, fromEnv, fromFile string, env Lookup, readFile func(string) ([]byte, error)) (string, error) {
	switch {
	case fromEnv != "" && fromFile != "":
		return "", fmt.Errorf("%s_env and %s_file: give one", what, what)
	case fromEnv != "":
		if !envPattern.MatchString(fromEnv) {
			return "", fmt.Errorf("%s_env: %q is not an environment variable name", what, fromEnv)
		}
		v, ok := env(fromEnv)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("%s_env: %s is not set", what, fromEnv)
		}
		return strings.TrimSpace(v), nil
	case fromFile != "":
		b, err := readFile(fromFile)
		if err != nil {
			return "", fmt.Errorf("%s_file: %w", what, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s_file: %s is empty", what, fromFile)
		}
		return v, nil
	}
	return "", fmt.Errorf("%s_env or %s_file: the secret is required, and never inline", what, what)
}
