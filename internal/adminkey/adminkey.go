// Package adminkey issues and checks the API keys property managers and
// integrators use on the admin API. A key is random, shown once, stored
// only as its SHA-256 hash, and scoped to one property, to the whole
// portfolio, or (keys made before properties) to one access-system
// organisation, which the server reads as its default property.
//
// It must not import server, the domain packages or the generated API:
// server checks keys through its AdminVerifier interface.
package adminkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// prefix marks cloudkey admin keys so a leaked one is recognisable.
const prefix = "ckadm_"

// ErrInvalid is returned for a key that is unknown, revoked or malformed.
var ErrInvalid = errors.New("invalid admin API key")

// Key is what a key grants.
type Key struct {
	ID  string `json:"id"` // first characters of the hash, for logs and revocation
	Org string `json:"org,omitempty"`
	// Property is the one property the key may see and change; empty on
	// portfolio keys and on keys made before properties (Org's).
	Property string `json:"property,omitempty"`
	// Portfolio keys may see and change every property.
	Portfolio bool      `json:"portfolio,omitempty"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Store keeps hashed keys in Redis.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a Store; keyPrefix is the Redis key prefix (e.g. "ck:v1:").
func NewStore(rdb redis.UniversalClient, keyPrefix string) *Store {
	return &Store{rdb: rdb, prefix: keyPrefix + "adminkey:"}
}

func hash(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// Scope is what a new key may see and change: exactly one of an
// organisation (the default property's, as before properties), a
// property, or the whole portfolio.
type Scope struct {
	Org, Property string
	Portfolio     bool
}

// Create makes a key for org and returns its plaintext, shown only now.
func (s *Store) Create(ctx context.Context, org, name string) (string, Key, error) {
	return s.CreateScoped(ctx, Scope{Org: org}, name)
}

// CreateScoped makes a key for scope and returns its plaintext, shown
// only now.
func (s *Store) CreateScoped(ctx context.Context, scope Scope, name string) (string, Key, error) {
	org, name := strings.TrimSpace(scope.Org), strings.TrimSpace(name)
	prop := strings.TrimSpace(scope.Property)
	n := 0
	for _, set := range []bool{org != "", prop != "", scope.Portfolio} {
		if set {
			n++
		}
	}
	if n != 1 {
		return "", Key{}, errors.New("adminkey: give exactly one scope: an organisation, a property, or the portfolio")
	}
	if name == "" {
		return "", Key{}, errors.New("adminkey: name is required (who or what uses the key)")
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Key{}, fmt.Errorf("adminkey: random: %w", err)
	}
	plain := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := hash(plain)
	k := Key{ID: h[:12], Org: org, Property: prop, Portfolio: scope.Portfolio, Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	v, _ := json.Marshal(k)
	if err := s.rdb.Set(ctx, s.prefix+h, v, 0).Err(); err != nil {
		return "", Key{}, fmt.Errorf("adminkey: store: %w", err)
	}
	return plain, k, nil
}

// Verify returns what plain grants, or ErrInvalid.
func (s *Store) Verify(ctx context.Context, plain string) (Key, error) {
	if !strings.HasPrefix(plain, prefix) || len(plain) > 128 {
		return Key{}, ErrInvalid
	}
	v, err := s.rdb.Get(ctx, s.prefix+hash(plain)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Key{}, ErrInvalid
	}
	if err != nil {
		return Key{}, fmt.Errorf("adminkey: look up: %w", err)
	}
	var k Key
	if err := json.Unmarshal(v, &k); err != nil {
		return Key{}, fmt.Errorf("adminkey: decode: %w", err)
	}
	return k, nil
}

// Revoke deletes the key with plaintext plain.
func (s *Store) Revoke(ctx context.Context, plain string) error {
	n, err := s.rdb.Del(ctx, s.prefix+hash(plain)).Result()
	if err != nil {
		return fmt.Errorf("adminkey: revoke: %w", err)
	}
	if n == 0 {
		return ErrInvalid
	}
	return nil
}
