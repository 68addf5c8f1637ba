package kisi

import "golang.org/x/time/rate"

// Kisi allows 5 requests per second per user, and all of a user's logins
// share them (KISI_NOTES §6). The organisation key is one user: its calls
// (user look-ups, login creations) share c.orgLimiter. Each resident's
// calls (locks, unlock) go with the resident's own login, so each resident
// has a bucket of its own: userLimiter keeps them in an LRU of
// maxUserLimiters, rather than a plain map, so that the memory stays
// bounded however many residents pass through. An evicted bucket is
// replaced by a full one; since only the least recently used are evicted,
// that user has been idle for long and the full bucket is what Kisi's
// quota would allow anyway.

// userLimiter returns userID's token bucket, creating it on first use.
func (c *Client) userLimiter(userID int64) *rate.Limiter {
	if l, ok := c.userLimiters.Get(userID); ok {
		return l
	}
	c.limitersMu.Lock()
	defer c.limitersMu.Unlock()
	if l, ok := c.userLimiters.Get(userID); ok {
		return l
	}
	l := rate.NewLimiter(c.userRate, burst(float64(c.userRate)))
	c.userLimiters.Add(userID, l)
	return l
}
