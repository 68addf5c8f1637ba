// Package secrets encrypts credentials at rest: a Keyring of AES-256-GCM
// keys, each with an id, parsed from CLOUDKEY_SECRETS_KEY
// ("id:base64key,id2:base64key2"). The first key (the primary) seals, every
// key opens, so keys rotate: put a new key first, keep the old ones after
// it, re-seal what is stored (`cloudkey secrets rotate`), then drop them.
//
// A sealed secret is printable: "v1.<keyid>.<base64url(nonce||ciphertext)>",
// bound to caller-chosen additional data (the AAD) that must be given
// again to open it. A Keyring never prints its keys: fmt, slog and JSON
// show only the ids.
//
// It imports only the standard library; it must not import Redis, gRPC,
// the generated API or any cloudkey package.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// version is the sealed format's prefix.
const version = "v1"

// KeySize is the size of an AES-256 key in bytes.
const KeySize = 32

// nonceSize is AES-GCM's standard nonce size.
const nonceSize = 12

// DevelopmentKeyID is the id of the development key.
const DevelopmentKeyID = "dev"

// developmentKey is the development key: the 32 ASCII bytes
// "cloudkey-development-secrets-key". It is public (it is in the source),
// so what it seals is not protected: for development and tests only.
var developmentKey = []byte("cloudkey-development-secrets-key")

// Errors of Open, for errors.Is.
var (
	// ErrMalformed: the string is not a sealed secret of a known version.
	ErrMalformed = errors.New("secrets: not a sealed secret")
	// ErrUnknownKey: the secret was sealed with a key the ring lacks.
	ErrUnknownKey = errors.New("secrets: unknown key id")
	// ErrAuth: the ciphertext or its AAD is not what was sealed (wrong
	// AAD, tampering or a different key with the same id).
	ErrAuth = errors.New("secrets: message authentication failed")
)

// key is one key of a Keyring; the raw key is kept only inside aead.
type key struct {
	id   string
	aead cipher.AEAD
	dev  bool // the development key
}

// Keyring holds AES-256-GCM keys with ids: the first (the primary) seals,
// all open. It is safe for concurrent use. Its String, GoString, LogValue
// and MarshalJSON show the key ids only.
type Keyring struct {
	keys []key
}

// Parse parses a key spec: comma-separated "id:base64key" entries (standard
// or URL base64, padded or not, of 32-byte keys), ids of 1 to 32 of
// [A-Za-z0-9_-], unique. The first entry is the primary. Errors name the
// entry's position and the problem, never the key material.
func Parse(spec string) (*Keyring, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, errors.New("secrets: key spec is empty: want id:base64key[,id:base64key...]")
	}
	var r Keyring
	seen := map[string]bool{}
	for i, entry := range strings.Split(spec, ",") {
		n := i + 1
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("secrets: entry %d is empty", n)
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("secrets: entry %d: want id:base64key, found no ':'", n)
		}
		id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
		if !validID(id) {
			return nil, fmt.Errorf("secrets: entry %d: the id must be 1 to 32 of A-Z a-z 0-9 _ -", n)
		}
		if seen[id] {
			return nil, fmt.Errorf("secrets: entry %d: id %q is used twice", n, id)
		}
		seen[id] = true
		raw, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("secrets: entry %d (id %q): the key is not base64", n, id)
		}
		if len(raw) != KeySize {
			return nil, fmt.Errorf("secrets: entry %d (id %q): the key is %d bytes, want %d", n, id, len(raw), KeySize)
		}
		k, err := newKey(id, raw)
		if err != nil {
			return nil, fmt.Errorf("secrets: entry %d (id %q): %w", n, id, err)
		}
		r.keys = append(r.keys, k)
	}
	return &r, nil
}

// Development returns a ring of the development key alone (id "dev", the
// 32 ASCII bytes "cloudkey-development-secrets-key"). The key is public:
// use it only when CLOUDKEY_SECRETS_KEY is unset in development, and say
// so (Keyring.Development).
func Development() *Keyring {
	k, err := newKey(DevelopmentKeyID, developmentKey)
	if err != nil {
		panic("secrets: development key: " + err.Error())
	}
	return &Keyring{keys: []key{k}}
}

// Development reports whether the primary key is the development key
// (whatever its id), so what the ring seals is not protected.
func (r *Keyring) Development() bool { return len(r.keys) > 0 && r.keys[0].dev }

// Primary returns the id of the key that seals.
func (r *Keyring) Primary() string {
	if len(r.keys) == 0 {
		return ""
	}
	return r.keys[0].id
}

// IDs returns the ring's key ids, the primary first.
func (r *Keyring) IDs() []string {
	ids := make([]string, len(r.keys))
	for i, k := range r.keys {
		ids[i] = k.id
	}
	return ids
}

// Has reports whether the ring holds a key with this id.
func (r *Keyring) Has(id string) bool { return r.find(id) != nil }

// Seal encrypts plaintext with the primary key and a random nonce, bound
// to aad, and returns "v1.<keyid>.<base64url(nonce||ciphertext)>".
func (r *Keyring) Seal(plaintext, aad []byte) (string, error) {
	if len(r.keys) == 0 {
		return "", errors.New("secrets: seal: the keyring is empty")
	}
	k := r.keys[0]
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secrets: seal: nonce: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, plaintext, aad)
	return version + "." + k.id + "." + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a secret Seal returned with the same aad, with whichever
// key of the ring sealed it. Its errors wrap ErrMalformed, ErrUnknownKey
// (naming the key id) or ErrAuth.
func (r *Keyring) Open(sealed string, aad []byte) ([]byte, error) {
	id, body, ok := split(sealed)
	if !ok {
		return nil, ErrMalformed
	}
	k := r.find(id)
	if k == nil {
		return nil, fmt.Errorf("%w %q (the ring has %s)", ErrUnknownKey, id, strings.Join(r.IDs(), ", "))
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < nonceSize+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: bad ciphertext (key %q)", ErrMalformed, id)
	}
	plain, err := k.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w (key %q)", ErrAuth, id)
	}
	return plain, nil
}

// KeyID returns the id of the key a sealed secret names, or "" when it is
// not a sealed secret.
func KeyID(sealed string) string {
	id, _, ok := split(sealed)
	if !ok {
		return ""
	}
	return id
}

// NewKeySpec returns a new random key entry "id:base64key" (standard
// base64) for a key spec, to put first in CLOUDKEY_SECRETS_KEY.
func NewKeySpec(id string) (string, error) {
	if !validID(id) {
		return "", fmt.Errorf("secrets: new key: id %q: want 1 to 32 of A-Z a-z 0-9 _ -", id)
	}
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("secrets: new key: %w", err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(raw), nil
}

// String shows the key ids only: "secrets.Keyring[primary, other]".
func (r Keyring) String() string {
	return "secrets.Keyring[" + strings.Join(r.IDs(), ", ") + "]"
}

// GoString is String: %#v shows the key ids only.
func (r Keyring) GoString() string { return r.String() }

// LogValue logs the key ids only.
func (r Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.String("primary", r.Primary()), slog.Any("keys", r.IDs()))
}

// MarshalJSON encodes the key ids only: {"primary":"id","keys":["id",...]}.
func (r Keyring) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Primary string   `json:"primary"`
		Keys    []string `json:"keys"`
	}{r.Primary(), r.IDs()})
}

func (r *Keyring) find(id string) *key {
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i]
		}
	}
	return nil
}

func newKey(id string, raw []byte) (key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("gcm: %w", err)
	}
	return key{id: id, aead: aead, dev: subtle.ConstantTimeCompare(raw, developmentKey) == 1}, nil
}

// split splits "v1.<id>.<body>".
func split(sealed string) (id, body string, ok bool) {
	rest, ok := strings.CutPrefix(sealed, version+".")
	if !ok {
		return "", "", false
	}
	id, body, ok = strings.Cut(rest, ".")
	if !ok || !validID(id) || body == "" {
		return "", "", false
	}
	return id, body, true
}

// decodeKey decodes standard or URL base64, padded or not.
func decodeKey(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
