// Package identity turns an app's bearer token into a canonical email: it
// verifies the token (HS256 JWT for now) and canonicalises the email claim.
package identity

import (
	"errors"
	"fmt"
	"net/mail"
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

// CanonicalEmail trims and lower-cases email, and checks it is a bare
// address (local@domain). Nothing else is changed: dots and +tags matter
// to access systems.
func CanonicalEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
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

// Claims are the verified facts of a token.
type Claims struct {
	Email     string // canonical
	ExpiresAt time.Time
}

type tokenClaims struct {
	Email string `json:"email"`
	jwt.RegisteredClaims
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
		),
	}, nil
}

// Verify checks the signature and expiry of token and returns its claims.
func (h *HS256) Verify(token string) (Claims, error) {
	var c tokenClaims
	if _, err := h.parser.ParseWithClaims(token, &c, h.keyFunc); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	email, err := CanonicalEmail(c.Email)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: email claim: %v", ErrInvalidToken, err)
	}
	return Claims{Email: email, ExpiresAt: c.ExpiresAt.Time}, nil
}

func (h *HS256) keyFunc(*jwt.Token) (any, error) { return h.key, nil }

// Sign issues a token for email valid for ttl.
func (h *HS256) Sign(email string, ttl time.Duration) (string, error) {
	e, err := CanonicalEmail(email)
	if err != nil {
		return "", err
	}
	now := time.Now()
	c := tokenClaims{
		Email: e,
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
