package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

// This file is the simulator's back door: what tests and the load-test
// harness use to observe and change the organisation without going through
// the REST API.

// Errors of the back-door methods, matched with errors.Is.
var (
	ErrNoSuchUser  = errors.New("sim: no such user")
	ErrNoSuchEntry = errors.New("sim: no such entry")
	// ErrAmbiguousUser: more than one seeded user has the email.
	ErrAmbiguousUser = errors.New("sim: more than one user has this email")
)

func errNoSuchUser(email string) error    { return fmt.Errorf("%w: %s", ErrNoSuchUser, email) }
func errAmbiguousUser(email string) error { return fmt.Errorf("%w: %s", ErrAmbiguousUser, email) }

// Calls returns how many requests for op the simulator has received since
// it started or since Reset, whatever their outcome (faults included).
func (s *Sim) Calls(op Op) int64 {
	if op < 0 || op >= numOps {
		return 0
	}
	return s.calls[op].Load()
}

// Reset zeroes the call counters and forgets the recorded unlocks. The
// organisation's state and the issued tokens are kept.
func (s *Sim) Reset() {
	for i := range s.calls {
		s.calls[i].Store(0)
	}
	s.unlockMu.Lock()
	s.unlocks = unlockLog{}
	s.unlockMu.Unlock()
}

// Unlock is a door the simulator opened: a cloudKeyEntryUnlock, or the use
// of an unlock token, answered 204.
type Unlock struct {
	UserID       int
	Email        string
	CredentialID int
	EntryID      int
	At           time.Time
	// ViaToken is set when an unlock token opened the door; UserID and
	// CredentialID are then those the token was issued on, and At is on
	// the simulator's clock (see SetClock).
	ViaToken bool
}

// Unlocks returns the recorded unlocks, oldest first: all of them since the
// start or Reset, up to the last MaxRecordedUnlocks.
func (s *Sim) Unlocks() []Unlock {
	s.unlockMu.Lock()
	defer s.unlockMu.Unlock()
	return s.unlocks.list()
}

// MaxRecordedUnlocks bounds the unlock record, so that a long load test or
// the embedded server does not grow it without end.
const MaxRecordedUnlocks = 10_000

func (s *Sim) recordUnlock(u Unlock) {
	s.unlockMu.Lock()
	s.unlocks.add(u)
	s.unlockMu.Unlock()
}

// unlockLog is a ring of the last MaxRecordedUnlocks unlocks.
type unlockLog struct {
	buf  []Unlock
	next int // where the next unlock goes once buf is full
}

func (l *unlockLog) add(u Unlock) {
	if len(l.buf) < MaxRecordedUnlocks {
		l.buf = append(l.buf, u)
		return
	}
	l.buf[l.next] = u
	l.next = (l.next + 1) % MaxRecordedUnlocks
}

func (l *unlockLog) list() []Unlock {
	out := make([]Unlock, 0, len(l.buf))
	out = append(out, l.buf[l.next:]...)
	return append(out, l.buf[:l.next]...)
}

// User returns the current state of the user with this email (compared
// case-insensitively), in the seed's format.
func (s *Sim) User(email string) (User, error) {
	u, err := s.dir.userByEmail(email)
	if err != nil {
		return User{}, err
	}
	s.dir.mu.RLock()
	defer s.dir.mu.RUnlock()
	out := User{
		ID:        u.id,
		Email:     u.email,
		FirstName: u.firstName,
		LastName:  u.lastName,
		Status:    u.status,
		EntryIDs:  slices.Clone(u.entryIDs),
	}
	for _, c := range u.creds {
		out.Credentials = append(out.Credentials, Credential{ID: c.id, CredentialTypeID: c.typ.ID, Name: c.name})
	}
	return out, nil
}

// SetUserStatus changes a user's status, as an administrator would in the
// Openpath portal (a move-out suspends the user).
func (s *Sim) SetUserStatus(email string, status access.Status) error {
	if !validStatus(status) {
		return fmt.Errorf("sim: status %q is not A, S or I", status)
	}
	u, err := s.dir.userByEmail(email)
	if err != nil {
		return err
	}
	s.dir.mu.Lock()
	u.status = status
	s.dir.mu.Unlock()
	return nil
}

// AssignEntry gives the user access to an entry; assigning one twice is
// not an error.
func (s *Sim) AssignEntry(email string, entryID int) error {
	u, err := s.entryUser(email, entryID)
	if err != nil {
		return err
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	if i, found := slices.BinarySearch(u.entryIDs, entryID); !found {
		u.entryIDs = slices.Insert(u.entryIDs, i, entryID)
	}
	return nil
}

// UnassignEntry takes an entry away from the user; removing one the user
// does not have is not an error.
func (s *Sim) UnassignEntry(email string, entryID int) error {
	u, err := s.entryUser(email, entryID)
	if err != nil {
		return err
	}
	s.dir.mu.Lock()
	defer s.dir.mu.Unlock()
	if i, found := slices.BinarySearch(u.entryIDs, entryID); found {
		u.entryIDs = slices.Delete(u.entryIDs, i, i+1)
	}
	return nil
}

func (s *Sim) entryUser(email string, entryID int) (*user, error) {
	if s.dir.entriesByID[entryID] == nil {
		return nil, fmt.Errorf("%w: %d", ErrNoSuchEntry, entryID)
	}
	return s.dir.userByEmail(email)
}
