// Package identity turns an app's bearer token into a canonical email: it
// verifies the token (HS256 JWT for now) and canonicalises the email claim.
//
// It imports no other cloudkey package, so every layer may use its
// canonical email; it must not import server, Redis or the domain
// packages.
package identity

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DevelopmentSecret is the HS256 key `cloudkey` and `cloudkey token` share
// when CLOUDKEY_TOKEN_SECRET is unset. Never use it in production.
const DevelopmentSecret = "cloudkey-development-secret-do-not-use-in-production"

// MinSecretLen is the shortest HS256 secret accepted (RFC 7518 §3.2: a key
// at least as long as the hash output).
const MinSecretLen = 32

// MaxTokenLen is the longest bearer token accepted, in bytes. Real app
// tokens are well under 2 KiB (an identity provider's JWT with a few
// claims); the bound is checked before any parsing, so a token of
// megabytes costs a length comparison, not a base64 decode.
const MaxTokenLen = 8 << 10

// ErrInvalidToken is returned for any token that does not verify; the
// wrapped message says why (expired, bad signature, missing claim).
var ErrInvalidToken = errors.New("invalid token")

// ErrInvalidEmail is returned for a malformed email.
var ErrInvalidEmail = errors.New("invalid email")

// PublicReason is what the sender of a refused token may be told: which
// check failed, in a fixed phrase. Never the detail of err, which can
// name the JWKS URL, key ids and the parsers' internals: log that instead.
func PublicReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token issuer not accepted"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token audience not accepted"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim"
	case errors.Is(err, ErrInvalidEmail):
		return "token has no valid email claim"
	}
	return "invalid token"
}

// CanonicalEmail is the one canonical form of an email in cloudkey (PRODUCT.md:
// trim, lower-case, nothing else): surrounding space is trimmed and the ASCII
// letters A-Z become a-z. It then checks the result is a bare address
// (local@domain). Dots and +tags are kept: they matter to access systems.
//
// Non-ASCII characters are kept exactly as given: no Unicode case folding,
// no normalisation. Unicode lower-casing would turn some non-ASCII letters
// into ASCII ones (U+0130 'İ' → 'i', the Kelvin sign U+212A → 'k'; case
// folding also maps U+017F 'ſ' to 's'), so ERİN@example.com would become
// erin@example.com, someone else's account. Kept as given, an address with
// a non-ASCII character only ever matches the byte-identical address, and
// never an ASCII one. They are not refused, because internationalised
// addresses (RFC 6531) are real, and the access systems (Openpath) store
// and match the email as a string: the same bytes there match here.
//
// Every comparison of emails compares canonical forms byte for byte (or
// FoldEmail's, where the input is not a whole address).
func CanonicalEmail(email string) (string, error) {
	e := FoldEmail(email)
	if e == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidEmail)
	}
	if len(e) > 254 {
		return "", fmt.Errorf("%w: longer than 254 characters", ErrInvalidEmail)
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return "", fmt.Errorf("%w: %q is not an address like name@example.com", ErrInvalidEmail, email)
	}
	return e, nil
}

// FoldEmail is CanonicalEmail without the check that s is an address:
// TrimSpace, then A-Z to a-z, every other byte as given. It is for
// comparing and searching emails that need not be whole or valid (a
// search substring, an event's email); equal canonical emails have equal
// FoldEmail forms.
func FoldEmail(s string) string {
	s = strings.TrimSpace(s)
	for i := range len(s) {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return s // already lower case: no copy
}

// Claims are the verified facts of a token.
type Claims struct {
	Email     string // canonical
	ExpiresAt time.Time
	// Properties are the property ids the app platform vouches for (the
	// "properties" claim); nil: the deployment's default property.
	Properties []string
}

type tokenClaims struct {
	Email      string   `json:"email"`
	Properties []string `json:"properties,omitempty"`
	jwt.RegisteredClaims
}

// MaxTokenProperties bounds the properties one token may name.
const MaxTokenProperties = 100

var propertyID = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// checkProperties checks the properties claim: present means at least
// one, each a property id, none twice.
func checkProperties(ps []string, present bool) error {
	switch {
	case present && len(ps) == 0:
		return errors.New("properties claim: name at least one property, or leave the claim out")
	case len(ps) > MaxTokenProperties:
		return fmt.Errorf("properties claim: at most %d properties, got %d", MaxTokenProperties, len(ps))
	}
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		if !propertyID.MatchString(p) {
			return fmt.Errorf("properties claim: %q is not a property id", p)
		}
		if seen[p] {
			return fmt.Errorf("properties claim: %q is named twice", p)
		}
		seen[p] = true
	}
	return nil
}

// HS256 signs and verifies app tokens with a shared secret.
type HS256 struct {
	key    []byte
	parser *jwt.Parser
}

// NewHS256 returns a verifier and signer for secret.
func NewHS256(secret string) (*HS256, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("identity: token secret is %d bytes, need at least %d", len(secret), MinSecretLen)
	}
	return &HS256{
		key: []byte(secret),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(30*time.Second),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// Verify checks token's JSON (checkJSON), signature and expiry and returns
// its claims.
func (h *HS256) Verify(token string) (Claims, error) {
	return verify(h.parser, token, h.keyFunc)
}

// verify is Verify of both verifiers: the strict JSON checks (checkJSON),
// then the parser's signature and claim checks, then the email claim.
func verify(p *jwt.Parser, token string, key jwt.Keyfunc) (Claims, error) {
	if err := checkJSON(token); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var c tokenClaims
	if _, err := p.ParseWithClaims(token, &c, key); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	email, err := CanonicalEmail(c.Email)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: email claim: %w", ErrInvalidToken, err)
	}
	if err := checkProperties(c.Properties, c.Properties != nil); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return Claims{Email: email, ExpiresAt: c.ExpiresAt.Time, Properties: c.Properties}, nil
}

func (h *HS256) keyFunc(*jwt.Token) (any, error) { return h.key, nil }

// Sign issues a token for email valid for ttl, for the default property.
func (h *HS256) Sign(email string, ttl time.Duration) (string, error) {
	return h.SignFor(email, ttl, nil)
}

// SignFor issues a token for email valid for ttl whose properties claim
// names properties (none: no claim, the default property).
func (h *HS256) SignFor(email string, ttl time.Duration, properties []string) (string, error) {
	e, err := CanonicalEmail(email)
	if err != nil {
		return "", err
	}
	if err := checkProperties(properties, false); err != nil {
		return "", err
	}
	now := time.Now()
	c := tokenClaims{
		Email: e, Properties: properties,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   e,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(h.key)
	if err != nil {
		return "", fmt.Errorf("identity: sign token: %w", err)
	}
	return s, nil
}
