package kisisim

import (
	"net/http"
	"strconv"
	"time"
)

// createLogin serves POST /logins: the organisation's API key logs in on
// behalf of one of its users (KISI_NOTES §3A). Only device logins can be
// made for other users; password sign-in is not simulated. A user keeps
// at most MaxDeviceLogins device logins: one more removes the least
// recently used.
func (s *Sim) createLogin(w http.ResponseWriter, r *http.Request, caller *login) {
	var body struct {
		Login *struct {
			Type   string  `json:"type"`
			Name   *string `json:"name"`
			Email  string  `json:"email"`
			Expire *bool   `json:"expire"`
		} `json:"login"`
		User map[string]any `json:"user"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.Login == nil || body.User == nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "login and user are required")
		return
	}
	if !caller.orgKey {
		writeError(w, http.StatusForbidden, codeForbidden, "Only an organization's API key can log in on behalf of users.")
		return
	}
	if body.Login.Type != "device" {
		writeError(w, http.StatusForbidden, codeForbidden, "Only device logins can be created on behalf of other users.")
		return
	}
	if body.Login.Email == "" {
		writeError(w, http.StatusUnprocessableEntity, codeUnprocessable, "login.email is required: password sign-in is not simulated")
		return
	}
	u := caller.user.org.userByEmail(body.Login.Email)
	if u == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "User not found.")
		return
	}
	expire := true
	if body.Login.Expire != nil {
		expire = *body.Login.Expire
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(u.deviceLogins) >= MaxDeviceLogins {
		lru := u.deviceLogins[0]
		for _, d := range u.deviceLogins[1:] {
			if d.useSeq < lru.useSeq {
				lru = d
			}
		}
		s.removeLogin(lru)
	}
	s.nextLoginID++
	s.useSeq++
	l := &login{
		id: s.nextLoginID, secret: newSecret(), user: u, typ: "device", name: body.Login.Name,
		expire: expire, created: now, lastUsed: now, useSeq: s.useSeq,
	}
	s.logins[l.secret] = l
	s.loginsByID[l.id] = l
	u.deviceLogins = append(u.deviceLogins, l)
	writeJSON(w, http.StatusOK, createdLoginToJSON(l))
}

// fetchCurrentLogin serves GET /login: the login whose secret was sent
// (without the secret).
func (s *Sim) fetchCurrentLogin(w http.ResponseWriter, _ *http.Request, l *login) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	writeJSON(w, http.StatusOK, loginToJSON(l))
}

// deleteLogin serves DELETE /logins/{id}: a login may delete itself, the
// organisation's API key any device login of its users. The API key
// cannot be deleted through the API (403); another organisation's login
// is not found.
func (s *Sim) deleteLogin(w http.ResponseWriter, r *http.Request, caller *login) {
	id, ok := pathID(w, r, codeNotFound)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.loginsByID[id]
	if l == nil || (l != caller && !(caller.orgKey && l.user.org == caller.user.org)) {
		writeError(w, http.StatusNotFound, codeNotFound, "Login not found.")
		return
	}
	if l.orgKey {
		writeError(w, http.StatusForbidden, codeForbidden, "An API key is revoked in the Kisi web UI.")
		return
	}
	s.removeLogin(l)
	w.WriteHeader(http.StatusNoContent)
}

// fetchUsers serves GET /users with the organisation's API key: the
// organisation's users in seed order (not the admin), email an exact
// match compared ASCII case-insensitively. A user's own login may not
// list users (403).
func (s *Sim) fetchUsers(w http.ResponseWriter, r *http.Request, caller *login) {
	limit, offset, ok := page(w, r, maxUsersLimit)
	if !ok {
		return
	}
	if !caller.orgKey {
		writeError(w, http.StatusForbidden, codeForbidden, "Only an organization's administrators can list its users.")
		return
	}
	users := caller.user.org.users
	if email, ok := r.URL.Query()["email"]; ok {
		users = nil
		if u := caller.user.org.userByEmail(email[0]); u != nil && !u.admin {
			users = append(users, u)
		}
	}
	lo, hi := window(len(users), limit, offset)
	out := make([]userJSON, 0, hi-lo)
	s.mu.RLock()
	for _, u := range users[lo:hi] {
		out = append(out, s.userToJSON(u))
	}
	s.mu.RUnlock()
	writePage(w, out, limit, offset, len(users))
}

// fetchUser serves GET /users/{id} with the organisation's API key: one
// of its users (the admin is not listed, as in GET /users).
func (s *Sim) fetchUser(w http.ResponseWriter, r *http.Request, caller *login) {
	id, ok := pathID(w, r, codeNotFound)
	if !ok {
		return
	}
	if !caller.orgKey {
		writeError(w, http.StatusForbidden, codeForbidden, "Only an organization's administrators can read its users.")
		return
	}
	u := s.usersByID[id]
	if u == nil || u.org != caller.user.org || u.admin {
		writeError(w, http.StatusNotFound, codeNotFound, "User not found.")
		return
	}
	s.mu.RLock()
	out := s.userToJSON(u)
	s.mu.RUnlock()
	writeJSON(w, http.StatusOK, out)
}

// updateUser serves PATCH /users/{id} with the organisation's API key:
// only access_enabled is simulated (the rest of the body is accepted and
// ignored).
func (s *Sim) updateUser(w http.ResponseWriter, r *http.Request, caller *login) {
	id, ok := pathID(w, r, codeNotFound)
	if !ok {
		return
	}
	var body struct {
		User *struct {
			AccessEnabled *bool `json:"access_enabled"`
		} `json:"user"`
	}
	if !decodeBody(w, r, &body, false) {
		return
	}
	if body.User == nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "user is required")
		return
	}
	if !caller.orgKey {
		writeError(w, http.StatusForbidden, codeForbidden, "Only an organization's administrators can update its users.")
		return
	}
	u := s.usersByID[id]
	if u == nil || u.org != caller.user.org || u.admin {
		writeError(w, http.StatusNotFound, codeNotFound, "User not found.")
		return
	}
	if body.User.AccessEnabled != nil {
		s.mu.Lock()
		u.accessEnabled = *body.User.AccessEnabled
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// visibleLocks returns the locks the caller may see in GET /locks: with
// the API key all of the organisation's, with a user's login those the
// user has access to now or later, whether or not the user's access is
// enabled (an unlock then answers fcd8ff). s.mu is held for reading.
func (s *Sim) visibleLocks(caller *login, now time.Time) []*lock {
	u := caller.user
	if u.admin {
		return u.org.locks
	}
	var out []*lock
	for _, l := range u.org.locks {
		if g, ok := u.access[l.id]; ok && (g.until.IsZero() || now.Before(g.until)) {
			out = append(out, l)
		}
	}
	return out
}

// fetchLocks serves GET /locks, filtered by place_id when given.
func (s *Sim) fetchLocks(w http.ResponseWriter, r *http.Request, caller *login) {
	limit, offset, ok := page(w, r, maxLocksLimit)
	if !ok {
		return
	}
	placeID := 0
	if p := r.URL.Query().Get("place_id"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "place_id must be an integer")
			return
		}
		placeID = n
	}
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	locks := s.visibleLocks(caller, now)
	if placeID != 0 {
		var in []*lock
		for _, l := range locks {
			if l.place.id == placeID {
				in = append(in, l)
			}
		}
		locks = in
	}
	lo, hi := window(len(locks), limit, offset)
	out := make([]lockJSON, 0, hi-lo)
	for _, l := range locks[lo:hi] {
		out = append(out, s.lockToJSON(l))
	}
	writePage(w, out, limit, offset, len(locks))
}

// fetchLock serves GET /locks/{id}: any lock of the caller's organisation.
func (s *Sim) fetchLock(w http.ResponseWriter, r *http.Request, caller *login) {
	id, ok := pathID(w, r, codeLockNotFound)
	if !ok {
		return
	}
	l := s.locksByID[id]
	if l == nil || l.org != caller.user.org {
		writeError(w, http.StatusNotFound, codeLockNotFound, "Lock not found.")
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	writeJSON(w, http.StatusOK, s.lockToJSON(l))
}

// fetchPlaces serves GET /places: the caller's organisation's places.
func (s *Sim) fetchPlaces(w http.ResponseWriter, r *http.Request, caller *login) {
	limit, offset, ok := page(w, r, maxLocksLimit)
	if !ok {
		return
	}
	places := caller.user.org.places
	lo, hi := window(len(places), limit, offset)
	out := make([]placeJSON, 0, hi-lo)
	s.mu.RLock()
	for _, p := range places[lo:hi] {
		out = append(out, s.placeToJSON(p))
	}
	s.mu.RUnlock()
	writePage(w, out, limit, offset, len(places))
}

// fetchPlace serves GET /places/{id}: a place of the caller's organisation.
func (s *Sim) fetchPlace(w http.ResponseWriter, r *http.Request, caller *login) {
	id, ok := pathID(w, r, codeNotFound)
	if !ok {
		return
	}
	p := s.placesByID[id]
	if p == nil || p.org != caller.user.org {
		writeError(w, http.StatusNotFound, codeNotFound, "Place not found.")
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	writeJSON(w, http.StatusOK, s.placeToJSON(p))
}

// unlockBody is the optional body of POST /locks/{id}/unlock.
type unlockBody struct {
	Context *struct {
		Location *struct {
			Longitude *float64 `json:"longitude"`
			Latitude  *float64 `json:"latitude"`
		} `json:"location"`
	} `json:"context"`
	Lock *struct {
		ProximityProof *string `json:"proximity_proof"`
	} `json:"lock"`
}

// unlock serves POST /locks/{id}/unlock, refusing as Kisi documents, in
// this order: 404 fad10e for a lock that is not of the caller's
// organisation; 403 fcd8ff when the user's access_enabled or
// scim_access_enabled is off; 403 fcd8ef without access to the lock; 403
// f358de before and f35ade from the end of a time-boxed access; 403
// bb4faa for a reader-restricted lock without lock.proximity_proof; 403
// a3995f for a geofenced lock without context.location; 409 fad001 when
// the lock is locked down; 503 fad107 when it is offline. The API key
// unlocks as the organisation's admin, who has access to every lock.
func (s *Sim) unlock(w http.ResponseWriter, r *http.Request, caller *login) {
	id, ok := pathID(w, r, codeLockNotFound)
	if !ok {
		return
	}
	var body unlockBody
	if !decodeBody(w, r, &body, true) {
		return
	}
	if body.Context != nil && body.Context.Location != nil &&
		(body.Context.Location.Latitude == nil || body.Context.Location.Longitude == nil) {
		writeError(w, http.StatusBadRequest, codeBadRequest, "context.location needs latitude and longitude")
		return
	}
	l := s.locksByID[id]
	u := caller.user
	if l == nil || l.org != u.org {
		writeError(w, http.StatusNotFound, codeLockNotFound, "Lock not found.")
		return
	}
	now := s.now()
	s.mu.RLock()
	status, code, msg := s.refusal(u, l, &body, now)
	s.mu.RUnlock()
	if status != 0 {
		writeError(w, status, code, msg)
		return
	}
	s.recordUnlock(Unlock{OrgID: u.org.id, LockID: l.id, UserID: u.id, Email: u.email, LoginID: caller.id, At: now, ByOrgKey: caller.orgKey})
	writeJSON(w, http.StatusOK, map[string]string{"message": messageUnlocked})
}

// refusal returns why u may not open l now (status 0: it may); s.mu is
// held for reading.
func (s *Sim) refusal(u *user, l *lock, body *unlockBody, now time.Time) (status int, code, msg string) {
	if !u.admin {
		if !u.accessEnabled || !u.scimEnabled {
			return http.StatusForbidden, codeAccessDisabled, "Access disabled."
		}
		g, ok := u.access[l.id]
		if !ok {
			return http.StatusForbidden, codeAccessDenied, "Access denied."
		}
		if !g.from.IsZero() && now.Before(g.from) {
			return http.StatusForbidden, codeNotYetValid, "Access denied: your access is not valid yet."
		}
		if !g.until.IsZero() && !now.Before(g.until) {
			return http.StatusForbidden, codeNoLongerValid, "Access denied: your access is no longer valid."
		}
	}
	if l.reader && (body.Lock == nil || body.Lock.ProximityProof == nil || *body.Lock.ProximityProof == "") {
		return http.StatusForbidden, codeNotCloseEnough, "Access denied: you are not close enough to the reader."
	}
	if l.geofence && (body.Context == nil || body.Context.Location == nil) {
		return http.StatusForbidden, codeTooFarAway, "Access denied: you are too far away."
	}
	if l.lockedDown {
		return http.StatusConflict, codeLockedDown, "The door is locked down."
	}
	if !l.online {
		return http.StatusServiceUnavailable, codeLockOffline, "The wireless lock is offline."
	}
	return 0, "", ""
}
