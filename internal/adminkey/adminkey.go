// Package adminkey issues and checks the API keys property managers and
// integrators use on the admin API. A key is random, shown once, stored
// only as its SHA-256 hash, and scoped to one access-system organisation.
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
	ID        string    `json:"id"` // first characters of the hash, for logs and revocation
	Org       string    `json:"org"`
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

// Create makes a key for org and returns its plaintext, shown only now.
func (s *Store) Create(ctx context.Context, org, name string) (string, Key, error) {
	org, name = strings.TrimSpace(org), strings.TrimSpace(name)
	if org == "" {
		return "", Key{}, errors.New("adminkey: organisation is required")
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
	k := Key{ID: h[:12], Org: org, Name: name, CreatedAt: time.Now().UTC().Truncate(time.Second)}
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
