package sim

import (
	"fmt"
	"github.com/cloudkey/cloudkey/access/simfault"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
)

// Sim is a simulated Openpath organisation served over HTTP. It is safe for
// concurrent use; reads take no exclusive lock.
type Sim struct {
	dir     *directory
	account ServiceAccount
	stamp   string // createdAt/updatedAt of every object: the simulator's start
	handler http.Handler

	calls  [numOps]atomic.Int64
	faults *simfault.Injector[Op]

	// timingOn mirrors timings.on, so that a request checks it without a lock.
	timingOn atomic.Bool
	timings  timings
	load     inFlight // requests being served (concurrency.go)

	tokens    sync.Map // token string → expiry in Unix nanoseconds (int64)
	tokenTTL  atomic.Int64
	lastSweep atomic.Int64

	unlockMu sync.Mutex
	unlocks  unlockLog // guarded by unlockMu

	// serviceUser is the user whose email is the service account's, or
	// nil: the login names it in tokenScopeList and unlock tokens are
	// issued on its cloud key.
	serviceUser *user
	clock       atomic.Pointer[func() time.Time]
	keyTokens   unlockTokens

	closeOnce sync.Once
	closed    chan struct{}
}

// New builds a simulator holding seed's organisation. It validates the seed
// and keeps no reference to it.
func New(seed Seed) (*Sim, error) {
	if err := seed.Validate(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	s := &Sim{
		dir:     newDirectory(seed),
		account: seed.ServiceAccount,
		stamp:   timestamp(time.Now()),
		closed:  make(chan struct{}),
	}
	s.faults = newFaults(s.closed)
	s.SetTokenTTL(DefaultTokenTTL)
	if us := s.dir.byEmail[identity.FoldEmail(seed.ServiceAccount.Email)]; len(us) == 1 {
		s.serviceUser = us[0]
	}
	s.keyTokens.byToken = map[string]*unlockToken{}
	s.handler = s.load.wrap(s.routes())
	return s, nil
}

// Handler returns the simulator's HTTP handler: the Openpath REST paths at
// the root, as https://api.openpath.com serves them.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close releases requests held by Hang or delayed by latency (they get 503)
// and makes later hangs return at once. The simulator keeps serving
// otherwise; Server.Close also stops the listener.
func (s *Sim) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	s.handle(mux, "POST /auth/login", OpLogin, s.login)
	// The published spec has /auth/accessTokens/refresh; Openpath's docs
	// and clients name it refreshLogin.
	s.handle(mux, "POST /auth/accessTokens/refresh", OpRefreshLogin, s.refreshLogin)
	s.handle(mux, "POST /auth/refreshLogin", OpRefreshLogin, s.refreshLogin)
	s.handle(mux, "GET /orgs/{orgId}/users", OpListUsers, s.listUsers)
	s.handle(mux, "PUT /orgs/{orgId}/users/{userId}/status", OpSetUserStatus, s.setUserStatus)
	s.handle(mux, "GET /orgs/{orgId}/credentialTypes", OpListCredentialTypes, s.listCredentialTypes)
	s.handle(mux, "GET /orgs/{orgId}/users/{userId}/credentials", OpListCredentials, s.listCredentials)
	s.handle(mux, "POST /orgs/{orgId}/users/{userId}/credentials", OpCreateCredential, s.createCredential)
	s.handle(mux, "GET /orgs/{orgId}/users/{userId}/entries", OpListUserEntries, s.listUserEntries)
	s.handle(mux, "GET /orgs/{orgId}/entries", OpListEntries, s.listEntries)
	s.handle(mux, "POST /orgs/{orgId}/users/{userId}/credentials/{credentialId}/cloudKeyEntryUnlock", OpUnlock, s.unlock)
	s.handle(mux, "POST /orgs/{orgId}/users/{userId}/credentials/{credentialId}/generateCloudKeyUnlockToken", OpGenerateUnlockToken, s.generateUnlockToken)
	s.handle(mux, "POST /tokens/cloudKeyUnlockTokens/{token}/use", OpUseUnlockToken, s.useUnlockToken)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		notFound(w, "no such path: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// handle registers one operation: every request is counted, then faults
// are injected, then (except for login and the use of an unlock token,
// whose credential is in the path) the token is checked, then the org id
// of the path, and only then does h run.
func (s *Sim) handle(mux *http.ServeMux, pattern string, op Op, h http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.calls[op].Add(1)
		if s.timingOn.Load() {
			start := time.Now()
			defer func() { s.recordTiming(op, time.Since(start)) }()
		}
		if !s.faults.Apply(w, r, op) {
			return
		}
		if op != OpLogin && op != OpUseUnlockToken {
			if _, ok := s.authenticate(w, r); !ok {
				return
			}
		}
		if org := r.PathValue("orgId"); org != "" {
			id, ok := pathID(w, org, "orgId")
			if !ok {
				return
			}
			if id != s.dir.org.ID {
				notFound(w, "org "+org+" not found")
				return
			}
		}
		h(w, r)
	})
}

// pathID parses a numeric path parameter, answering 400 when it is not one.
func pathID(w http.ResponseWriter, s, name string) (int, bool) {
	id, err := strconv.Atoi(s)
	if err != nil || id <= 0 {
		badRequest(w, name+" must be a positive integer")
		return 0, false
	}
	return id, true
}

// pathUser returns the user named by the userId path parameter, answering
// 400 or 404 when there is none.
func (s *Sim) pathUser(w http.ResponseWriter, r *http.Request) (*user, bool) {
	id, ok := pathID(w, r.PathValue("userId"), "userId")
	if !ok {
		return nil, false
	}
	u := s.dir.usersByID[id]
	if u == nil {
		notFound(w, "user "+strconv.Itoa(id)+" not found")
		return nil, false
	}
	return u, true
}
