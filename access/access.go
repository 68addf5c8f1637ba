// Package access defines what cloudkey needs from a cloud access-control
// system (Openpath / Avigilon Alta style): find a user by email, make sure
// the user has a cloud-key credential, list the entries (doors) the user may
// open, and unlock one of them. Implementations live in sub-packages:
// openpath and kisi (REST clients, sharing guard's circuit breaker and
// retry policy), and sim and kisisim (simulators of those REST APIs).
//
// It is the domain's view of an access system and imports nothing of
// cloudkey's: no adapter (openpath, kisi, sim, kisisim), no Redis, gRPC
// or generated code.
package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is an access-system user's status, as Openpath reports it.
type Status string

// Openpath user statuses.
const (
	StatusActive    Status = "A"
	StatusSuspended Status = "S"
	StatusInactive  Status = "I"
)

// User is an access-system user.
type User struct {
	ID     string
	Email  string // as the access system stores it
	Name   string
	Status Status
}

// Active reports whether the user may unlock.
func (u User) Active() bool { return u.Status == StatusActive }

// Entry is a door, gate or elevator the user may open.
type Entry struct {
	ID   string
	Name string
	Zone string
	Site string
	// Restriction, when set, says why the entry cannot be opened from the
	// cloud (a reader-restricted or geofenced Kisi lock), in words for
	// the resident; such an entry is listed but its unlock is never sent.
	Restriction string
}

// System is one access-control system. Every call must return by the
// context's deadline.
type System interface {
	// FindUserByEmail returns the one user whose email equals email
	// case-insensitively, or ErrNotFound. email is already canonical.
	FindUserByEmail(ctx context.Context, email string) (User, error)
	// EnsureCloudKey returns the id of the user's own unlock credential
	// (Openpath: the cloud key; Kisi: a device login made on the user's
	// behalf), creating one when the user has none. u is what
	// FindUserByEmail returned.
	EnsureCloudKey(ctx context.Context, u User) (credentialID string, err error)
	// ListUserEntries lists the entries the user may open.
	ListUserEntries(ctx context.Context, userID string) ([]Entry, error)
	// Unlock opens entryID with the user's cloud key. It is never retried
	// by callers: the door may already have opened.
	Unlock(ctx context.Context, userID, credentialID, entryID string) error
}

// Errors an access system reports, matched with errors.Is.
var (
	// ErrNotFound: the user (or entry) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDenied: the access system refused (HTTP 403: user suspended,
	// entry not assigned, credential revoked).
	ErrDenied = errors.New("denied by access system")
	// ErrUnavailable: the access system could not be reached or answered
	// 5xx/429; the request may be tried again later.
	ErrUnavailable = errors.New("access system unavailable")
	// ErrAmbiguous: more than one user matched an email.
	ErrAmbiguous = errors.New("more than one user matches")
)

// ReasonError is an access system's refusal or failure with a reason a
// person can act on ("the door is locked down", "your access is not yet
// valid"). It matches Kind (ErrDenied, ErrNotFound or ErrUnavailable) and
// unwraps to Err, the underlying answer.
type ReasonError struct {
	Kind   error
	Reason string
	Err    error
}

func (e *ReasonError) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}

// Is matches the error's kind.
func (e *ReasonError) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying answer.
func (e *ReasonError) Unwrap() error { return e.Err }

// StatusError is a non-2xx answer from an access system. It matches
// ErrNotFound, ErrDenied or ErrUnavailable by HTTP status.
type StatusError struct {
	Op     string // what cloudkey was doing, e.g. "list user entries"
	Status int    // HTTP status code
	Body   string // first bytes of the body, for logs
	// RetryAfter is how long the access system asked to be left alone
	// (the Retry-After of a 429 or 503); 0 when it did not say.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: access system answered HTTP %d: %s", e.Op, e.Status, e.Body)
}

// Is maps HTTP statuses onto the sentinel errors.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == 404
	case ErrDenied:
		return e.Status == 403
	case ErrUnavailable:
		return e.Status == 429 || e.Status >= 500
	}
	return false
}

// CheckReason classifies why a connection check failed, so that the
// manager who entered the connection knows what to fix.
type CheckReason int

// Reasons a connection check fails.
const (
	// CheckUnexpected: the access system answered something else than
	// expected (an HTTP status other than those below, an answer that does
	// not decode); trying again later may help.
	CheckUnexpected CheckReason = iota
	// CheckUnreachable: no answer (DNS, connection refused, TLS, timeout):
	// the URL is wrong or the system is down.
	CheckUnreachable
	// CheckBadCredentials: the login or key was refused (HTTP 401 or 403).
	CheckBadCredentials
	// CheckUnknownOrganisation: the login works but the configured
	// organisation is not among the login's (Openpath).
	CheckUnknownOrganisation
	// CheckUnknownPlace: a configured place does not exist or the key does
	// not see it (Kisi).
	CheckUnknownPlace
)

var checkReasons = [...]string{
	CheckUnexpected:          "unexpected answer",
	CheckUnreachable:         "unreachable",
	CheckBadCredentials:      "bad credentials",
	CheckUnknownOrganisation: "unknown organisation",
	CheckUnknownPlace:        "unknown place",
}

// String is the reason in words: "bad credentials".
func (r CheckReason) String() string {
	if r < 0 || int(r) >= len(checkReasons) {
		return fmt.Sprintf("CheckReason(%d)", int(r))
	}
	return checkReasons[r]
}

// CheckError is why a live check of a connection (an access-system
// client's Check) failed. Its message names the connection and the reason
// and never contains a secret (password, key, token). It unwraps to Err.
type CheckError struct {
	// Conn names the connection checked (the client's configured name,
	// such as "harbor-view.kisi").
	Conn   string
	Reason CheckReason
	// Err is what happened, for the message: a status, a transport error,
	// the missing organisation or place.
	Err error
}

func (e *CheckError) Error() string {
	msg := "connection check"
	if e.Conn != "" {
		msg += " of " + e.Conn
	}
	msg += ": " + e.Reason.String()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *CheckError) Unwrap() error { return e.Err }

// CheckFailure classifies err, a failed request of a connection check of
// conn: a 401 or 403 is CheckBadCredentials, another HTTP status
// CheckUnexpected, no answer at all (ErrUnavailable without a status, a
// deadline) CheckUnreachable, anything else CheckUnexpected. Each of
// secrets (the password, key or token the check sent) is cut out of the
// message, in case the access system's answer quoted it; errors.Is and
// errors.As still see err.
func CheckFailure(conn string, err error, secrets ...string) *CheckError {
	reason := CheckUnexpected
	var se *StatusError
	switch {
	case errors.As(err, &se):
		if se.Status == 401 || se.Status == 403 {
			reason = CheckBadCredentials
		}
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		reason = CheckUnreachable
	}
	return &CheckError{Conn: conn, Reason: reason, Err: redacted(err, secrets)}
}

// redacted is err with every non-empty secret cut out of its message.
func redacted(err error, secrets []string) error {
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if s != "" {
			clean = strings.ReplaceAll(clean, s, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

// redactedError shows a cleaned message and unwraps to the original error.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// DirectoryUser is one user of an access system's directory, as
// reconciliation reads it: who they are, whether they may unlock, and
// whether they have any entry at all.
type DirectoryUser struct {
	ID     string
	Email  string // as the access system stores it
	Name   string
	Status Status // StatusActive, or StatusSuspended / StatusInactive
	// HasEntries reports whether the user may open at least one entry of
	// the connection.
	HasEntries bool
}

// Directory lists an access system's users without creating anything on
// their behalf (no cloud key, no login): reconciliation compares it with
// the property's roster.
type Directory interface {
	// ListUsers lists every user of the connection, paged underneath.
	ListUsers(ctx context.Context) ([]DirectoryUser, error)
}
