package visitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/unlock"
)

// State is where a pass is in its life, as the guest page shows it.
type State string

// States.
const (
	StateUpcoming State = "UPCOMING"
	StateActive   State = "ACTIVE"
	StateEnded    State = "ENDED"
)

// Messages shown to guests.
const (
	MessageEnded     = "This pass has ended"
	MessageNotHere   = "This pass does not open this door"
	messageStartsFmt = "Your pass starts at %s"
)

// View is what the guest page shows for a link token.
//
// An unknown token and an ended pass give the same View (State ended,
// MessageEnded, every other field empty), so the page is no oracle for
// which tokens exist or existed.
type View struct {
	State State
	// Message explains a pass that cannot be used now ("Your pass starts
	// at ...", "This pass has ended"); empty when it is active.
	Message      string
	VisitorName  string
	LocationName string
	LogoURL      string
	Instructions string
	// Start and End bound the window [Start, End), in TimeZone.
	Start, End time.Time
	TimeZone   string
	// Entries are the doors the pass opens, with a button each.
	Entries []PassEntry
}

// endedView is the view of an ended pass and of an unknown token alike.
func endedView() View { return View{State: StateEnded, Message: MessageEnded} }

// PassView returns what the guest page shows for token. The error is only
// for a failure to read Redis.
func (s *Service) PassView(ctx context.Context, token string) (View, error) {
	v, err := s.visitByToken(ctx, token)
	if err != nil || v == nil {
		return endedView(), err
	}
	now := s.now()
	if passEnded(v, now) {
		return endedView(), nil
	}
	st, _, err := s.loadSettings(ctx, v.Location)
	if err != nil {
		return View{}, err
	}
	loc := zone(&st, v)
	view := View{
		State:        StateActive,
		VisitorName:  v.Name,
		LocationName: s.placeName(v),
		LogoURL:      st.LogoURL,
		Instructions: st.Instructions,
		Start:        v.Pass.Start.In(loc),
		End:          v.Pass.End.In(loc),
		TimeZone:     loc.String(),
		Entries:      st.guestDoors(v.Pass.Entries), // less those whose remote unlock was switched off since
	}
	switch {
	case v.Held:
		view.State, view.Message, view.Entries = StateUpcoming, messageHeld, nil
	case now.Before(v.Pass.Start):
		view.State = StateUpcoming
		view.Message = fmt.Sprintf(messageStartsFmt, formatTime(v.Pass.Start, loc))
	}
	return view, nil
}

func passEnded(v *visit, now time.Time) bool {
	return v.Ended || v.Pass == nil || !now.Before(v.Pass.End)
}

// visitByToken returns the visit whose current link token is token, or nil.
func (s *Service) visitByToken(ctx context.Context, token string) (*visit, error) {
	if !wellFormedToken(token) {
		return nil, nil
	}
	hash := hashToken(token)
	key, ok, err := s.store.TokenVisit(ctx, hash)
	if err == nil && !ok {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("visitor: look up a link token: %w", err)
	}
	b, ok, err := s.store.Visit(ctx, key)
	if err == nil && !ok {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("visitor: read visit %s: %w", key, err)
	}
	v := new(visit)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("visitor: decode visit %s: %w", key, err)
	}
	// The index may outlive a replaced token by a moment; only the
	// pass's current token opens anything.
	if v.Pass == nil || v.Pass.TokenHash != hash {
		return nil, nil
	}
	return v, nil
}

// Result is the outcome of a guest's tap on one door.
type Result struct {
	EntryID string
	Status  unlock.Status
	// Message is for the guest: "Unlocked", "Your pass starts at ...",
	// "This pass has ended", ...
	Message string
	Latency time.Duration
}

// GuestUnlock opens entryID for the holder of token. The window is
// enforced twice: here (now in [start, end), pass not ended, entry on the
// pass; otherwise a refusal with no upstream call), and by the access
// system, through an unlock token issued on the integration's service
// account with notBefore and expires set to the window. Every attempt is
// audited as "guest:{passID}". An unknown token is refused exactly as an
// ended pass is. The error is only for a failure to read Redis.
func (s *Service) GuestUnlock(ctx context.Context, token, entryID string) (Result, error) {
	began := time.Now()
	at := s.now()
	res := Result{EntryID: entryID}
	v, err := s.visitByToken(ctx, token)
	if err != nil {
		return res, err
	}
	who := "guest:unknown"
	if v != nil {
		who = "guest:" + v.Pass.ID
	}
	switch {
	case v == nil || passEnded(v, at):
		res.Status, res.Message = unlock.Denied, MessageEnded
	case v.Held:
		res.Status, res.Message = unlock.Denied, messageHeld
	case at.Before(v.Pass.Start):
		st, _, err := s.loadSettings(ctx, v.Location)
		if err != nil {
			return res, err
		}
		res.Status, res.Message = unlock.Denied, fmt.Sprintf(messageStartsFmt, formatTime(v.Pass.Start, zone(&st, v)))
	case !slices.ContainsFunc(v.Pass.Entries, func(e PassEntry) bool { return e.ID == entryID }):
		res.Status, res.Message = unlock.Denied, MessageNotHere
	default:
		// The entry's remote unlock may have been switched off since the
		// pass was issued: read at each tap, so that it holds at once.
		st, _, err := s.loadSettings(ctx, v.Location)
		if err != nil {
			return res, err
		}
		if !st.guestDoor(entryID) {
			res.Status, res.Message = unlock.Denied, MessageNotHere
			break
		}
		res.Status, res.Message = s.openForGuest(ctx, v, entryID)
	}
	res.Latency = time.Since(began)
	property := ""
	if v != nil {
		property = s.property(v.Pass.Property)
	}
	s.audit.Record(unlock.Attempt{
		At: at, Email: who, EntryID: entryID, Property: property, Status: res.Status, Message: res.Message, Latency: res.Latency,
	})
	return res, nil
}

// openForGuest opens the entry through the access system's time-limited
// mechanism: the pass's unlock token (issued now if it has none for its
// current window), used once per tap and never retried.
func (s *Service) openForGuest(ctx context.Context, v *visit, entryID string) (unlock.Status, string) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.UnlockTimeout)
	defer cancel()
	sys, err := s.accessFor(v.Pass.Property)
	if err != nil {
		// The property lost its Openpath connection (or was removed).
		s.log.WarnContext(ctx, "visitor: no access system for the pass's property", "pass", v.Pass.ID, "err", err)
		return unlock.Unavailable, "The door system is unavailable; ask reception"
	}
	up, err := s.upstreamToken(ctx, sys, v)
	if err != nil {
		s.log.WarnContext(ctx, "visitor: cannot issue the access system's unlock token", "pass", v.Pass.ID, "err", err)
		return s.failure(ctx, err)
	}
	err = sys.UseUnlockToken(ctx, up.Token, entryID)
	if err == nil {
		return unlock.OK, "Unlocked"
	}
	s.log.WarnContext(ctx, "visitor: guest unlock failed", "pass", v.Pass.ID, "entry", entryID, "err", err)
	if errors.Is(err, access.ErrDenied) || errors.Is(err, access.ErrNotFound) {
		// The token may be the problem (unknown after an access-system
		// reset, or issued for entries the service account lost): the
		// next tap issues a fresh one. This tap is not repeated: the door
		// may have opened for all cloudkey knows.
		s.dropUpstream(ctx, v.Key, up.Token)
	}
	return s.failure(ctx, err)
}

// failure maps an access-system error to what the guest is told.
func (s *Service) failure(ctx context.Context, err error) (unlock.Status, string) {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return unlock.Timeout, "The door system did not answer in time; the door may or may not have opened"
	case errors.Is(err, context.Canceled):
		return unlock.Error, "The request was cancelled"
	case errors.Is(err, access.ErrDenied), errors.Is(err, access.ErrNotFound):
		return unlock.Denied, "The door system refused this unlock"
	case errors.Is(err, access.ErrUnavailable):
		return unlock.Unavailable, "The door system is unavailable; try again in a moment"
	}
	return unlock.Error, "Something went wrong; try again or ask reception"
}

// upstreamToken returns v's access-system unlock token for its current
// window, issuing (and storing) one when it has none. Two first taps at
// once may both issue one; the first stored wins and the other is unused.
func (s *Service) upstreamToken(ctx context.Context, sys access.GuestSystem, v *visit) (*upstream, error) {
	p := v.Pass
	if up := p.Upstream; up != nil && up.NotBefore.Equal(p.Start) && up.Expires.Equal(p.End) {
		return up, nil
	}
	entries := make([]access.TokenEntry, len(p.Entries))
	for i, e := range p.Entries {
		entries[i] = access.TokenEntry{ID: e.ID, Label: e.Name}
	}
	tok, err := sys.IssueUnlockToken(ctx, access.UnlockTokenRequest{
		Entries: entries, NotBefore: p.Start, Expires: p.End, Description: "cloudkey guest pass " + p.ID,
	})
	if err != nil {
		return nil, err
	}
	up := &upstream{Token: tok.Token, NotBefore: p.Start, Expires: p.End}
	err = s.transact(ctx, []string{v.Key}, func(t *txn) error {
		cur, err := t.visit(v.Key)
		if err != nil || cur == nil || cur.Ended || cur.Pass == nil || cur.Pass.ID != p.ID ||
			!cur.Pass.Start.Equal(p.Start) || !cur.Pass.End.Equal(p.End) {
			return err // the pass changed meanwhile: use the token once, keep nothing
		}
		if cu := cur.Pass.Upstream; cu != nil && cu.NotBefore.Equal(p.Start) && cu.Expires.Equal(p.End) {
			up = cu
			return nil
		}
		cur.Pass.Upstream = up
		t.put(cur)
		return nil
	})
	if err != nil {
		// Not stored: the token still works for this tap.
		s.log.WarnContext(ctx, "visitor: cannot store the access system's unlock token", "pass", p.ID, "err", err)
	}
	return up, nil
}

// dropUpstream forgets the pass's unlock token if it is still token.
func (s *Service) dropUpstream(ctx context.Context, key, token string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := s.transact(ctx, []string{key}, func(t *txn) error {
		v, err := t.visit(key)
		if err != nil || v == nil || v.Pass == nil || v.Pass.Upstream == nil || v.Pass.Upstream.Token != token {
			return err
		}
		v.Pass.Upstream = nil
		t.put(v)
		return nil
	})
	if err != nil {
		s.log.WarnContext(ctx, "visitor: cannot drop a refused unlock token", "visit", key, "err", err)
	}
}
