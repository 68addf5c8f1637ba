package visitor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// tokenBytes is the link token's entropy: 256 bits, far beyond guessing
// (the issue asks for at least 128).
const tokenBytes = 32

// tokenLen is the length of a link token: base64url without padding.
var tokenLen = base64.RawURLEncoding.EncodedLen(tokenBytes)

// newToken returns a fresh link token and the hash it is stored under.
func newToken() (token, hash string) {
	b := make([]byte, tokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

// hashToken is how a link token is stored: hex SHA-256. The token has full
// entropy, so a plain hash (no salt, no slow KDF) cannot be reversed, and
// one lookup finds the pass.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormedToken reports whether token could be a link token, so that
// junk is answered without a Redis round trip.
func wellFormedToken(token string) bool {
	if len(token) != tokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil
}

// newPassID returns a pass's public id, as seen in audit records and admin
// views; it gives no access.
func newPassID() string { return "p-" + rand.Text()[:16] }
