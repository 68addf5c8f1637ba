package kisisim

import (
	"errors"
	"strconv"
	"sync"

	"golang.org/x/time/rate"
)

// Kisi's limit for authenticated calls: 5 requests per second per user,
// shared by all of the user's logins (the API key is its admin's).
const (
	DefaultRateLimit = 5.0
	DefaultRateBurst = 5
)

// limiter holds one token bucket per user.
type limiter struct {
	mu        sync.Mutex
	perSecond float64 // 0: off
	burst     int
	byUser    map[int]*rate.Limiter
}

func (l *limiter) set(perSecond float64, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.perSecond, l.burst = perSecond, burst
	l.byUser = map[int]*rate.Limiter{}
}

// allow takes one request from the user's bucket.
func (l *limiter) allow(userID int) bool {
	l.mu.Lock()
	if l.perSecond <= 0 {
		l.mu.Unlock()
		return true
	}
	b := l.byUser[userID]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(l.perSecond), l.burst)
		l.byUser[userID] = b
	}
	l.mu.Unlock()
	return b.Allow()
}

func (l *limiter) describe() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strconv.FormatFloat(l.perSecond, 'f', -1, 64)
}

// SetRateLimit sets the per-user rate limit: perSecond requests per second
// with bursts of up to burst (at least 1). perSecond 0 turns it off. Every
// user's bucket starts full again. Over the limit a request is answered
// 429 with Retry-After: 1 and code "000429".
func (s *Sim) SetRateLimit(perSecond float64, burst int) error {
	if perSecond < 0 || (perSecond > 0 && burst < 1) {
		return errors.New("kisisim: rate limit needs perSecond >= 0 and, when on, burst >= 1")
	}
	s.limits.set(perSecond, burst)
	return nil
}

// RateLimit returns the per-user rate limit in force (0, 0 when off).
func (s *Sim) RateLimit() (perSecond float64, burst int) {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	if s.limits.perSecond <= 0 {
		return 0, 0
	}
	return s.limits.perSecond, s.limits.burst
}
