package visitor

import (
	"context"
	"errors"
	"time"
)

// Store is everything the visitor service keeps: settings, visits with
// their links and tokens, handled events, the decision log, employee
// sign-out tombstones, the host index of registrations, the scheduled
// suspensions and locks. Values are opaque to the store (the service
// encodes them); operations over several records are atomic. Its Redis
// implementation is visitorredis.Store.
type Store interface {
	SettingsStore
	VisitStore
	EventStore
	DecisionLog
	Tombstones
	HostIndex
	JobQueue
	Locker
	TagStore // tile_envoy.go
}

// ErrConflict is returned by VisitStore.Transact (and VisitTx.Commit) when
// a record the transaction read was changed by someone else before it
// committed; nothing was written, and the caller runs it again.
var ErrConflict = errors.New("visitor: concurrent change; transaction not applied")

// SettingsStore keeps each location's settings (JSON), without expiry,
// and the index of the entries mapped at each location of a property.
type SettingsStore interface {
	// Settings returns the location's settings; ok is false when there are none.
	Settings(ctx context.Context, location string) (data []byte, ok bool, err error)
	PutSettings(ctx context.Context, location string, data []byte) error
	// SaveSettings stores w.Data as the location's settings and, in the
	// same atomic write, indexes the entries it maps under the property
	// (w.Mapped added, w.Unmapped removed).
	SaveSettings(ctx context.Context, w SettingsWrite) error
	// EntryLocations returns, for each of entryIDs that some location of
	// property maps, those locations.
	EntryLocations(ctx context.Context, property string, entryIDs []string) (map[string][]string, error)
	// SettingsLocations returns every location that has settings.
	SettingsLocations(ctx context.Context) ([]string, error)
	// IndexEntries adds location to the index of each of entryIDs under
	// property: the backfill of settings saved before the index.
	IndexEntries(ctx context.Context, property, location string, entryIDs []string) error
}

// SettingsWrite is one save of a location's settings.
type SettingsWrite struct {
	Property, Location string
	Data               []byte
	// Mapped are the entries the settings map; Unmapped those the
	// previous settings mapped and these do not.
	Mapped, Unmapped []string
}

// VisitStore keeps visits (JSON, by visit key such as "inv:42"), the
// Envoy entries linked to them and the link tokens' hashes pointing to
// them.
type VisitStore interface {
	// Visit reads one visit outside a transaction.
	Visit(ctx context.Context, key string) (data []byte, ok bool, err error)
	// TokenVisit returns the visit key a token hash points to.
	TokenVisit(ctx context.Context, hash string) (key string, ok bool, err error)
	// Transact runs fn once as an optimistic transaction over the visits
	// named by keys (fn may read more through tx): what fn reads must be
	// unchanged when it commits, else the commit writes nothing and
	// Transact returns ErrConflict. fn must call tx.Commit at most once, last.
	Transact(ctx context.Context, keys []string, fn func(tx VisitTx) error) error
}

// VisitTx is one attempt of a VisitStore transaction.
type VisitTx interface {
	Visit(key string) (data []byte, ok bool, err error)
	// Link returns the visit key an Envoy entry was joined to.
	Link(entryID string) (visitKey string, ok bool, err error)
	// Commit applies w atomically, or returns ErrConflict.
	Commit(w VisitWrites) error
}

// VisitWrites are the writes of one transaction.
type VisitWrites struct {
	Visits    []VisitWrite
	Links     []LinkWrite
	Tokens    []TokenWrite
	Decisions []Decision
}

// VisitWrite stores a visit for TTL.
type VisitWrite struct {
	Key  string
	Data []byte
	TTL  time.Duration
	// Index, when set, lists the visit's pass in the manager's view (see
	// PassIndex) for at least TTL.
	Index *PassIndexEntry
}

// LinkWrite joins an Envoy entry to a visit for TTL.
type LinkWrite struct {
	EntryID, VisitKey string
	TTL               time.Duration
}

// TokenWrite points a token hash to a visit for TTL; an empty VisitKey
// deletes the token.
type TokenWrite struct {
	Hash, VisitKey string
	TTL            time.Duration
}

// Decision is one entry for a location's decision log: the log keeps the
// latest Max entries and expires TTL after the last one.
type Decision struct {
	Location string
	Data     []byte
	Max      int
	TTL      time.Duration
}

// DecisionLog keeps each location's latest decisions (JSON).
type DecisionLog interface {
	AppendDecision(ctx context.Context, d Decision) error
	// Decisions returns the location's latest decisions, newest first, at most limit.
	Decisions(ctx context.Context, location string, limit int) ([][]byte, error)
}

// EventStore remembers handled events by digest: a pending mark while one
// is handled, then its outcome.
type EventStore interface {
	// MarkEvent stores mark only if the event has none; ok reports that it did.
	MarkEvent(ctx context.Context, digest string, mark []byte, ttl time.Duration) (ok bool, err error)
	EventMark(ctx context.Context, digest string) (mark []byte, ok bool, err error)
	SetEventMark(ctx context.Context, digest string, mark []byte, ttl time.Duration) error
	DeleteEventMark(ctx context.Context, digest string) error
}

// Tombstones remember employee entries that signed out.
type Tombstones interface {
	PutTombstone(ctx context.Context, entryID string, ttl time.Duration) error
	HasTombstone(ctx context.Context, entryID string) (bool, error)
}

// HostIndex lists the invites a host registered at a location, by
// expected arrival.
type HostIndex interface {
	// AddRegistration indexes inviteID; the host's index then expires after ttl.
	AddRegistration(ctx context.Context, location, host, inviteID string, arrival time.Time, ttl time.Duration) error
	// Registrations returns up to limit invites arriving at or after since, soonest first.
	Registrations(ctx context.Context, location, host string, since time.Time, limit int) ([]string, error)
	HasRegistration(ctx context.Context, location, host, inviteID string) (bool, error)
}

// JobQueue holds the scheduled suspensions: one job (opaque data) per
// user id, due at a time; claimed jobs are leased to one claimer.
type JobQueue interface {
	// PutJob stores the user's job due at due, replacing (and unclaiming) any previous one.
	PutJob(ctx context.Context, userID string, data []byte, due time.Time) error
	// CancelJob removes the user's job, claimed or not.
	CancelJob(ctx context.Context, userID string) error
	// Jobs returns every job's data.
	Jobs(ctx context.Context) ([]string, error)
	// ClaimJobs atomically puts back claims whose lease ended by now,
	// then claims up to limit jobs due by now until leaseEnd. It returns
	// user id, data pairs.
	ClaimJobs(ctx context.Context, now, leaseEnd time.Time, limit int) ([]string, error)
	// FinishJob ends the claim of the user's job and, if its data is still
	// snapshot, deletes it, or requeues it at requeueAt when that is not zero.
	FinishJob(ctx context.Context, userID, snapshot string, requeueAt time.Time) error
	// Job returns the user's job data.
	Job(ctx context.Context, userID string) (data string, ok bool, err error)
}

// Locker takes short-lived named locks.
type Locker interface {
	// TryLock takes the lock for owner for ttl if it is free.
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// Unlock releases the lock if owner still holds it.
	Unlock(ctx context.Context, name, owner string) error
}
