package identity

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

type strictCase struct {
	name           string
	header, claims string // JSON
	ok             bool
}

// strictCases are tokens' header and claims JSON that the JWT libraries
// would accept and checkJSON refuses; hdr and rest are the header's and
// the claims' other members (the alg, the issuer...), exp a valid expiry.
func strictCases(hdr, rest string, exp int64) []strictCase {
	e := fmt.Sprintf(`"exp":%d`, exp)
	h := `{` + hdr + `}`
	c := func(members ...string) string { return `{` + strings.Join(append(members, rest), ",") + `}` }
	return []strictCase{
		{"valid", h, c(`"email":"alice@example.com"`, e), true},
		{"exp as a string", h, c(`"email":"alice@example.com"`, `"exp":"9999999999"`), false},
		{"exp as a string, the right number", h, c(`"email":"alice@example.com"`, fmt.Sprintf(`"exp":"%d"`, exp)), false},
		{"nbf as a string", h, c(`"email":"alice@example.com"`, e, `"nbf":"0"`), false},
		{"iat as a string", h, c(`"email":"alice@example.com"`, e, `"iat":"0"`), false},
		{"exp null", h, c(`"email":"alice@example.com"`, `"exp":null`), false},
		{"two emails, last wins", h, c(`"email":"alice@example.com"`, `"email":"erin@example.com"`, e), false},
		{"two emails, one escaped", h, c(`"email":"alice@example.com"`, `"\u0065mail":"erin@example.com"`, e), false},
		{"two exps", h, c(`"email":"alice@example.com"`, e, `"exp":9999999999`), false},
		{"two subs", h, c(`"email":"alice@example.com"`, e, `"sub":"a"`, `"sub":"b"`), false},
		{"duplicate inside a claim", h, c(`"email":"alice@example.com"`, e, `"x":{"a":1,"a":2}`), false},
		{"two algs in the header", `{"alg":"none",` + hdr + `}`, c(`"email":"alice@example.com"`, e), false},
		{"invalid UTF-8", h, c("\"email\":\"alice@example.com\"", e, "\"name\":\"\xff\""), false},
		{"a second object after the claims", h, c(`"email":"alice@example.com"`, e) + `{"email":"erin@example.com"}`, false},
		{"claims not an object", h, `["alice@example.com"]`, false},
	}
}

// signRaw makes a compact JWS of exactly this header and claims JSON.
func signRaw(t *testing.T, header, claims string, sign func(signingInput string) []byte) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	return in + "." + base64.RawURLEncoding.EncodeToString(sign(in))
}

// Strict JSON in HS256 (development) mode, directly and behind the token
// cache: a refused token is refused every time, never cached.
func TestVerifyStrictJSONHS256(t *testing.T) {
	h, _ := NewHS256(DevelopmentSecret)
	hs := func(in string) []byte {
		m := hmac.New(sha256.New, []byte(DevelopmentSecret))
		m.Write([]byte(in))
		return m.Sum(nil)
	}
	for _, tt := range strictCases(`"alg":"HS256","typ":"JWT"`, `"sub":"u1"`, time.Now().Add(time.Hour).Unix()) {
		t.Run(tt.name, func(t *testing.T) {
			tok := signRaw(t, tt.header, tt.claims, hs)
			checkStrict(t, h, NewCachedVerifier(h, 10, time.Minute), tok, tt.ok)
		})
	}
}

// The same in JWKS mode.
func TestVerifyStrictJSONJWKS(t *testing.T) {
	p := newIDP(t)
	rk := p.addRSA("k1")
	v := p.verifier(t, JWKSConfig{})
	rs := func(in string) []byte {
		d := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(rand.Reader, rk, crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	rest := fmt.Sprintf(`"iss":%q,"aud":%q`, testIssuer, testAudience)
	for _, tt := range strictCases(`"alg":"RS256","kid":"k1"`, rest, time.Now().Add(time.Hour).Unix()) {
		t.Run(tt.name, func(t *testing.T) {
			tok := signRaw(t, tt.header, tt.claims, rs)
			checkStrict(t, v, NewCachedVerifier(v, 10, time.Minute), tok, tt.ok)
		})
	}
}

func checkStrict(t *testing.T, v Verifier, cached *CachedVerifier, tok string, ok bool) {
	t.Helper()
	for i, v := range []Verifier{v, cached, cached} {
		c, err := v.Verify(tok)
		if ok {
			if err != nil || c.Email != "alice@example.com" {
				t.Fatalf("verifier %d: Verify = %+v, %v; want alice@example.com", i, c, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidToken) || c.Email != "" || c.Properties != nil {
			t.Fatalf("verifier %d: Verify = %+v, %v; want ErrInvalidToken", i, c, err)
		}
	}
	if !ok && cached.cache.Len() != 0 {
		t.Fatal("a refused token was cached")
	}
}
