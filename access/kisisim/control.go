package kisisim

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// This file is the simulator's back door: what tests and the load-test
// harness use to observe and change the organisations without going
// through the REST API.

// Errors of the back-door methods, matched with errors.Is.
var (
	ErrNoSuchOrg  = errors.New("kisisim: no such organisation")
	ErrNoSuchUser = errors.New("kisisim: no such user")
	ErrNoSuchLock = errors.New("kisisim: no such lock")
)

// Calls returns how many requests for op the simulator has received since
// it started or since Reset, whatever their outcome (faults, 401 and 429
// included).
func (s *Sim) Calls(op Op) int64 {
	if op < 0 || op >= numOps {
		return 0
	}
	return s.calls[op].Load()
}

// Reset zeroes the call counters, forgets the recorded unlocks and refills
// every user's rate-limit bucket. The organisations' state and the logins
// are kept.
func (s *Sim) Reset() {
	for i := range s.calls {
		s.calls[i].Store(0)
	}
	s.unlockMu.Lock()
	s.unlocks = unlockLog{}
	s.unlockMu.Unlock()
	s.limits.mu.Lock()
	s.limits.byUser = map[int]*rate.Limiter{}
	s.limits.mu.Unlock()
}

// Unlock is a door the simulator opened (POST /locks/{id}/unlock answered
// 200).
type Unlock struct {
	OrgID  int
	LockID int
	// UserID and Email are the user the login belongs to: the
	// organisation's admin when ByOrgKey.
	UserID  int
	Email   string
	LoginID int
	// At is on the simulator's clock (SetClock).
	At time.Time
	// ByOrgKey is set when the organisation's API key, not a user's own
	// login, opened the door: Kisi attributes such an unlock to the
	// admin, so the user's own rights were not checked.
	ByOrgKey bool
}

// Unlocks returns the recorded unlocks, oldest first: all of them since the
// start or Reset, up to the last MaxRecordedUnlocks.
func (s *Sim) Unlocks() []Unlock {
	s.unlockMu.Lock()
	defer s.unlockMu.Unlock()
	return s.unlocks.list()
}

// MaxRecordedUnlocks bounds the unlock record, so that a long load test
// does not grow it without end.
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

// SetClock sets the clock access windows (valid_from, valid_until), login
// expiry and recorded unlock times use; nil restores time.Now. The rate
// limit always runs on real time.
func (s *Sim) SetClock(now func() time.Time) {
	if now == nil {
		s.clock.Store(nil)
		return
	}
	s.clock.Store(&now)
}

// orgUser returns the user (not the admin) of organisation orgID with
// this email.
func (s *Sim) orgUser(orgID int, email string) (*user, error) {
	o := s.orgsByID[orgID]
	if o == nil {
		return nil, fmt.Errorf("%w: %d", ErrNoSuchOrg, orgID)
	}
	u := o.userByEmail(email)
	if u == nil || u.admin {
		return nil, fmt.Errorf("%w: %s in organisation %d", ErrNoSuchUser, email, orgID)
	}
	return u, nil
}

// lockUser returns the lock and the user with this email in the lock's
// organisation.
func (s *Sim) lockUser(email string, lockID int) (*user, *lock, error) {
	l := s.locksByID[lockID]
	if l == nil {
		return nil, nil, fmt.Errorf("%w: %d", ErrNoSuchLock, lockID)
	}
	u, err := s.orgUser(l.org.id, email)
	return u, l, err
}

// User returns the current state of the user with this email in
// organisation orgID, in the seed's format (Access sorted by lock id).
func (s *Sim) User(orgID int, email string) (User, error) {
	u, err := s.orgUser(orgID, email)
	if err != nil {
		return User{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := User{ID: u.id, Email: u.email, Name: u.name, AccessDisabled: !u.accessEnabled, SCIMAccessDisabled: !u.scimEnabled}
	for _, l := range u.org.locks {
		g, ok := u.access[l.id]
		if !ok {
			continue
		}
		a := Access{LockID: l.id}
		if !g.from.IsZero() {
			from := g.from
			a.ValidFrom = &from
		}
		if !g.until.IsZero() {
			until := g.until
			a.ValidUntil = &until
		}
		out.Access = append(out.Access, a)
	}
	return out, nil
}

// SetUserAccess sets a user's access_enabled, as an administrator
// suspending or restoring the user would (PATCH /users/{id} does the
// same).
func (s *Sim) SetUserAccess(orgID int, email string, enabled bool) error {
	u, err := s.orgUser(orgID, email)
	if err != nil {
		return err
	}
	s.mu.Lock()
	u.accessEnabled = enabled
	s.mu.Unlock()
	return nil
}

// SetSCIMAccess sets a user's scim_access_enabled, which only SCIM can
// change on Kisi.
func (s *Sim) SetSCIMAccess(orgID int, email string, enabled bool) error {
	u, err := s.orgUser(orgID, email)
	if err != nil {
		return err
	}
	s.mu.Lock()
	u.scimEnabled = enabled
	s.mu.Unlock()
	return nil
}

// SetLockState locks a lock down (unlocks get 409 fad001) or lifts the
// lockdown, and takes it offline (503 fad107) or back online.
func (s *Sim) SetLockState(lockID int, lockedDown, online bool) error {
	l := s.locksByID[lockID]
	if l == nil {
		return fmt.Errorf("%w: %d", ErrNoSuchLock, lockID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if lockedDown && !l.lockedDown {
		l.lockedDownSince = s.now()
	}
	l.lockedDown, l.online = lockedDown, online
	return nil
}

// SetLockRestrictions turns a lock's reader restriction (unlocks need
// lock.proximity_proof, else 403 bb4faa) and geofence restriction
// (unlocks need context.location, else 403 a3995f) on or off.
func (s *Sim) SetLockRestrictions(lockID int, reader, geofence bool) error {
	l := s.locksByID[lockID]
	if l == nil {
		return fmt.Errorf("%w: %d", ErrNoSuchLock, lockID)
	}
	s.mu.Lock()
	l.reader, l.geofence = reader, geofence
	s.mu.Unlock()
	return nil
}

// Grant gives the user with this email, in the lock's organisation,
// lasting access to the lock (replacing a time-boxed one).
func (s *Sim) Grant(email string, lockID int) error {
	return s.GrantWindow(email, lockID, time.Time{}, time.Time{})
}

// GrantWindow gives the user with this email, in the lock's organisation,
// access to the lock from validFrom until validUntil; a zero time leaves
// that side open.
func (s *Sim) GrantWindow(email string, lockID int, validFrom, validUntil time.Time) error {
	if !validFrom.IsZero() && !validUntil.IsZero() && !validUntil.After(validFrom) {
		return errors.New("kisisim: access must end after it starts")
	}
	u, l, err := s.lockUser(email, lockID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	u.access[l.id] = grant{from: validFrom, until: validUntil}
	s.mu.Unlock()
	return nil
}

// Revoke takes the lock away from the user with this email in the lock's
// organisation; revoking access the user does not have is not an error.
func (s *Sim) Revoke(email string, lockID int) error {
	u, l, err := s.lockUser(email, lockID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(u.access, l.id)
	s.mu.Unlock()
	return nil
}

// Logins returns how many device logins users with this email hold, in
// every organisation together (compare OrgLogins).
func (s *Sim) Logins(email string) int {
	n := 0
	for _, o := range s.orgs {
		n += s.OrgLogins(o.id, email)
	}
	return n
}

// OrgLogins returns how many device logins the user with this email holds
// in organisation orgID (0 for an unknown one).
func (s *Sim) OrgLogins(orgID int, email string) int {
	o := s.orgsByID[orgID]
	if o == nil {
		return 0
	}
	u := o.userByEmail(email)
	if u == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(u.deviceLogins)
}

// OrgDeviceLogins returns how many device logins the users of
// organisation orgID hold together (0 for an unknown one): what a removed
// connection must leave behind is none.
func (s *Sim) OrgDeviceLogins(orgID int) int {
	o := s.orgsByID[orgID]
	if o == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, u := range o.users {
		n += len(u.deviceLogins)
	}
	return n + len(o.admin.deviceLogins)
}

// APIKeys returns each organisation's name and API key, in seed order, for
// `cloudkey sim --kind kisi` to print.
func (s *Sim) APIKeys() []OrgKey {
	out := make([]OrgKey, 0, len(s.orgs))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, l := range s.loginsByID {
		if l.orgKey {
			out = append(out, OrgKey{OrgID: l.user.org.id, Name: l.user.org.name, APIKey: l.secret})
		}
	}
	// Seed order, not map order.
	ordered := make([]OrgKey, 0, len(out))
	for _, o := range s.orgs {
		for _, k := range out {
			if k.OrgID == o.id {
				ordered = append(ordered, k)
			}
		}
	}
	return ordered
}

// OrgKey is an organisation's API key.
type OrgKey struct {
	OrgID  int
	Name   string
	APIKey string
}
