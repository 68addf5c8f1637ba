package identity

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
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
	next Verifier
	// A plain LRU with the deadline in the value: the library's expiring
	// LRU runs a janitor goroutine that cannot be stopped.
	cache *lru.Cache[string, cachedClaims]
	ttl   time.Duration
	now   func() time.Time
}

type cachedClaims struct {
	Claims
	until time.Time // the sooner of the token's expiry and the cache TTL
}

// NewCachedVerifier caches up to size verified tokens for at most ttl.
func NewCachedVerifier(next Verifier, size int, ttl time.Duration) *CachedVerifier {
	c, err := lru.New[string, cachedClaims](size)
	if err != nil {
		panic("identity: token cache size must be positive")
	}
	return &CachedVerifier{next: next, cache: c, ttl: ttl, now: time.Now}
}

// Verify returns the cached claims of token, or verifies it.
func (v *CachedVerifier) Verify(token string) (Claims, error) {
	now := v.now()
	if c, ok := v.cache.Get(token); ok && now.Before(c.until) {
		return c.Claims, nil
	}
	c, err := v.next.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	until := now.Add(v.ttl)
	if c.ExpiresAt.Before(until) {
		until = c.ExpiresAt
	}
	v.cache.Add(token, cachedClaims{Claims: c, until: until})
	return c, nil
}
