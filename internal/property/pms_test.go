package property

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withPMS is a one-property file whose pms block is block (indented as
// given, one key a line).
func withPMS(block string) string {
	return "properties:\n  - id: hv\n    access: [{system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}]\n    pms:\n      " +
		strings.ReplaceAll(strings.TrimSpace(block), "\n", "\n      ") + "\n"
}

func pmsEnv(name string) (string, bool) {
	v, ok := map[string]string{"BD_ID": "client-1", "BD_SECRET": "bd-secret-value", "BLANK": "  "}[name]
	return v, ok
}

// A pms block parses with its defaults filled and its secret read from
// where it is named; without one a property has none.
func TestParsePMS(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "bd-secret")
	if err := os.WriteFile(secretFile, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, block string
		want        PMS
	}{
		{"defaults", "system: buildium\nclient_id: abc\nclient_secret_env: BD_SECRET\nproperty_ids: [5001]",
			PMS{System: Buildium, URL: DefaultBuildiumURL, ClientID: "abc", ClientSecret: "bd-secret-value", PropertyIDs: []int32{5001}, Every: time.Hour}},
		{"all set", "system: buildium\nurl: http://127.0.0.1:9/\nclient_id_env: BD_ID\nclient_secret_file: " + secretFile + "\nproperty_ids: [5001, 5002]\nevery: 15m",
			PMS{System: Buildium, URL: "http://127.0.0.1:9", ClientID: "client-1", ClientSecret: "file-secret", PropertyIDs: []int32{5001, 5002}, Every: 15 * time.Minute}},
		{"the minimum interval", "system: buildium\nclient_id: abc\nclient_secret_env: BD_SECRET\nproperty_ids: [1]\nevery: 5m",
			PMS{System: Buildium, URL: DefaultBuildiumURL, ClientID: "abc", ClientSecret: "bd-secret-value", PropertyIDs: []int32{1}, Every: 5 * time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse([]byte(withPMS(tt.block)), func(n string) (string, bool) {
				if n == "HV_OPENPATH_PASSWORD" {
					return "k", true
				}
				return pmsEnv(n)
			}, os.ReadFile)
			if err != nil {
				t.Fatal(err)
			}
			got := f.Properties[0].PMS
			if got == nil {
				t.Fatal("no pms block")
			}
			got.ClientIDEnv, got.ClientIDFile, got.ClientSecretEnv, got.ClientSecretFile = "", "", "", ""
			if !got.Equal(&tt.want) {
				t.Errorf("pms = %+v\nwant %+v", *got, tt.want)
			}
			if s := got.String(); strings.Contains(s, got.ClientSecret) {
				t.Errorf("String shows the secret: %s", s)
			}
		})
	}
	f, err := Parse([]byte("properties:\n  - id: hv\n    access: [{system: kisi, url: 'https://k', api_key_env: HV_OPENPATH_PASSWORD}]\n"), env, os.ReadFile)
	if err != nil || f.Properties[0].PMS != nil {
		t.Errorf("a property without a pms block: %+v, %v", f.Properties[0].PMS, err)
	}
}

// Every bad pms block is refused naming the property and the field, and
// no error shows a secret.
func TestParsePMSRefuses(t *testing.T) {
	const ok = "system: buildium\nclient_id: abc\nclient_secret_env: BD_SECRET\nproperty_ids: [5001]"
	set := func(line string) string { // ok with one key replaced or added
		key := strings.SplitN(line, ":", 2)[0]
		var out []string
		for _, l := range strings.Split(ok, "\n") {
			if !strings.HasPrefix(l, key+":") {
				out = append(out, l)
			}
		}
		if !strings.HasSuffix(line, ":") {
			out = append(out, line)
		}
		return strings.Join(out, "\n")
	}
	tests := []struct{ name, block, want string }{
		{"no system", set("system:"), "pms.system: name the property-management system"},
		{"other system", set("system: yardi"), `pms.system: "yardi" is not supported`},
		{"inline secret", set("client_secret: bd-secret-value"), "pms.client_secret: secrets are never inline"},
		{"bad url", set("url: ftp://buildium"), "pms.url"},
		{"no client id", set("client_id:"), "pms.client_id: the API key's client id is required"},
		{"two client ids", set("client_id_env: BD_ID"), "pms.client_id, client_id_env and client_id_file: give one"},
		{"client id env unset", set("client_id:") + "\nclient_id_env: NOPE", "pms.client_id_env: NOPE is not set"},
		{"no secret", set("client_secret_env:"), "pms.client_secret_env or client_secret_file"},
		{"blank secret", set("client_secret_env: BLANK"), "pms.client_secret_env: BLANK is not set"},
		{"both secrets", set("client_secret_file: /f"), "pms.client_secret_env and client_secret_file: give one"},
		{"secret file missing", set("client_secret_env:") + "\nclient_secret_file: /nonexistent/bd", "pms.client_secret_file"},
		{"no property ids", set("property_ids:"), "pms.property_ids: name at least one"},
		{"empty property ids", set("property_ids: []"), "pms.property_ids: name at least one"},
		{"zero property id", set("property_ids: [0]"), "pms.property_ids: 0 is not"},
		{"duplicate property id", set("property_ids: [7, 7]"), "pms.property_ids: 7 is named twice"},
		{"too often", set("every: 1m"), "pms.every: 1m0s is more often than every 5m0s"},
		{"not a duration", set("every: hourly"), "cannot unmarshal !!str `hourly` into time.Duration"},
		{"unknown key", set("colour: red"), "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(withPMS(tt.block)), func(n string) (string, bool) {
				if n == "HV_OPENPATH_PASSWORD" {
					return "k", true
				}
				return pmsEnv(n)
			}, os.ReadFile)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to say %q", err, tt.want)
			}
			if strings.Contains(tt.want, "pms.") && !strings.Contains(err.Error(), "property hv: ") {
				t.Errorf("err = %v: want it to name the property", err)
			}
			if strings.Contains(err.Error(), "bd-secret-value") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestPMSEqual(t *testing.T) {
	a := &PMS{System: Buildium, URL: "u", ClientID: "i", ClientSecret: "s", PropertyIDs: []int32{1}, Every: time.Hour}
	for _, tt := range []struct {
		name string
		b    *PMS
		want bool
	}{
		{"same", &PMS{System: Buildium, URL: "u", ClientID: "i", ClientSecret: "s", PropertyIDs: []int32{1}, Every: time.Hour, ClientSecretEnv: "X"}, true},
		{"nil", nil, false},
		{"secret", &PMS{System: Buildium, URL: "u", ClientID: "i", ClientSecret: "t", PropertyIDs: []int32{1}, Every: time.Hour}, false},
		{"ids", &PMS{System: Buildium, URL: "u", ClientID: "i", ClientSecret: "s", PropertyIDs: []int32{1, 2}, Every: time.Hour}, false},
		{"every", &PMS{System: Buildium, URL: "u", ClientID: "i", ClientSecret: "s", PropertyIDs: []int32{1}, Every: 2 * time.Hour}, false},
	} {
		if got := a.Equal(tt.b); got != tt.want {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.want)
		}
	}
	var none *PMS
	if !none.Equal(nil) {
		t.Error("two nil blocks differ")
	}
}
