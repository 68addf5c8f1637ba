package sim

import (
	"crypto/rand"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cloudkey/cloudkey/access"
)

// MaxUnlockTokens bounds the unlock tokens the simulator remembers. When it
// is reached, expired tokens are forgotten; if none has expired, issuing
// is answered 429.
const MaxUnlockTokens = 100_000

// unlockTokens holds the issued cloud-key unlock tokens.
type unlockTokens struct {
	mu      sync.Mutex
	byToken map[string]*unlockToken // guarded by mu
}

// unlockToken is one issued token. Only uses changes after issue.
type unlockToken struct {
	token       string
	userID      int
	credID      int
	entries     []TokenEntry // as issued
	notBefore   time.Time    // zero: no lower bound
	expires     time.Time    // zero: never expires
	description string
	uses        int // guarded by unlockTokens.mu
}

// TokenEntry is one entry an unlock token covers.
type TokenEntry struct {
	EntryID int
	UILabel string
}

// UnlockToken is an issued cloud-key unlock token, as the back door shows
// it.
type UnlockToken struct {
	Token        string
	UserID       int
	CredentialID int
	Entries      []TokenEntry
	NotBefore    time.Time // zero: none was given
	Expires      time.Time // zero: none was given
	Description  string
	Uses         int // doors opened with it
}

// SetClock makes the simulator read the time from now when it decides
// whether an unlock token is valid yet or still, and when it stamps the
// unlocks done with one, so that tests can put it exactly at a window's
// edge. nil restores the real clock. Session tokens always use the real
// clock.
func (s *Sim) SetClock(now func() time.Time) {
	if now == nil {
		s.clock.Store(nil)
		return
	}
	s.clock.Store(&now)
}

func (s *Sim) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// UnlockTokens returns the unlock tokens the simulator remembers, sorted by
// token.
func (s *Sim) UnlockTokens() []UnlockToken {
	s.keyTokens.mu.Lock()
	defer s.keyTokens.mu.Unlock()
	out := make([]UnlockToken, 0, len(s.keyTokens.byToken))
	for _, t := range s.keyTokens.byToken {
		out = append(out, UnlockToken{
			Token: t.token, UserID: t.userID, CredentialID: t.credID,
			Entries: slices.Clone(t.entries), NotBefore: t.notBefore, Expires: t.expires,
			Description: t.description, Uses: t.uses,
		})
	}
	slices.SortFunc(out, func(a, b UnlockToken) int {
		switch {
		case a.Token < b.Token:
			return -1
		case a.Token > b.Token:
			return 1
		}
		return 0
	})
	return out
}

type tokenRequest struct {
	EntryID   *int `json:"entryId"`
	EntryData []struct {
		EntryID *int   `json:"entryId"`
		UILabel string `json:"uiLabel"`
	} `json:"entryData"`
	NotBefore   *string `json:"notBefore"`
	Expires     *string `json:"expires"`
	Description *string `json:"description"`
	Shorten     *bool   `json:"shorten"`
}

type unlockTokenJSON struct {
	CloudKeyUnlockToken string `json:"cloudKeyUnlockToken"`
	APIURL              string `json:"apiUrl"`
	WebURL              string `json:"webUrl"`
	FullWebURL          string `json:"fullWebUrl"`
}

// maxTokenEntries bounds the entries of one token.
const maxTokenEntries = 100

// generateUnlockToken serves POST .../credentials/{credentialId}/generateCloudKeyUnlockToken
// with {"entryData": [{"entryId": 101, "uiLabel": "Lobby"}], "notBefore",
// "expires", "description"} (or a single "entryId"). It authorizes as a
// cloud-key unlock does, for every entry, at issue time: 404 for an unknown
// user or entry; 403 unless the user is active, the credential is that
// user's cloud key and each entry is assigned to the user. Use checks all of
// that again.
func (s *Sim) generateUnlockToken(w http.ResponseWriter, r *http.Request) {
	u, ok := s.pathUser(w, r)
	if !ok {
		return
	}
	credID, ok := pathID(w, r.PathValue("credentialId"), "credentialId")
	if !ok {
		return
	}
	var body tokenRequest
	if !decodeBody(w, r, &body) {
		return
	}
	t := &unlockToken{userID: u.id, credID: credID}
	if body.EntryID != nil {
		t.entries = append(t.entries, TokenEntry{EntryID: *body.EntryID})
	}
	for i, d := range body.EntryData {
		if d.EntryID == nil {
			badRequest(w, "entryData["+strconv.Itoa(i)+"].entryId is required")
			return
		}
		t.entries = append(t.entries, TokenEntry{EntryID: *d.EntryID, UILabel: d.UILabel})
	}
	if len(t.entries) == 0 || len(t.entries) > maxTokenEntries {
		badRequest(w, "entryId or entryData (1 to "+strconv.Itoa(maxTokenEntries)+" entries) is required")
		return
	}
	var err error
	if t.notBefore, err = parseTokenTime(body.NotBefore); err != nil {
		badRequest(w, "notBefore: "+err.Error())
		return
	}
	if t.expires, err = parseTokenTime(body.Expires); err != nil {
		badRequest(w, "expires: "+err.Error())
		return
	}
	if !t.notBefore.IsZero() && !t.expires.IsZero() && !t.expires.After(t.notBefore) {
		badRequest(w, "expires must be after notBefore")
		return
	}
	if body.Description != nil {
		if utf8.RuneCountInString(*body.Description) > 100 {
			badRequest(w, "description must be at most 100 characters")
			return
		}
		t.description = *body.Description
	}
	for _, e := range t.entries {
		if s.dir.entriesByID[e.EntryID] == nil {
			notFound(w, "entry "+strconv.Itoa(e.EntryID)+" not found")
			return
		}
	}
	if msg := s.keyRefusal(u, credID, t.entries); msg != "" {
		forbidden(w, msg)
		return
	}

	t.token = rand.Text() + rand.Text()
	if !s.keyTokens.add(t, s.now()) {
		writeError(w, http.StatusTooManyRequests, "TooManyRequestsError", "too many unlock tokens")
		return
	}
	writeJSON(w, http.StatusCreated, dataEnvelope{
		Data: unlockTokenJSON{
			CloudKeyUnlockToken: t.token,
			APIURL:              "http://" + r.Host + "/tokens/cloudKeyUnlockTokens/" + t.token + "/use",
			WebURL:              "https://control.openpath.com/cloudKeyUnlock?shortCode=" + t.token[:10],
			FullWebURL:          "https://control.openpath.com/cloudKeyUnlock?token=" + t.token,
		},
		Meta: emptyMeta,
	})
}

// keyRefusal says why u may not open entries with credential credID, or ""
// when it may.
func (s *Sim) keyRefusal(u *user, credID int, entries []TokenEntry) string {
	s.dir.mu.RLock()
	defer s.dir.mu.RUnlock()
	if u.status != access.StatusActive {
		return "user " + strconv.Itoa(u.id) + " is not active (status " + string(u.status) + ")"
	}
	if !u.cloudKey(credID) {
		return "credential " + strconv.Itoa(credID) + " is not a cloud key of user " + strconv.Itoa(u.id)
	}
	for _, e := range entries {
		if !u.hasEntry(e.EntryID) {
			return "user " + strconv.Itoa(u.id) + " has no access to entry " + strconv.Itoa(e.EntryID)
		}
	}
	return ""
}

// parseTokenTime parses a notBefore or expires value: null, an RFC 3339
// date-time or a bare date (midnight UTC).
func parseTokenTime(v *string) (time.Time, error) {
	if v == nil {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, *v); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, *v)
}

// add stores t, first forgetting expired tokens when the store is full.
func (ts *unlockTokens) add(t *unlockToken, now time.Time) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.byToken) >= MaxUnlockTokens {
		for k, old := range ts.byToken {
			if !old.expires.IsZero() && !now.Before(old.expires) {
				delete(ts.byToken, k)
			}
		}
		if len(ts.byToken) >= MaxUnlockTokens {
			return false
		}
	}
	ts.byToken[t.token] = t
	return true
}

func (ts *unlockTokens) get(token string) *unlockToken {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.byToken[token]
}

// useUnlockToken serves POST /tokens/cloudKeyUnlockTokens/{token}/use with
// {"entryId": 101}. It needs no session token. 404 for an unknown token or
// entry; 403 before notBefore, from expires on (on the simulator's clock),
// for an entry the token does not cover, or when the user the token was
// issued on could no longer open the entry with that cloud key. A 204 is
// recorded (see Unlocks).
func (s *Sim) useUnlockToken(w http.ResponseWriter, r *http.Request) {
	t := s.keyTokens.get(r.PathValue("token"))
	if t == nil {
		notFound(w, "unlock token not found")
		return
	}
	var body struct {
		EntryID *int `json:"entryId"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if body.EntryID == nil {
		badRequest(w, "entryId is required")
		return
	}
	e := s.dir.entriesByID[*body.EntryID]
	if e == nil {
		notFound(w, "entry "+strconv.Itoa(*body.EntryID)+" not found")
		return
	}
	now := s.now()
	switch {
	case !t.notBefore.IsZero() && now.Before(t.notBefore):
		forbidden(w, "unlock token is not valid before "+timestamp(t.notBefore))
		return
	case !t.expires.IsZero() && !now.Before(t.expires):
		forbidden(w, "unlock token expired at "+timestamp(t.expires))
		return
	case !slices.ContainsFunc(t.entries, func(te TokenEntry) bool { return te.EntryID == e.id }):
		forbidden(w, "unlock token does not cover entry "+strconv.Itoa(e.id))
		return
	}
	u := s.dir.usersByID[t.userID]
	if msg := s.keyRefusal(u, t.credID, []TokenEntry{{EntryID: e.id}}); msg != "" {
		forbidden(w, msg)
		return
	}

	s.keyTokens.mu.Lock()
	t.uses++
	s.keyTokens.mu.Unlock()
	s.recordUnlock(Unlock{UserID: u.id, Email: u.email, CredentialID: t.credID, EntryID: e.id, At: now, ViaToken: true})
	w.WriteHeader(http.StatusNoContent)
}
