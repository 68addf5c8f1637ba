package property

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const example = `
properties:
  - id: harbor-view
    name: Harbor View
    timezone: America/New_York
    access:
      - system: openpath
        url: https://api.openpath.com
        org: "1234"
        email: envoy-bot@harbor.example
        password_env: HV_OPENPATH_PASSWORD
      - system: kisi
        url: https://api.kisi.io
        api_key_file: KEYFILE
`

func env(name string) (string, bool) {
	v, ok := map[string]string{"HV_OPENPATH_PASSWORD": "op-pass", "EMPTY": " "}[name]
	return v, ok
}

// PRODUCT.md's example parses, with each secret read from where it is
// named; the first property is the default.
func TestParseExample(t *testing.T) {
	key := filepath.Join(t.TempDir(), "hv-kisi-key")
	if err := os.WriteFile(key, []byte("kisi-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Parse([]byte(strings.Replace(example, "KEYFILE", key, 1)), env, os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	p := f.Default()
	if p.ID != "harbor-view" || p.Name != "Harbor View" || len(p.Access) != 2 {
		t.Fatalf("property = %+v", p)
	}
	op, k := p.Access[0], p.Access[1]
	if op.Secret != "op-pass" || op.Org != "1234" || op.ID(p) != "harbor-view.openpath" {
		t.Errorf("openpath connection = %+v", op)
	}
	if k.Secret != "kisi-key" || k.ID(p) != "harbor-view.kisi" {
		t.Errorf("kisi connection = %+v", k)
	}
	if s := op.String() + k.String(); strings.Contains(s, "op-pass") || strings.Contains(s, "kisi-key") {
		t.Errorf("a connection prints its secret: %s", s)
	}
}

// Every bad file is refused with the place and the reason, and no error
// shows a secret.
func TestParseRefuses(t *testing.T) {
	conn := func(s string) string {
		return "properties:\n  - id: hv\n    access:\n      - " + strings.ReplaceAll(s, "\n", "\n        ") + "\n"
	}
	tests := []struct{ name, yaml, want string }{
		{"empty", "", "empty"},
		{"no properties", "properties: []", "at least one property"},
		{"bad id", "properties:\n  - id: Harbor View\n    access: []", "properties[0].id"},
		{"duplicate id", "properties:\n  - id: a\n    access: [{system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}]\n  - id: a\n    access: [{system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}]", "used twice"},
		{"no access", "properties:\n  - id: a", "at least one access-system connection"},
		{"bad timezone", "properties:\n  - id: a\n    timezone: Mars/Olympus\n    access: [{system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}]", "timezone"},
		{"unknown key", conn("system: kisi\nurl: https://k\napi_key_env: X\ncolour: red"), "colour"},
		{"unknown system", conn("system: salto\nurl: https://k"), "not supported"},
		{"inline password", conn("system: openpath\nurl: https://o\nemail: a@b\npassword: hunter2"), "never inline"},
		{"inline key", conn("system: kisi\nurl: https://k\napi_key: sekrit"), "never inline"},
		{"no secret", conn("system: kisi\nurl: https://k"), "api_key_env or api_key_file"},
		{"both secrets", conn("system: kisi\nurl: https://k\napi_key_env: A\napi_key_file: /f"), "give one"},
		{"unset env", conn("system: kisi\nurl: https://k\napi_key_env: NOT_SET"), "NOT_SET is not set"},
		{"blank env", conn("system: kisi\nurl: https://k\napi_key_env: EMPTY"), "EMPTY is not set"},
		{"missing file", conn("system: kisi\nurl: https://k\napi_key_file: /nonexistent/key"), "api_key_file"},
		{"no url", conn("system: kisi\napi_key_env: HV_OPENPATH_PASSWORD"), "url"},
		{"openpath without email", conn("system: openpath\nurl: https://o\npassword_env: HV_OPENPATH_PASSWORD"), "email"},
		{"kisi with email", conn("system: kisi\nurl: https://k\nemail: a@b\napi_key_env: HV_OPENPATH_PASSWORD"), "for openpath"},
		{"bad place", conn("system: kisi\nurl: https://k\napi_key_env: HV_OPENPATH_PASSWORD\nplaces: [0]"), "places"},
		{"same name twice", "properties:\n  - id: a\n    access:\n      - {system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}\n      - {system: kisi, url: 'https://k2', api_key_env: HV_OPENPATH_PASSWORD}", "own name"},
		{"two defaults", "properties:\n  - id: a\n    default: true\n    access: [{system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}]\n  - id: b\n    default: true\n    access: [{system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}]", "more than one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), env, os.ReadFile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			for _, secret := range []string{"hunter2", "sekrit", "op-pass"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

// Two connections of one system in a property are told apart by name,
// and another property may say it is the default.
func TestParseNamesAndDefault(t *testing.T) {
	f, err := Parse([]byte(`properties:
  - id: a
    access:
      - {system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}
      - {system: kisi, name: annex, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}
  - id: b
    default: true
    access: [{system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}]
`), env, func(string) ([]byte, error) { return nil, errors.New("no files") })
	if err != nil {
		t.Fatal(err)
	}
	a := f.Properties[0]
	if a.Access[0].ID(a) != "a.kisi" || a.Access[1].ID(a) != "a.annex" || f.Default().ID != "b" {
		t.Errorf("ids %s %s, default %s", a.Access[0].ID(a), a.Access[1].ID(a), f.Default().ID)
	}
}
