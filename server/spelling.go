package server

import (
	"context"
	"errors"

	"github.com/cloudkey/cloudkey/unlock"
)

// NearMissLookup says whether the last roster reconciliation of property
// found an access-system user whose email looks like email (a roster
// email no user has exactly: a dot, a +tag, a typo apart).
// rosterredis.Store is one.
type NearMissLookup interface {
	HasNearMiss(ctx context.Context, property, email string) (bool, error)
}

// SpellingMessage is what a resident who is not found is told when their
// building's roster has their email and the access system a look-alike.
// It never shows the other address: the caller may not be its owner.
const SpellingMessage = "your building's records and the access system spell your email differently, so the doors do not know you yet; ask your property manager to make the two emails match"

// EmailSpellingError is USER_NOT_FOUND for a resident whose email has a
// near miss at their property (SpellingMessage). It unwraps to the
// not-found error.
type EmailSpellingError struct{ err error }

func (e *EmailSpellingError) Error() string { return SpellingMessage }

// Unwrap returns the not-found error.
func (e *EmailSpellingError) Unwrap() error { return e.err }

// explainNotFound turns a not-found error into an EmailSpellingError when
// the caller's email has a near miss; every other error, and every found
// user, passes untouched (the hot path makes no look-up).
func (s *residentServer) explainNotFound(ctx context.Context, err error) error {
	if s.nearMisses == nil || !errors.Is(err, unlock.ErrUserNotFound) {
		return err
	}
	if s.spelledDifferently(ctx) {
		return &EmailSpellingError{err: err}
	}
	return err
}

// spelledDifferently reports whether the caller's email has a near miss
// at one of the properties of their token (the default property when it
// names none). A failed look-up counts as none: the hint is a courtesy,
// the answer is USER_NOT_FOUND either way.
func (s *residentServer) spelledDifferently(ctx context.Context) bool {
	if s.nearMisses == nil {
		return false
	}
	props := callerProperties(ctx)
	if props == nil {
		props = []string{s.defaultProperty}
	}
	email := callerEmail(ctx)
	for _, p := range props {
		if ok, err := s.nearMisses.HasNearMiss(ctx, p, email); err == nil && ok {
			return true
		}
	}
	return false
}
