package access

import (
	"context"
	"errors"
	"time"
)

// GuestSystem is what guest passes and Protect (employee activation) need
// from an access system, on top of finding users by email. Everything
// here acts as the integration's service account: the user cloudkey logs
// in as (in Openpath, the "Envoy Bot" an administrator creates and gives
// access to the entries visitors may open).
//
// Every call must return by the context's deadline. Implementations never
// retry UseUnlockToken: the door may already have opened.
type GuestSystem interface {
	// FindUserByEmail is System.FindUserByEmail.
	FindUserByEmail(ctx context.Context, email string) (User, error)
	// SetUserStatus activates, suspends or inactivates a user.
	SetUserStatus(ctx context.Context, userID string, status Status) error
	// ListOrgEntries lists every entry of the organisation, to check that
	// an entry mapping names entries that exist.
	ListOrgEntries(ctx context.Context) ([]Entry, error)
	// ServiceEntries lists the entries the service account may open: an
	// unlock token can only cover these.
	ServiceEntries(ctx context.Context) ([]Entry, error)
	// IssueUnlockToken issues a time-limited unlock token for some entries
	// on the service account's cloud key. The access system itself refuses
	// to use it before req.NotBefore, from req.Expires on, or for an entry
	// it does not cover.
	IssueUnlockToken(ctx context.Context, req UnlockTokenRequest) (UnlockToken, error)
	// UseUnlockToken opens entryID with a token from IssueUnlockToken. A
	// refusal matches ErrDenied (outside the token's window, entry not
	// covered, service account suspended or no longer assigned the entry)
	// or ErrNotFound (unknown token or entry).
	UseUnlockToken(ctx context.Context, token, entryID string) error
}

// UnlockTokenRequest asks for a time-limited unlock token.
type UnlockTokenRequest struct {
	// Entries the token may open: at least one.
	Entries []TokenEntry
	// NotBefore and Expires bound when the token works: [NotBefore,
	// Expires). A zero time leaves that side open; cloudkey always sets
	// both.
	NotBefore, Expires time.Time
	// Description is shown in the access system's logs (Openpath keeps at
	// most 100 characters).
	Description string
}

// TokenEntry is one entry an unlock token covers, with the label the
// access system's own unlock page would show.
type TokenEntry struct {
	ID    string
	Label string
}

// UnlockToken is an issued unlock token. Token is a bearer credential that
// opens doors: keep it out of logs.
type UnlockToken struct {
	Token              string
	NotBefore, Expires time.Time
}

// ErrNoServiceUser: the service account cloudkey logs in with is not a user
// of the organisation (or has no way to hold a cloud key), so it cannot
// issue unlock tokens.
var ErrNoServiceUser = errors.New("the service account is not a user of the organisation")

// StatusSetter suspends and reactivates access-system users: the
// move-out policy's one write. Openpath sets the user's status; Kisi its
// access_enabled flag. Setting the status a user already has is not an
// error.
type StatusSetter interface {
	// SetUserStatus sets userID's status: StatusActive or
	// StatusSuspended (StatusInactive where the system has it).
	SetUserStatus(ctx context.Context, userID string, status Status) error
}
