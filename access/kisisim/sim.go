package kisisim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/cloudkey/cloudkey/access/simfault"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Sim is a simulated Kisi serving one or more organisations over HTTP. It
// is safe for concurrent use.
type Sim struct {
	stamp   string // created_at/updated_at of every seeded object: the simulator's start
	handler http.Handler

	// mu guards the mutable state of the directory: user flags and
	// access, lock states, and the logins.
	mu          sync.RWMutex
	orgs        []*org
	orgsByID    map[int]*org
	locksByID   map[int]*lock
	placesByID  map[int]*place
	usersByID   map[int]*user
	logins      map[string]*login // by secret
	loginsByID  map[int]*login
	nextLoginID int
	useSeq      uint64 // orders the uses of logins, for the LRU cap

	calls  [numOps]atomic.Int64
	faults *simfault.Injector[Op]
	limits limiter

	unlockMu sync.Mutex
	unlocks  unlockLog // guarded by unlockMu

	clock atomic.Pointer[func() time.Time]

	closeOnce sync.Once
	closed    chan struct{}
}

type org struct {
	id     int
	name   string
	domain string
	admin  *user
	places []*place
	locks  []*lock
	users  []*user // listed by GET /users, in seed order; not the admin
	// byEmail indexes users and the admin by lowerASCII(email).
	byEmail map[string]*user
}

type place struct {
	id   int
	name string
	org  *org
}

type lock struct {
	id    int
	name  string
	place *place
	org   *org
	// guarded by Sim.mu
	lockedDown      bool
	lockedDownSince time.Time
	online          bool
	reader          bool
	geofence        bool
	configured      bool
}

type user struct {
	id    int
	email string
	name  string
	org   *org
	admin bool // owns the org's API key: may open every lock of the org
	// guarded by Sim.mu
	accessEnabled bool
	scimEnabled   bool
	access        map[int]grant // by lock id
	deviceLogins  []*login
}

// grant is a user's access to one lock; a zero bound is open.
type grant struct {
	from, until time.Time
}

type login struct {
	id      int
	secret  string
	user    *user
	orgKey  bool // the organisation's API key
	typ     string
	name    *string
	expire  bool
	created time.Time
	// guarded by Sim.mu
	lastUsed time.Time
	useSeq   uint64
}

// MaxDeviceLogins is how many device logins Kisi keeps per user; creating
// one more removes the least recently used.
const MaxDeviceLogins = 40

// DeviceLoginTTL is how long a device login created with expire:true lasts
// without use.
const DeviceLoginTTL = 14 * 24 * time.Hour

// firstLoginID numbers the logins POST /logins creates.
const firstLoginID = 50_000_000

// New builds a simulator holding seed's organisations. It validates the
// seed and keeps no reference to it. The per-user rate limit is the
// seed's: unless it says otherwise, on (5/s, burst 5) as on Kisi.
func New(seed Seed) (*Sim, error) {
	if err := seed.Validate(); err != nil {
		return nil, fmt.Errorf("kisisim: %w", err)
	}
	now := time.Now()
	s := &Sim{
		stamp:       timestamp(now),
		orgsByID:    map[int]*org{},
		locksByID:   map[int]*lock{},
		placesByID:  map[int]*place{},
		usersByID:   map[int]*user{},
		logins:      map[string]*login{},
		loginsByID:  map[int]*login{},
		nextLoginID: firstLoginID,
		closed:      make(chan struct{}),
	}
	for _, so := range seed.Orgs {
		o := &org{id: so.ID, name: so.Name, domain: so.Domain, byEmail: map[string]*user{}}
		if o.domain == "" {
			o.domain = "org-" + strconv.Itoa(so.ID)
		}
		o.admin = &user{
			id: so.Admin.UserID, email: so.Admin.Email, name: so.Admin.Name, org: o, admin: true,
			accessEnabled: true, scimEnabled: true, access: map[int]grant{},
		}
		s.usersByID[o.admin.id] = o.admin
		o.byEmail[lowerASCII(o.admin.email)] = o.admin
		key := &login{id: so.APIKeyLoginID, secret: so.APIKey, user: o.admin, orgKey: true, typ: "api", created: now, lastUsed: now}
		s.logins[key.secret] = key
		s.loginsByID[key.id] = key
		for _, sp := range so.Places {
			p := &place{id: sp.ID, name: sp.Name, org: o}
			o.places = append(o.places, p)
			s.placesByID[p.id] = p
		}
		for _, sl := range so.Locks {
			l := &lock{
				id: sl.ID, name: sl.Name, place: s.placesByID[sl.PlaceID], org: o,
				lockedDown: sl.LockedDown, online: !sl.Offline, reader: sl.ReaderRestrictionEnabled,
				geofence: sl.GeofenceRestrictionEnabled, configured: !sl.Unconfigured,
			}
			if l.lockedDown {
				l.lockedDownSince = now
			}
			o.locks = append(o.locks, l)
			s.locksByID[l.id] = l
		}
		for _, su := range so.Users {
			u := &user{
				id: su.ID, email: su.Email, name: su.Name, org: o,
				accessEnabled: !su.AccessDisabled, scimEnabled: !su.SCIMAccessDisabled,
				access: map[int]grant{},
			}
			for _, a := range su.Access {
				var g grant
				if a.ValidFrom != nil {
					g.from = *a.ValidFrom
				}
				if a.ValidUntil != nil {
					g.until = *a.ValidUntil
				}
				u.access[a.LockID] = g
			}
			o.users = append(o.users, u)
			o.byEmail[lowerASCII(u.email)] = u
			s.usersByID[u.id] = u
		}
		s.orgs = append(s.orgs, o)
		s.orgsByID[o.id] = o
	}
	s.faults = newFaults(s.closed)
	if rl := seed.RateLimit; rl != nil {
		s.limits.set(rl.PerSecond, rl.Burst)
	} else {
		s.limits.set(DefaultRateLimit, DefaultRateBurst)
	}
	s.handler = s.routes()
	return s, nil
}

// Handler returns the simulator's HTTP handler: the Kisi REST paths at the
// root, as https://api.kisi.io serves them.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close releases requests held by Hang or delayed by latency (they get 503)
// and makes later hangs return at once. The simulator keeps serving
// otherwise; Server.Close also stops the listener.
func (s *Sim) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// now is the simulator's clock (SetClock): what access windows and login
// expiry are checked against.
func (s *Sim) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	s.handle(mux, "POST /logins", OpCreateLogin, s.createLogin)
	s.handle(mux, "GET /login", OpFetchCurrentLogin, s.fetchCurrentLogin)
	s.handle(mux, "DELETE /logins/{id}", OpDeleteLogin, s.deleteLogin)
	s.handle(mux, "GET /users", OpFetchUsers, s.fetchUsers)
	s.handle(mux, "GET /users/{id}", OpFetchUser, s.fetchUser)
	s.handle(mux, "PATCH /users/{id}", OpUpdateUser, s.updateUser)
	s.handle(mux, "GET /locks", OpFetchLocks, s.fetchLocks)
	s.handle(mux, "GET /locks/{id}", OpFetchLock, s.fetchLock)
	s.handle(mux, "POST /locks/{id}/unlock", OpUnlock, s.unlock)
	s.handle(mux, "GET /places", OpFetchPlaces, s.fetchPlaces)
	s.handle(mux, "GET /places/{id}", OpFetchPlace, s.fetchPlace)
	s.handle(mux, "GET /role_assignments", OpFetchRoleAssignments, s.fetchRoleAssignments)
	s.handle(mux, "GET /group_locks", OpFetchGroupLocks, s.fetchGroupLocks)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such path: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// authHandler is an operation's handler, given the login that
// authenticated the request.
type authHandler func(w http.ResponseWriter, r *http.Request, l *login)

// handle registers one operation: every request is counted, then faults
// are injected, then the Authorization header is checked (401), then the
// user's rate limit (429), and only then does h run.
func (s *Sim) handle(mux *http.ServeMux, pattern string, op Op, h authHandler) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.calls[op].Add(1)
		if !s.faults.Apply(w, r, op) {
			return
		}
		l, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if !s.limits.allow(l.user.id) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, codeRateLimited,
				"Rate limit exceeded: at most "+s.limits.describe()+" requests per second per user.")
			return
		}
		h(w, r, l)
	})
}

// loginPrefix is the Authorization scheme of logins and API keys.
const loginPrefix = "KISI-LOGIN "

// authenticate finds the login whose secret the Authorization header
// carries and marks it used, answering 401 when there is none.
func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request) (*login, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "Authorization header missing.")
		return nil, false
	}
	secret, ok := strings.CutPrefix(h, loginPrefix)
	if !ok || secret == "" {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "Unsupported Authorization scheme: use KISI-LOGIN <secret>.")
		return nil, false
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logins[secret]
	if l != nil && l.expire && now.Sub(l.lastUsed) > DeviceLoginTTL {
		s.removeLogin(l)
		l = nil
	}
	if l == nil {
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "Invalid or expired login.")
		return nil, false
	}
	l.lastUsed = now
	s.useSeq++
	l.useSeq = s.useSeq
	return l, true
}

// removeLogin forgets a device login; s.mu is held.
func (s *Sim) removeLogin(l *login) {
	delete(s.logins, l.secret)
	delete(s.loginsByID, l.id)
	u := l.user
	for i, d := range u.deviceLogins {
		if d == l {
			u.deviceLogins = append(u.deviceLogins[:i], u.deviceLogins[i+1:]...)
			break
		}
	}
}

// newSecret returns a random login secret.
func newSecret() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lowerASCII lower-cases ASCII letters only, as the email filter compares.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

// userByEmail returns the user of o with this email (ASCII
// case-insensitively), the admin included. Emails never change, so no
// lock is needed.
func (o *org) userByEmail(email string) *user {
	return o.byEmail[lowerASCII(email)]
}
