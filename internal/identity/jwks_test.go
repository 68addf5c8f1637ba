package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

const (
	testIssuer   = "https://id.example.com/"
	testAudience = "cloudkey"
)

// idp is an identity provider publishing a JWKS over real HTTP.
type idp struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]any // kid → private key
	down    bool
	fetches atomic.Int32
}

func newIDP(t *testing.T) *idp {
	p := &idp{t: t, keys: map[string]any{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) serve(w http.ResponseWriter, r *http.Request) {
	p.fetches.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	set := jwk.NewSet()
	for kid, priv := range p.keys {
		var pub any
		switch k := priv.(type) {
		case *rsa.PrivateKey:
			pub = &k.PublicKey
		case *ecdsa.PrivateKey:
			pub = &k.PublicKey
		}
		k, err := jwk.Import(pub)
		if err != nil {
			p.t.Error(err)
			return
		}
		k.Set(jwk.KeyIDKey, kid)
		k.Set(jwk.KeyUsageKey, "sig")
		set.AddKey(k)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(set)
}

func (p *idp) setDown(down bool) { p.mu.Lock(); p.down = down; p.mu.Unlock() }

// addRSA and addEC publish a new key and return its private half.
func (p *idp) addRSA(kid string) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
	return k
}

func (p *idp) addEC(kid string) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
	return k
}

func (p *idp) verifier(t *testing.T, cfg JWKSConfig) *JWKS {
	t.Helper()
	cfg.URL = p.srv.URL
	if cfg.Issuer == "" {
		cfg.Issuer = testIssuer
	}
	if cfg.Audience == "" {
		cfg.Audience = testAudience
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := NewJWKS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// claims are valid for an hour unless changed.
func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": testIssuer, "aud": []string{"other", testAudience}, "sub": "u1",
		"email": " Alice@Example.com", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func signWith(t *testing.T, m jwt.SigningMethod, kid string, c jwt.MapClaims, key any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWKSVerify(t *testing.T) {
	p := newIDP(t)
	rk := p.addRSA("rsa-1")
	ek := p.addEC("ec-1")
	v := p.verifier(t, JWKSConfig{})
	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubDER, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	now := time.Now()
	rs := func(mod func(jwt.MapClaims)) string {
		return signWith(t, jwt.SigningMethodRS256, "rsa-1", claims(mod), rk)
	}

	tests := []struct {
		name, token string
		ok          bool
	}{
		{"RS256", rs(nil), true},
		{"ES256", signWith(t, jwt.SigningMethodES256, "ec-1", claims(nil), ek), true},
		{"aud as a string", rs(func(c jwt.MapClaims) { c["aud"] = testAudience }), true},
		{"expired within leeway", rs(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() }), true},
		{"nbf within leeway", rs(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Second).Unix() }), true},
		{"expired beyond leeway", rs(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() }), false},
		{"nbf in the future", rs(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() }), false},
		{"iat in the future", rs(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() }), false},
		{"no exp", rs(func(c jwt.MapClaims) { delete(c, "exp") }), false},
		{"wrong iss", rs(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com/" }), false},
		{"no iss", rs(func(c jwt.MapClaims) { delete(c, "iss") }), false},
		{"wrong aud", rs(func(c jwt.MapClaims) { c["aud"] = []string{"other"} }), false},
		{"no aud", rs(func(c jwt.MapClaims) { delete(c, "aud") }), false},
		{"no email", rs(func(c jwt.MapClaims) { delete(c, "email") }), false},
		{"bad email", rs(func(c jwt.MapClaims) { c["email"] = "Alice <alice@example.com>" }), false},
		{"alg none", none, false},
		{"HS256 with the public key as secret", signWith(t, jwt.SigningMethodHS256, "rsa-1", claims(nil), pubPEM), false},
		{"HS256 with the public key DER as secret", signWith(t, jwt.SigningMethodHS256, "rsa-1", claims(nil), pubDER), false},
		{"RS512", signWith(t, jwt.SigningMethodRS512, "rsa-1", claims(nil), rk), false},
		{"ES256 naming an RSA key", signWith(t, jwt.SigningMethodES256, "rsa-1", claims(nil), ek), false},
		{"RS256 naming an EC key", signWith(t, jwt.SigningMethodRS256, "ec-1", claims(nil), rk), false},
		{"signed by another key", signWith(t, jwt.SigningMethodRS256, "rsa-1", claims(nil), stranger), false},
		{"no kid with two keys", signWith(t, jwt.SigningMethodRS256, "", claims(nil), rk), false},
		{"tampered", rs(nil)[:len(rs(nil))-4] + "AAAA", false},
		{"garbage", "abc.def.ghi", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.token)
			if !tt.ok {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", c, err)
				}
				return
			}
			if err != nil || c.Email != "alice@example.com" || c.ExpiresAt.IsZero() {
				t.Fatalf("Verify = %+v, %v; want alice@example.com", c, err)
			}
		})
	}
}

func TestJWKSLeewayConfigured(t *testing.T) {
	p := newIDP(t)
	rk := p.addRSA("k")
	expired := signWith(t, jwt.SigningMethodRS256, "k", claims(func(c jwt.MapClaims) {
		c["exp"] = time.Now().Add(-2 * time.Minute).Unix()
	}), rk)
	if _, err := p.verifier(t, JWKSConfig{}).Verify(expired); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("default leeway accepted a token expired 2 minutes ago: %v", err)
	}
	if _, err := p.verifier(t, JWKSConfig{Leeway: 3 * time.Minute}).Verify(expired); err != nil {
		t.Fatalf("3m leeway: %v", err)
	}
	// A single key verifies tokens without kid.
	if _, err := p.verifier(t, JWKSConfig{}).Verify(signWith(t, jwt.SigningMethodRS256, "", claims(nil), rk)); err != nil {
		t.Fatalf("no kid, one key: %v", err)
	}
}

func TestNewJWKSConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  JWKSConfig
		want string
	}{
		{"no URL", JWKSConfig{Issuer: "i", Audience: "a"}, "URL"},
		{"no issuer", JWKSConfig{URL: "http://127.0.0.1:1/", Audience: "a"}, "--token-issuer"},
		{"no audience", JWKSConfig{URL: "http://127.0.0.1:1/", Issuer: "i"}, "--token-audience"},
		{"leeway too long", JWKSConfig{URL: "http://127.0.0.1:1/", Issuer: "i", Audience: "a", Leeway: 6 * time.Minute}, "leeway"},
		{"negative leeway", JWKSConfig{URL: "http://127.0.0.1:1/", Issuer: "i", Audience: "a", Leeway: -time.Second}, "leeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewJWKS(tt.cfg)
			if err == nil {
				v.Close()
				t.Fatal("NewJWKS accepted the configuration")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestJWKSRotation(t *testing.T) {
	p := newIDP(t)
	old := p.addRSA("2026-01")
	v := p.verifier(t, JWKSConfig{MinRefetchInterval: time.Minute})
	clock := time.Now()
	v.now = func() time.Time { return clock }
	if got := p.fetches.Load(); got != 1 {
		t.Fatalf("fetches after start = %d, want 1", got)
	}
	if _, err := v.Verify(signWith(t, jwt.SigningMethodRS256, "2026-01", claims(nil), old)); err != nil {
		t.Fatal(err)
	}

	// A flood of made-up kids within the refetch interval fetches nothing.
	for i := range 50 {
		tok := signWith(t, jwt.SigningMethodRS256, "bogus-"+string(rune('a'+i%26)), claims(nil), old)
		if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("bogus kid: %v", err)
		}
	}
	if got := p.fetches.Load(); got != 1 {
		t.Fatalf("fetches after bogus kids = %d, want 1", got)
	}

	// The provider rotates: the new key is published; a token naming it
	// refetches once (the interval has passed) and is accepted.
	fresh := p.addEC("2026-02")
	tok := signWith(t, jwt.SigningMethodES256, "2026-02", claims(nil), fresh)
	clock = clock.Add(2 * time.Minute)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if got := p.fetches.Load(); got != 2 {
		t.Fatalf("fetches after rotation = %d, want 2", got)
	}
	// Known kids cost no fetch; more bogus kids stay within the budget.
	for range 10 {
		v.Verify(tok)
		v.Verify(signWith(t, jwt.SigningMethodES256, "bogus", claims(nil), fresh))
	}
	if got := p.fetches.Load(); got != 2 {
		t.Fatalf("fetches after more calls = %d, want 2", got)
	}
}

func TestJWKSServerDown(t *testing.T) {
	p := newIDP(t)
	rk := p.addRSA("k1")
	v := p.verifier(t, JWKSConfig{MinRefetchInterval: time.Minute})
	clock := time.Now()
	v.now = func() time.Time { return clock }
	good := signWith(t, jwt.SigningMethodRS256, "k1", claims(nil), rk)

	p.setDown(true)
	if err := v.refetch(); err == nil {
		t.Fatal("refetch from a down JWKS server succeeded")
	}
	// The cached keys still verify.
	if _, err := v.Verify(good); err != nil {
		t.Fatalf("cached key while the JWKS server is down: %v", err)
	}
	// An unknown kid tries again (interval passed), fails, and is refused.
	clock = clock.Add(2 * time.Minute)
	before := p.fetches.Load()
	_, err := v.Verify(signWith(t, jwt.SigningMethodRS256, "k2", claims(nil), rk))
	if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), `"k2"`) {
		t.Fatalf("unknown kid while down: %v", err)
	}
	if p.fetches.Load() != before+1 {
		t.Fatalf("fetches = %d, want %d", p.fetches.Load(), before+1)
	}
	if _, err := v.Verify(good); err != nil {
		t.Fatalf("cached key after a failed refetch: %v", err)
	}
}

func TestJWKSNoKeys(t *testing.T) {
	p := newIDP(t)
	rk := p.addRSA("k1")
	p.setDown(true)
	v := p.verifier(t, JWKSConfig{MinRefetchInterval: time.Minute})
	clock := time.Now()
	v.now = func() time.Time { return clock }
	tok := signWith(t, jwt.SigningMethodRS256, "k1", claims(nil), rk)
	_, err := v.Verify(tok)
	if !errors.Is(err, ErrInvalidToken) || !strings.Contains(err.Error(), "no signing keys") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Verify with no keys: %v; want a clear 'no signing keys' error", err)
	}
	// The server comes back: after the interval the next token fetches.
	p.setDown(false)
	clock = clock.Add(2 * time.Minute)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("after the JWKS server came back: %v", err)
	}
}

func TestJWKSBehindCache(t *testing.T) {
	p := newIDP(t)
	rk := p.addRSA("k1")
	jv := p.verifier(t, JWKSConfig{})
	v := NewCachedVerifier(jv, 100, time.Minute)
	short := signWith(t, jwt.SigningMethodRS256, "k1", claims(func(c jwt.MapClaims) {
		c["exp"] = time.Now().Add(time.Hour).Unix()
	}), rk)
	for range 2 {
		if c, err := v.Verify(short); err != nil || c.Email != "alice@example.com" {
			t.Fatalf("Verify = %+v, %v", c, err)
		}
	}
	// Hits are by exact token: the cache is no way around the signature.
	if _, err := v.Verify(short[:len(short)-4] + "AAAA"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered: %v", err)
	}
	// A cached token is refused once it expires.
	v.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	jv.now = v.now
	if _, err := v.Verify(short); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired cached token: %v", err)
	}
}

func BenchmarkJWKSVerifyRS256(b *testing.B) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, _ := jwk.Import(&rk.PublicKey)
		k.Set(jwk.KeyIDKey, "k1")
		set := jwk.NewSet()
		set.AddKey(k)
		json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	v, err := NewJWKS(JWKSConfig{URL: srv.URL, Issuer: testIssuer, Audience: testAudience})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(nil))
	tok.Header["kid"] = "k1"
	s, _ := tok.SignedString(rk)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(s); err != nil {
			b.Fatal(err)
		}
	}
}

// One unusable key in the set (the attacker's finding: an RSA-1024 key
// made every token fail) is skipped and logged by kid and reason, never
// by its material; the good keys keep verifying.
func TestJWKSSkipsUnusableKeys(t *testing.T) {
	good, _ := rsa.GenerateKey(rand.Reader, 2048)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	goodJWK, err := jwk.Import(&good.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	goodJWK.Set(jwk.KeyIDKey, "good")
	goodJWK.Set(jwk.KeyUsageKey, "sig")
	goodJSON, _ := json.Marshal(goodJWK)
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	weakN := b64(weak.N.Bytes())
	goodN := b64(good.N.Bytes())
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384JWK, _ := jwk.Import(&p384.PublicKey)
	p384JWK.Set(jwk.KeyIDKey, "p384")
	p384JSON, _ := json.Marshal(p384JWK)
	bad := map[string]string{ // kid → entry
		"weak-1024":   `{"kty":"RSA","kid":"weak-1024","use":"sig","alg":"RS256","n":"` + weakN + `","e":"AQAB"}`,
		"unknown-kty": `{"kty":"PQC","kid":"unknown-kty","use":"sig","pub":"AAAA"}`,
		"bad-crv":     `{"kty":"EC","kid":"bad-crv","crv":"P-999","x":"AAAA","y":"AAAA"}`,
		"p384":        string(p384JSON),
		"bad-base64":  `{"kty":"RSA","kid":"bad-base64","n":"!!!not base64!!!","e":"AQAB"}`,
		"enc":         `{"kty":"RSA","kid":"enc","use":"enc","n":"` + goodN + `","e":"AQAB"}`,
		"other-alg":   `{"kty":"RSA","kid":"other-alg","alg":"RS512","n":"` + goodN + `","e":"AQAB"}`,
		"unknown-alg": `{"kty":"RSA","kid":"unknown-alg","alg":"XX999","n":"` + goodN + `","e":"AQAB"}`,
		"symmetric":   `{"kty":"oct","kid":"symmetric","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}`,
	}
	serve := func(entries ...string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"keys":[`+strings.Join(entries, ",")+`]}`)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	tok := signWith(t, jwt.SigningMethodRS256, "good", claims(nil), good)

	for kid, entry := range bad {
		t.Run(kid, func(t *testing.T) {
			var logs strings.Builder
			srv := serve(entry, string(goodJSON))
			v, err := NewJWKS(JWKSConfig{URL: srv.URL, Issuer: testIssuer, Audience: testAudience,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if c, err := v.Verify(tok); err != nil || c.Email != "alice@example.com" {
				t.Fatalf("a good key beside %s: Verify = %+v, %v", kid, c, err)
			}
			if _, err := v.Verify(signWith(t, jwt.SigningMethodRS256, kid, claims(nil), weak)); !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("a token naming the skipped key %s: %v", kid, err)
			}
			out := logs.String()
			if strings.Count(out, "JWKS: key skipped") != 1 || !strings.Contains(out, "kid="+kid) || !strings.Contains(out, "reason=") {
				t.Errorf("want one 'key skipped' record with kid=%s and a reason; logs:\n%s", kid, out)
			}
			for _, material := range []string{weakN, goodN, "c2VjcmV0"} {
				if strings.Contains(out, material) {
					t.Errorf("the log shows key material:\n%s", out)
				}
			}
		})
	}

	// Every key unusable: that is the error, with the reasons.
	var all []string
	for _, e := range bad {
		all = append(all, e)
	}
	v, err := NewJWKS(JWKSConfig{URL: serve(all...).URL, Issuer: testIssuer, Audience: testAudience,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	err = v.refetch()
	if err == nil || !strings.Contains(err.Error(), "none of the 9 keys") || !strings.Contains(err.Error(), "weak-1024") {
		t.Fatalf("refetch of a JWKS with no usable key: %v", err)
	}
	if _, err := v.Verify(tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify with no usable key: %v", err)
	}
}
