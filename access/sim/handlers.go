package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

// listUsers serves GET /orgs/{orgId}/users. The filter fields it knows are
// identity.email (a case-insensitive contains match, as Openpath's appears
// to be, so clients must compare exactly themselves) and status (exact).
// Other filter fields are answered 400 rather than ignored, so a client
// relying on one finds out. Users come in seed order; sort, order, q and
// cursors are ignored.
func (s *Sim) listUsers(w http.ResponseWriter, r *http.Request) {
	limit, offset, ok := page(w, r)
	if !ok {
		return
	}
	terms, err := parseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	candidates := []int(nil) // indices into dir.users; nil means all
	var statuses []access.Status
	for _, t := range terms {
		switch t.field {
		case "identity.email":
			candidates = intersect(candidates, s.dir.emails.contains(t.value))
		case "status":
			statuses = append(statuses, access.Status(t.value))
		default:
			badRequest(w, "the simulator cannot filter users by "+t.field)
			return
		}
	}
	n := len(candidates)
	if candidates == nil {
		n = len(s.dir.users)
	}

	data := make([]userJSON, 0, min(limit, n))
	filtered := 0
	s.dir.mu.RLock()
	for k := range n {
		u := s.dir.users[k]
		if candidates != nil {
			u = s.dir.users[candidates[k]]
		}
		if !matchesAll(u.status, statuses) {
			continue
		}
		if filtered >= offset && len(data) < limit {
			data = append(data, u.toJSON(s.stamp))
		}
		filtered++
	}
	s.dir.mu.RUnlock()

	writeJSON(w, http.StatusOK, listEnvelope{
		TotalCount:    len(s.dir.users),
		FilteredCount: filtered,
		Cursors:       &cursorsJSON{HasNextPage: offset+len(data) < filtered},
		Data:          data,
		Meta:          emptyMeta,
	})
}

// intersect returns the sorted indices in both a and b; a nil a means "all".
func intersect(a, b []int) []int {
	if a == nil {
		return b
	}
	out := []int{}
	for _, i := range b {
		if _, ok := slices.BinarySearch(a, i); ok {
			out = append(out, i)
		}
	}
	return out
}

func matchesAll(status access.Status, want []access.Status) bool {
	for _, w := range want {
		if status != w {
			return false
		}
	}
	return true
}

// setUserStatus serves PUT /orgs/{orgId}/users/{userId}/status.
func (s *Sim) setUserStatus(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	var body struct {
		Status access.Status `json:"status"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if !validStatus(body.Status) {
		badRequest(w, `status must be "A", "S" or "I"`)
		return
	}
	s.dir.mu.Lock()
	u.status = body.Status
	s.dir.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func validStatus(st access.Status) bool {
	return st == access.StatusActive || st == access.StatusSuspended || st == access.StatusInactive
}

// listCredentialTypes serves GET /orgs/{orgId}/credentialTypes.
func (s *Sim) listCredentialTypes(w http.ResponseWriter, r *http.Request) {
	limit, offset, ok := page(w, r)
	if !ok {
		return
	}
	lo, hi := window(len(s.dir.credTypes), limit, offset)
	data := make([]credentialTypeJSON, 0, hi-lo)
	for _, t := range s.dir.credTypes[lo:hi] {
		data = append(data, credentialTypeJSON(t))
	}
	writeJSON(w, http.StatusOK, listEnvelope{
		TotalCount:    len(s.dir.credTypes),
		FilteredCount: len(s.dir.credTypes),
		Data:          data,
		Meta:          emptyMeta,
	})
}

// listCredentials serves GET /orgs/{orgId}/users/{userId}/credentials.
func (s *Sim) listCredentials(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	limit, offset, ok := page(w, r)
	if !ok {
		return
	}
	s.dir.mu.RLock()
	total := len(u.creds)
	lo, hi := window(total, limit, offset)
	data := make([]credentialJSON, 0, hi-lo)
	for _, c := range u.creds[lo:hi] {
		data = append(data, c.toJSON(s.stamp))
	}
	s.dir.mu.RUnlock()
	writeJSON(w, http.StatusOK, listEnvelope{TotalCount: total, FilteredCount: total, Data: data, Meta: emptyMeta})
}

// createCredential serves POST /orgs/{orgId}/users/{userId}/credentials:
// {"credentialTypeId": 7, "cloudKey": {"name": "..."}}. The name is taken
// from the object named after the type's modelName. Like Openpath (as far
// as is known), it does not stop a user from having two cloud keys: that is
// the client's business.
func (s *Sim) createCredential(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	var body map[string]json.RawMessage
	if !decodeBody(w, r, &body) {
		return
	}
	var typeID int
	if raw, found := body["credentialTypeId"]; !found || json.Unmarshal(raw, &typeID) != nil {
		badRequest(w, "credentialTypeId is required and must be an integer")
		return
	}
	typ := s.dir.credTypesByID[typeID]
	if typ == nil {
		badRequest(w, "credential type "+strconv.Itoa(typeID)+" does not exist")
		return
	}
	name := typ.Name
	if raw, found := body[typ.ModelName]; found {
		var named struct {
			Name *string `json:"name"`
		}
		if err := json.Unmarshal(raw, &named); err != nil {
			badRequest(w, typ.ModelName+" must be an object: "+err.Error())
			return
		}
		if named.Name != nil {
			name = strings.TrimSpace(*named.Name)
			if name == "" || len(name) > 100 {
				badRequest(w, typ.ModelName+".name must be 1 to 100 characters")
				return
			}
		}
	}

	s.dir.mu.Lock()
	c := &credential{id: s.dir.nextCredID, typ: typ, name: name}
	s.dir.nextCredID++
	u.creds = append(u.creds, c)
	s.dir.mu.Unlock()
	writeJSON(w, http.StatusCreated, dataEnvelope{Data: c.toJSON(s.stamp), Meta: emptyMeta})
}

// listUserEntries serves GET /orgs/{orgId}/users/{userId}/entries. The
// published spec declares no limit/offset here; the simulator honours them
// anyway and, like every list, returns at most 1000 items per page.
func (s *Sim) listUserEntries(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	limit, offset, ok := page(w, r)
	if !ok {
		return
	}
	s.dir.mu.RLock()
	total := len(u.entryIDs)
	lo, hi := window(total, limit, offset)
	data := make([]*entryJSON, 0, hi-lo)
	for _, id := range u.entryIDs[lo:hi] {
		data = append(data, &s.dir.entriesByID[id].json)
	}
	s.dir.mu.RUnlock()
	writeJSON(w, http.StatusOK, listEnvelope{TotalCount: total, FilteredCount: total, Data: data, Meta: emptyMeta})
}

// listEntries serves GET /orgs/{orgId}/entries, in id order. It can filter
// by name (case-insensitive contains).
func (s *Sim) listEntries(w http.ResponseWriter, r *http.Request) {
	limit, offset, ok := page(w, r)
	if !ok {
		return
	}
	terms, err := parseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	var names []string
	for _, t := range terms {
		if t.field != "name" {
			badRequest(w, "the simulator cannot filter entries by "+t.field)
			return
		}
		names = append(names, strings.ToLower(t.value))
	}
	data := make([]*entryJSON, 0, min(limit, len(s.dir.entries)))
	filtered := 0
	for _, e := range s.dir.entries {
		if !containsAll(strings.ToLower(e.name), names) {
			continue
		}
		if filtered >= offset && len(data) < limit {
			data = append(data, &e.json)
		}
		filtered++
	}
	writeJSON(w, http.StatusOK, listEnvelope{
		TotalCount:    len(s.dir.entries),
		FilteredCount: filtered,
		Cursors:       &cursorsJSON{HasNextPage: offset+len(data) < filtered},
		Data:          data,
		Meta:          emptyMeta,
	})
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// unlock serves POST .../credentials/{credentialId}/cloudKeyEntryUnlock
// with {"entryId": 101}. It authorizes as Openpath does: 404 for an unknown
// user or entry; 403 unless the user is active, the credential is that
// user's cloud key and the entry is assigned to the user. A 204 is recorded
// (see Unlocks).
func (s *Sim) unlock(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	credID, ok := pathID(w, r.PathValue("credentialId"), "credentialId")
	if !ok {
		return
	}
	entryID, ok := unlockEntryID(w, r)
	if !ok {
		return
	}
	e := s.dir.entriesByID[entryID]
	if e == nil {
		notFound(w, "entry "+strconv.Itoa(entryID)+" not found")
		return
	}

	s.dir.mu.RLock()
	status, isKey, assigned := u.status, u.cloudKey(credID), u.hasEntry(e.id)
	s.dir.mu.RUnlock()
	switch {
	case status != access.StatusActive:
		forbidden(w, "user "+strconv.Itoa(u.id)+" is not active (status "+string(status)+")")
		return
	case !isKey:
		forbidden(w, "credential "+strconv.Itoa(credID)+" is not a cloud key of user "+strconv.Itoa(u.id))
		return
	case !assigned:
		forbidden(w, "user "+strconv.Itoa(u.id)+" has no access to entry "+strconv.Itoa(e.id))
		return
	}

	s.recordUnlock(Unlock{UserID: u.id, Email: u.email, CredentialID: credID, EntryID: e.id, At: time.Now()})
	w.WriteHeader(http.StatusNoContent)
}

// unlockEntryID reads cloudKeyEntryUnlock's body, {"entryId": 101} with an
// optional description. The exact form cloudkey's client sends,
// {"entryId":101}, is parsed by hand: in load tests the simulator shares
// the cores with cloudkey, and decoding JSON by reflection cost more than
// the rest of the handler. Any other body is decoded as every body is, so
// malformed ones get the same answers.
func unlockEntryID(w http.ResponseWriter, r *http.Request) (int, bool) {
	buf := make([]byte, 64)
	n, err := io.ReadFull(r.Body, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF { // the whole body is in buf
		if id, ok := quickEntryID(buf[:n]); ok {
			return id, true
		}
	}
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		badRequest(w, "malformed JSON body: "+err.Error()) // as decodeBody answers a failed read
		return 0, false
	}
	rest := http.MaxBytesReader(w, r.Body, maxBodyBytes-int64(n))
	var body struct {
		EntryID     *int    `json:"entryId"`
		Description *string `json:"description"`
	}
	if !decodeFrom(w, io.MultiReader(bytes.NewReader(buf[:n]), rest), &body) {
		return 0, false
	}
	if body.EntryID == nil {
		badRequest(w, "entryId is required")
		return 0, false
	}
	return *body.EntryID, true
}

// quickEntryID parses exactly {"entryId":N}, N a decimal integer without
// sign or leading zero that fits an int.
func quickEntryID(b []byte) (int, bool) {
	const prefix = `{"entryId":`
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix || b[len(b)-1] != '}' {
		return 0, false
	}
	digits := b[len(prefix) : len(b)-1]
	if len(digits) > 18 || digits[0] == '0' {
		return 0, false
	}
	id := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		id = id*10 + int(c-'0')
	}
	return id, true
}
