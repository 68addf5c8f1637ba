package identity

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestCanonicalEmail(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "alice@example.com", want: "alice@example.com"},
		{in: "  Alice@Example.COM \t", want: "alice@example.com"},
		{in: "a.l.i.c.e+door@example.com", want: "a.l.i.c.e+door@example.com"},
		{in: "", wantErr: true},
		{in: "   ", wantErr: true},
		{in: "alice", wantErr: true},
		{in: "alice@", wantErr: true},
		{in: "@example.com", wantErr: true},
		{in: "Alice <alice@example.com>", wantErr: true},
		{in: "alice@example.com, bob@example.com", wantErr: true},
		{in: strings.Repeat("a", 250) + "@example.com", wantErr: true},
		{in: "a\xffb@example.com", wantErr: true}, // not UTF-8

		// Look-alikes: a non-ASCII character never becomes an ASCII one
		// (strings.ToLower maps İ to i and the Kelvin sign to k; EqualFold
		// also folds ſ to s), so none of these is the ASCII account.
		{in: "ERİN@example.com", want: "erİn@example.com"},               // U+0130
		{in: "bot@cloud\u212aey.local", want: "bot@cloud\u212aey.local"}, // Kelvin sign
		{in: "\u017fam@example.com", want: "\u017fam@example.com"},       // long s
		{in: "ＡＬＩＣＥ@example.com", want: "ＡＬＩＣＥ@example.com"},             // fullwidth, kept as given
		{in: "Alice@ｅxample.COM", want: "alice@ｅxample.com"},
		{in: "Bob@Bücher.DE", want: "bob@bücher.de"},
		{in: "JOSÉ@example.com", want: "josÉ@example.com"}, // no Unicode case folding
	}
	for _, tt := range tests {
		got, err := CanonicalEmail(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrInvalidEmail) {
				t.Errorf("CanonicalEmail(%q) = %q, %v; want ErrInvalidEmail", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	h, err := NewHS256(DevelopmentSecret)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewHS256(strings.Repeat("x", 40))
	good, _ := h.Sign(" Alice@Example.com", time.Hour)
	wrongKey, _ := other.Sign("alice@example.com", time.Hour)
	expired, _ := h.Sign("alice@example.com", -time.Hour)
	sign := func(c jwt.Claims, m jwt.SigningMethod) string {
		s, err := jwt.NewWithClaims(m, c).SignedString([]byte(DevelopmentSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	noExp := sign(jwt.MapClaims{"email": "alice@example.com"}, jwt.SigningMethodHS256)
	noEmail := sign(jwt.MapClaims{"exp": exp.Unix()}, jwt.SigningMethodHS256)
	badEmail := sign(jwt.MapClaims{"exp": exp.Unix(), "email": "not-an-email"}, jwt.SigningMethodHS256)
	hs512 := sign(jwt.MapClaims{"exp": exp.Unix(), "email": "alice@example.com"}, jwt.SigningMethodHS512)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"exp": exp.Unix(), "email": "alice@example.com"}).SignedString(jwt.UnsafeAllowNoneSignatureType)

	tests := []struct {
		name, token string
		wantEmail   string
	}{
		{"good", good, "alice@example.com"},
		{"wrong key", wrongKey, ""},
		{"expired", expired, ""},
		{"no exp", noExp, ""},
		{"no email", noEmail, ""},
		{"bad email", badEmail, ""},
		{"other alg", hs512, ""},
		{"alg none", none, ""},
		{"garbage", "abc.def.ghi", ""},
		{"empty", "", ""},
		{"tampered", good[:len(good)-2] + "xx", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := h.Verify(tt.token)
			if tt.wantEmail == "" {
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", c, err)
				}
				return
			}
			if err != nil || c.Email != tt.wantEmail {
				t.Fatalf("Verify = %+v, %v; want %s", c, err, tt.wantEmail)
			}
		})
	}
}

func TestNewHS256ShortSecret(t *testing.T) {
	if _, err := NewHS256("short"); err == nil {
		t.Fatal("NewHS256 accepted a 5-byte secret")
	}
}

func BenchmarkVerify(b *testing.B) {
	h, _ := NewHS256(DevelopmentSecret)
	tok, _ := h.Sign("alice@example.com", time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCachedVerifier(t *testing.T) {
	h, _ := NewHS256(DevelopmentSecret)
	v := NewCachedVerifier(h, 100, time.Minute)
	short, _ := h.Sign("alice@example.com", 2*time.Second)
	for range 2 { // second time from the cache
		if c, err := v.Verify(short); err != nil || c.Email != "alice@example.com" {
			t.Fatalf("Verify = %+v, %v", c, err)
		}
	}
	// A cached token is refused once it expires.
	v.now = func() time.Time { return time.Now().Add(time.Hour) }
	h.parser = jwt.NewParser(jwt.WithTimeFunc(v.now), jwt.WithExpirationRequired(), jwt.WithValidMethods([]string{"HS256"}))
	if _, err := v.Verify(short); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired cached token: err = %v", err)
	}
	// Failures are not cached, tampered tokens never hit.
	if _, err := v.Verify(short[:len(short)-2] + "xx"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("tampered: %v", err)
	}
}

func BenchmarkCachedVerify(b *testing.B) {
	h, _ := NewHS256(DevelopmentSecret)
	v := NewCachedVerifier(h, 1000, time.Minute)
	tok, _ := h.Sign("alice@example.com", time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// PublicReason names the failed check in a fixed phrase, whatever the
// detail of the error.
func TestPublicReason(t *testing.T) {
	h, _ := NewHS256(DevelopmentSecret)
	other, _ := NewHS256(strings.Repeat("x", 40))
	sign := func(c jwt.MapClaims) string {
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(DevelopmentSecret))
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	expired, _ := h.Sign("alice@example.com", -time.Hour)
	wrongKey, _ := other.Sign("alice@example.com", time.Hour)
	tests := []struct{ name, token, want string }{
		{"expired", expired, "token expired"},
		{"not yet valid", sign(jwt.MapClaims{"email": "alice@example.com", "exp": exp, "nbf": exp}), "token not valid yet"},
		{"no exp", sign(jwt.MapClaims{"email": "alice@example.com"}), "token lacks a required claim"},
		{"bad email", sign(jwt.MapClaims{"email": "Alice <alice@example.com>", "exp": exp}), "token has no valid email claim"},
		{"wrong key", wrongKey, "invalid token"},
		{"garbage", "abc.def.ghi", "malformed token"},
		{"exp as a string", sign(jwt.MapClaims{"email": "alice@example.com", "exp": "9999999999"}), "malformed token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Verify(tt.token)
			if got := PublicReason(err); got != tt.want {
				t.Fatalf("PublicReason(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
}
