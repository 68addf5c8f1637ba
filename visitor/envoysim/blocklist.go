package envoysim

import (
	"fmt"
	"time"
)

// Envoy's block list: a visitor who matches it at the front desk is not
// signed in; Envoy delivers entry_blacklist_review for the entry while
// security reviews it, and entry_blacklist_deny when security (or the
// block list itself) denies it. The payload is the entry's, as for a
// sign-in (the SDK's EntryPayload), linked to the invite for an invited
// visitor.

// Block-list event names.
const (
	EventBlacklistReview = "entry_blacklist_review"
	EventBlacklistDeny   = "entry_blacklist_deny"
)

// SignInFlagged is SignIn for an invitee who matches the block list: the
// entry is created, linked to the invite, and entry_blacklist_review is
// delivered before returning instead of entry_sign_in. It returns the
// entry id.
func (s *Sim) SignInFlagged(inviteID string) (string, error) {
	s.mu.Lock()
	inv, ok := s.invites[inviteID]
	if !ok || inv.Removed {
		s.mu.Unlock()
		return "", fmt.Errorf("envoysim: no invite %s", inviteID)
	}
	e := &Entry{
		ID: s.newID(), LocationID: inv.LocationID, FlowID: inv.FlowID, InviteID: inv.ID,
		FullName: inv.FullName, Email: inv.Email, Phone: inv.Phone, UserData: copyMap(inv.UserData),
		SignedIn: time.Now().UTC().Truncate(time.Second),
	}
	inv.EntryID = e.ID
	s.entries[e.ID] = e
	body := s.entryEvent(EventBlacklistReview, e)
	s.mu.Unlock()
	return e.ID, s.deliverNow(EventBlacklistReview, e.ID, body)
}

// WalkInFlagged is WalkIn for a visitor who matches the block list:
// entry_blacklist_review is delivered instead of entry_sign_in. It
// returns the entry id.
func (s *Sim) WalkInFlagged(locationID string, v Visitor) (string, error) {
	return s.walkIn(locationID, v, EventBlacklistReview)
}

// Deny is security denying entry entryID (flagged, or signed in and found
// on the block list afterwards): entry_blacklist_deny is delivered before
// returning.
func (s *Sim) Deny(entryID string) error {
	s.mu.Lock()
	e, ok := s.entries[entryID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("envoysim: no entry %s", entryID)
	}
	body := s.entryEvent(EventBlacklistDeny, e)
	s.mu.Unlock()
	return s.deliverNow(EventBlacklistDeny, entryID, body)
}
