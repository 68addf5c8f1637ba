package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/mail"
	"strings"
	"testing"
	"time"
)

// FuzzCanonicalEmail: an accepted email is its input trimmed with its
// ASCII letters lower-cased and nothing else; the output's ASCII bytes only
// come from the input's ASCII bytes (a look-alike such as İ, the Kelvin
// sign or ſ never becomes i, k or s, so it never names an ASCII account);
// it is a bare address that parses back to itself, and canonicalising it
// again changes nothing.
func FuzzCanonicalEmail(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CanonicalEmail(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidEmail) || out != "" {
				t.Fatalf("CanonicalEmail(%q) = %q, %v; want \"\" and ErrInvalidEmail", in, out, err)
			}
			return
		}
		// Byte for byte: a non-ASCII byte is copied, an ASCII byte is
		// itself or its lower case. So no ASCII byte comes from a
		// non-ASCII character.
		trimmed := strings.TrimSpace(in)
		if len(out) != len(trimmed) {
			t.Fatalf("CanonicalEmail(%q) = %q: %d bytes from %d", in, out, len(out), len(trimmed))
		}
		for i := range len(out) {
			o, c := out[i], trimmed[i]
			if c >= 0x80 && o != c {
				t.Fatalf("CanonicalEmail(%q) = %q: non-ASCII byte %d changed from %#x to %#x", in, out, i, c, o)
			}
			if c < 0x80 && o != c && !('A' <= c && c <= 'Z' && o == c+'a'-'A') {
				t.Fatalf("CanonicalEmail(%q) = %q: byte %d %q became %q, not its lower case", in, out, i, c, o)
			}
		}
		if isASCII(out) != isASCII(trimmed) {
			t.Fatalf("CanonicalEmail(%q) = %q: a non-ASCII address became an ASCII one", in, out)
		}
		if out == "" || len(out) > 254 || FoldEmail(out) != out || strings.TrimSpace(out) != out {
			t.Fatalf("CanonicalEmail(%q) = %q: not a trimmed lower-case address of 1 to 254 bytes", in, out)
		}
		if a, err := mail.ParseAddress(out); err != nil || a.Address != out || a.Name != "" {
			t.Fatalf("CanonicalEmail(%q) = %q, which parses as %+v, %v", in, out, a, err)
		}
		if at := strings.LastIndexByte(out, '@'); at <= 0 || at == len(out)-1 {
			t.Fatalf("CanonicalEmail(%q) = %q: no local part or domain", in, out)
		}
		if again, err := CanonicalEmail(out); err != nil || again != out {
			t.Fatalf("CanonicalEmail(%q) = %q, %v: not idempotent (first %q)", out, again, err, out)
		}
		// ASCII case never matters: the address with its ASCII letters
		// upper-cased is the same person.
		if up, err := CanonicalEmail(asciiUpper(in)); err != nil || up != out {
			t.Fatalf("CanonicalEmail(%q) = %q, %v; want %q as for %q", asciiUpper(in), up, err, out, in)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// fuzzKey signs the seed tokens in testdata/fuzz/FuzzVerify (their exp is
// in 2100, so they stay valid).
const fuzzKey = "cloudkey-fuzz-key-0123456789abcdef"

// FuzzVerify: no string makes Verify panic, and a token is accepted only
// when it is an HS256 JWS whose signature is the HMAC of its first two
// segments under the key, unexpired, with a canonical email; the same
// token never verifies under another key.
func FuzzVerify(f *testing.F) {
	h, err := NewHS256(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	other, _ := NewHS256(fuzzKey + "-other")
	if tok, err := h.Sign("Seed@Example.com", time.Hour); err == nil {
		f.Add(tok) // one that is valid now, whatever the date
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := h.Verify(tok)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) || c.Email != "" || !c.ExpiresAt.IsZero() || c.Properties != nil {
				t.Fatalf("Verify(%q) = %+v, %v; want zero claims and ErrInvalidToken", tok, c, err)
			}
			return
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("Verify accepted %q with %d segments", tok, len(parts))
		}
		var hdr struct {
			Alg string `json:"alg"`
		}
		if raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "=")); err != nil || json.Unmarshal(raw, &hdr) != nil || hdr.Alg != "HS256" {
			t.Fatalf("Verify accepted %q whose header is not HS256 (%q)", tok, hdr.Alg)
		}
		sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
		mac := hmac.New(sha256.New, []byte(fuzzKey))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("Verify accepted %q, which is not signed with the key", tok)
		}
		if _, err := other.Verify(tok); err == nil {
			t.Fatalf("another key verified %q", tok)
		}
		if e, err := CanonicalEmail(c.Email); err != nil || e != c.Email {
			t.Fatalf("Verify(%q) email %q is not canonical", tok, c.Email)
		}
		if c.ExpiresAt.IsZero() || time.Until(c.ExpiresAt) < -time.Minute {
			t.Fatalf("Verify(%q) accepted an expired token (exp %v)", tok, c.ExpiresAt)
		}
	})
}

// FuzzSignVerify: whatever email Sign accepts comes back from Verify as
// its canonical form.
func FuzzSignVerify(f *testing.F) {
	h, err := NewHS256(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, email string) {
		tok, err := h.Sign(email, time.Hour)
		want, cerr := CanonicalEmail(email)
		if (err != nil) != (cerr != nil) {
			t.Fatalf("Sign(%q) err = %v but CanonicalEmail err = %v", email, err, cerr)
		}
		if err != nil {
			return
		}
		c, err := h.Verify(tok)
		if err != nil || c.Email != want {
			t.Fatalf("Verify(Sign(%q)) = %+v, %v; want email %q", email, c, err, want)
		}
	})
}
