package identity

import (
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Verifier verifies tokens.
type Verifier interface {
	Verify(token string) (Claims, error)
}

// CachedVerifier remembers tokens that verified, so an app sending the
// same token on every tap pays for the signature check once. Only the
// exact token string hits; a hit is still refused once the token expires.
// Failures are not cached.
type CachedVerifier struct {
	next  Verifier
	cache *expirable.LRU[string, Claims]
	now   func() time.Time
}

// NewCachedVerifier caches up to size verified tokens for at most ttl.
func NewCachedVerifier(next Verifier, size int, ttl time.Duration) *CachedVerifier {
	return &CachedVerifier{next: next, cache: expirable.NewLRU[string, Claims](size, nil, ttl), now: time.Now}
}

// Verify returns the cached claims of token, or verifies it.
func (v *CachedVerifier) Verify(token string) (Claims, error) {
	if c, ok := v.cache.Get(token); ok && v.now().Before(c.ExpiresAt) {
		return c, nil
	}
	c, err := v.next.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	v.cache.Add(token, c)
	return c, nil
}
