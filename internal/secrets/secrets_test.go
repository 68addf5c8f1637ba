package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// spec returns a key entry of id whose 32 key bytes are all b.
func spec(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, KeySize))
}

func mustParse(t *testing.T, s string) *Keyring {
	t.Helper()
	r, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpen(t *testing.T) {
	old := mustParse(t, spec("k1", 1))
	rotated := mustParse(t, spec("k2", 2)+","+spec("k1", 1))
	onlyNew := mustParse(t, spec("k2", 2))
	sameIDOtherKey := mustParse(t, spec("k1", 9))
	tamper := func(s string) string { // flips a bit of the ciphertext
		raw, _ := base64.RawURLEncoding.DecodeString(s[strings.LastIndex(s, ".")+1:])
		raw[len(raw)-1] ^= 1
		return s[:strings.LastIndex(s, ".")+1] + base64.RawURLEncoding.EncodeToString(raw)
	}
	tests := []struct {
		name      string
		seal      *Keyring
		open      *Keyring
		aad       string
		change    func(string) string
		wantErr   error
		wantInErr string
	}{
		{name: "round trip", seal: old, open: old, aad: "a"},
		{name: "empty aad", seal: old, open: old},
		{name: "wrong aad", seal: old, open: old, aad: "b", wantErr: ErrAuth},
		{name: "tampered ciphertext", seal: old, open: old, aad: "a", change: tamper, wantErr: ErrAuth},
		{name: "truncated", seal: old, open: old, aad: "a", change: func(s string) string { return s[:len(s)-20] }, wantErr: ErrAuth},
		{name: "too short", seal: old, open: old, aad: "a", change: func(s string) string { return "v1.k1.AAAA" }, wantErr: ErrMalformed},
		{name: "not base64", seal: old, open: old, aad: "a", change: func(s string) string { return s + "!" }, wantErr: ErrMalformed},
		{name: "other version", seal: old, open: old, aad: "a", change: func(s string) string { return "v2" + s[2:] }, wantErr: ErrMalformed},
		{name: "key id changed", seal: old, open: rotated, aad: "a", change: func(s string) string { return strings.Replace(s, "v1.k1.", "v1.k2.", 1) }, wantErr: ErrAuth},
		{name: "unknown key id", seal: old, open: onlyNew, aad: "a", wantErr: ErrUnknownKey, wantInErr: `"k1"`},
		{name: "same id, other key", seal: old, open: sameIDOtherKey, aad: "a", wantErr: ErrAuth},
		{name: "rotation: old primary opens with the new ring", seal: old, open: rotated, aad: "a"},
		{name: "rotation: new primary opens with the new ring", seal: rotated, open: rotated, aad: "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain := []byte("s3cret-login-value")
			aad := []byte("a")
			if tt.aad == "" {
				aad = nil
			}
			sealed, err := tt.seal.Seal(plain, aad)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(sealed, "v1."+tt.seal.Primary()+".") || strings.Contains(sealed, string(plain)) {
				t.Fatalf("sealed %q", sealed)
			}
			if KeyID(sealed) != tt.seal.Primary() {
				t.Errorf("KeyID %q, want %q", KeyID(sealed), tt.seal.Primary())
			}
			if tt.change != nil {
				sealed = tt.change(sealed)
			}
			got, err := tt.open.Open(sealed, []byte(tt.aad))
			if tt.wantErr == nil {
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Open = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Open error %v, want %v containing %q", err, tt.wantErr, tt.wantInErr)
			}
			if got != nil {
				t.Errorf("Open returned %q with an error", got)
			}
		})
	}
}

// Two seals of one plaintext differ (random nonces).
func TestSealNonce(t *testing.T) {
	r := Development()
	a, _ := r.Seal([]byte("x"), nil)
	b, _ := r.Seal([]byte("x"), nil)
	if a == b {
		t.Fatal("two seals are equal")
	}
}

func TestKeyID(t *testing.T) {
	for in, want := range map[string]string{
		"v1.k1.abc": "k1", "v1.k_-9.x": "k_-9", "": "", "v1.k1": "", "v1..abc": "", "v2.k1.abc": "", "v1.k!.abc": "",
	} {
		if got := KeyID(in); got != want {
			t.Errorf("KeyID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, KeySize))
	urlKey := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, KeySize))
	short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	tests := []struct {
		spec    string
		wantIDs string // "" for an error
		wantErr string
	}{
		{spec: "a:" + key, wantIDs: "a"},
		{spec: " new:" + urlKey + " , old_1:" + key, wantIDs: "new old_1"},
		{spec: "A-b_9:" + strings.TrimRight(key, "="), wantIDs: "A-b_9"},
		{spec: strings.Repeat("x", 32) + ":" + key, wantIDs: strings.Repeat("x", 32)},
		{spec: "", wantErr: "key spec is empty"},
		{spec: "a:" + key + ",", wantErr: "entry 2 is empty"},
		{spec: key, wantErr: "entry 1: want id:base64key"},
		{spec: ":" + key, wantErr: "entry 1: the id must be"},
		{spec: "a.b:" + key, wantErr: "entry 1: the id must be"},
		{spec: strings.Repeat("x", 33) + ":" + key, wantErr: "entry 1: the id must be"},
		{spec: "a:" + key + ",a:" + urlKey, wantErr: `entry 2: id "a" is used twice`},
		{spec: "a:" + key + ",b:not*base64", wantErr: `entry 2 (id "b"): the key is not base64`},
		{spec: "a:" + short, wantErr: `entry 1 (id "a"): the key is 16 bytes, want 32`},
	}
	for _, tt := range tests {
		r, err := Parse(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %v, want error %q", tt.spec, err, tt.wantErr)
			}
			if err != nil {
				for _, secret := range []string{key, urlKey, short, "not*base64", strings.TrimRight(key, "=")} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("Parse(%q) error shows key material: %v", tt.spec, err)
					}
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.spec, err)
			continue
		}
		if got := strings.Join(r.IDs(), " "); got != tt.wantIDs || r.Primary() != strings.Fields(tt.wantIDs)[0] {
			t.Errorf("Parse(%q) ids %q primary %q, want %q", tt.spec, got, r.Primary(), tt.wantIDs)
		}
		if r.Development() {
			t.Errorf("Parse(%q) is the development key", tt.spec)
		}
	}
}

func TestDevelopment(t *testing.T) {
	d := Development()
	if !d.Development() || d.Primary() != DevelopmentKeyID {
		t.Fatalf("Development: %v %q", d.Development(), d.Primary())
	}
	// The documented key, given explicitly, is the development key too.
	explicit := mustParse(t, "dev:"+base64.StdEncoding.EncodeToString([]byte("cloudkey-development-secrets-key")))
	if !explicit.Development() {
		t.Error("the documented development key is not recognised")
	}
	s, _ := d.Seal([]byte("x"), nil)
	if got, err := explicit.Open(s, nil); err != nil || string(got) != "x" {
		t.Errorf("Open = %q, %v", got, err)
	}
	// A real key first, the development key after it: not development.
	if mustParse(t, spec("k1", 1)+",dev:"+base64.StdEncoding.EncodeToString(developmentKey)).Development() {
		t.Error("a ring whose primary is a real key reports Development")
	}
}

func TestNewKeySpec(t *testing.T) {
	a, err := NewKeySpec("k2026")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKeySpec("k2026")
	if a == b || !strings.HasPrefix(a, "k2026:") {
		t.Fatalf("NewKeySpec: %q %q", a, b)
	}
	r := mustParse(t, a+","+spec("old", 1))
	if r.Primary() != "k2026" {
		t.Errorf("primary %q", r.Primary())
	}
	for _, bad := range []string{"", "a b", "x.y", strings.Repeat("x", 33)} {
		if _, err := NewKeySpec(bad); err == nil {
			t.Errorf("NewKeySpec(%q) accepted", bad)
		}
	}
}

// No output of a Keyring shows key material: fmt verbs, slog (text and
// JSON), encoding/json, by pointer and by value, alone and in a struct.
func TestNoKeyMaterialInOutput(t *testing.T) {
	raw1, raw2 := bytes.Repeat([]byte{0x41}, KeySize), bytes.Repeat([]byte{0x42}, KeySize)
	r := mustParse(t, "k1:"+base64.StdEncoding.EncodeToString(raw1)+",k2:"+base64.URLEncoding.EncodeToString(raw2))
	type holder struct {
		Keys  *Keyring
		Value Keyring
	}
	var outs []string
	for _, v := range []any{r, *r, holder{r, *r}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j))
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "keys", v)
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "keys", v)
		outs = append(outs, buf.String())
	}
	forbidden := []string{
		string(raw1), string(raw2), "AAAA", "BBBB", "QUFB", "QkJC", // the raw bytes, their hex... and base64
		fmt.Sprintf("%x", raw1[:8]), fmt.Sprintf("%x", raw2[:8]), fmt.Sprint(raw1[:4]), "65 65 65",
	}
	for _, out := range outs {
		if !strings.Contains(out, "k1") && !strings.Contains(out, "6b31") {
			t.Errorf("output lacks the key id: %s", out)
		}
		for _, f := range forbidden {
			if strings.Contains(out, f) {
				t.Errorf("output shows key material %q: %s", f, out)
			}
		}
	}
	if got := fmt.Sprint(r); got != "secrets.Keyring[k1, k2]" {
		t.Errorf("String = %q", got)
	}
	if j, _ := json.Marshal(r); string(j) != `{"primary":"k1","keys":["k1","k2"]}` {
		t.Errorf("JSON = %s", j)
	}
}
