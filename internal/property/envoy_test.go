package property

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const envoyExample = `
properties:
  - id: harbor-view
    access:
      - system: openpath
        url: https://api.openpath.com
        email: envoy-bot@harbor.example
        password_env: HV_OPENPATH_PASSWORD
    envoy:
      url: https://envoy.example
      client_id_file: IDFILE
      client_secret_env: HV_ENVOY_SECRET
      locations: ["152347", " 152348 "]
`

func envoyEnv(name string) (string, bool) {
	v, ok := map[string]string{"HV_OPENPATH_PASSWORD": "op-pass", "HV_ENVOY_SECRET": "envoy-pass\n"}[name]
	return v, ok
}

// The envoy block parses: the client id from its file, the secret from
// the environment, the locations trimmed; String shows no secret.
func TestParseEnvoy(t *testing.T) {
	idFile := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(idFile, []byte("client-7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse([]byte(strings.Replace(envoyExample, "IDFILE", idFile, 1)), envoyEnv, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	e := f.Default().Envoy
	if e == nil || e.ClientID != "client-7" || e.Secret != "envoy-pass" || e.BaseURL() != "https://envoy.example" {
		t.Fatalf("envoy = %+v", e)
	}
	if !e.Serves("152348") || !e.Serves("152347") || e.Serves("999") || e.Serves("") {
		t.Errorf("Serves: locations = %q", e.Locations)
	}
	if strings.Contains(e.String(), "envoy-pass") {
		t.Errorf("String shows the secret: %s", e)
	}
	var none *Envoy
	if none.Serves("152347") {
		t.Error("a property without an envoy block serves a location")
	}
}

// Every bad envoy block is refused naming the field, and no error shows
// the secret.
func TestParseEnvoyRefused(t *testing.T) {
	const head = `
properties:
  - id: harbor-view
    access:
      - system: openpath
        url: https://api.openpath.com
        email: bot@harbor.example
        password_env: HV_OPENPATH_PASSWORD
`
	tests := []struct {
		name, envoy, want string
	}{
		{"inline secret", "client_id: c\n      client_secret: envoy-pass\n      locations: [\"1\"]", "envoy.client_secret: secrets are never inline"},
		{"no secret", "client_id: c\n      locations: [\"1\"]", "envoy.client_secret_env or client_secret_file"},
		{"unset env", "client_id: c\n      client_secret_env: NOPE\n      locations: [\"1\"]", "envoy.client_secret_env: NOPE is not set"},
		{"no client id", "client_secret_env: HV_ENVOY_SECRET\n      locations: [\"1\"]", "envoy.client_id: the OAuth client id is required"},
		{"id twice", "client_id: c\n      client_id_env: HV_ENVOY_SECRET\n      client_secret_env: HV_ENVOY_SECRET\n      locations: [\"1\"]", "envoy.client_id, client_id_env and client_id_file: give one"},
		{"no location", "client_id: c\n      client_secret_env: HV_ENVOY_SECRET", "envoy.locations: name the Envoy location ids"},
		{"bad location", "client_id: c\n      client_secret_env: HV_ENVOY_SECRET\n      locations: [\"a b\"]", `envoy.locations: [0] "a b" is not an Envoy location id`},
		{"location twice", "client_id: c\n      client_secret_env: HV_ENVOY_SECRET\n      locations: [\"1\", \"1\"]", "envoy.locations: 1 is named twice"},
		{"bad url", "url: ftp://envoy\n      client_id: c\n      client_secret_env: HV_ENVOY_SECRET\n      locations: [\"1\"]", `envoy.url: "ftp://envoy": want an http(s) URL`},
		{"misspelt key", "client_idd: c", "field client_idd not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(head+"    envoy:\n      "+tc.envoy+"\n"), envoyEnv, os.ReadFile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "envoy-pass") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// One Envoy location served by two properties is refused: a tile
// registration there would not know whose Envoy account to use.
func TestParseEnvoyLocationOnce(t *testing.T) {
	const file = `
properties:
  - id: a
    access: [{system: openpath, url: "https://op", email: b@x.example, password_env: HV_OPENPATH_PASSWORD}]
    envoy: {client_id: c, client_secret_env: HV_ENVOY_SECRET, locations: ["7"]}
  - id: b
    access: [{system: openpath, url: "https://op", email: b@x.example, password_env: HV_OPENPATH_PASSWORD}]
    envoy: {client_id: d, client_secret_env: HV_ENVOY_SECRET, locations: ["8", "7"]}
`
	_, err := Parse([]byte(file), envoyEnv, os.ReadFile)
	if err == nil || !strings.Contains(err.Error(), "property b: envoy.locations: 7 is served by property a too") {
		t.Fatalf("err = %v", err)
	}
}
