package visitor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrNoVisit: no visit is known for the invite or entry.
var ErrNoVisit = errors.New("visitor: no such visit")

// VisitInfo is what an administrator sees of a visit (never its link
// token).
type VisitInfo struct {
	Key             string // "inv:{inviteID}" or "ent:{entryID}"
	Location        string
	InviteID        string
	EntryID         string
	VisitorName     string
	Email           string
	Phone           string
	VisitorType     string
	ExpectedArrival time.Time
	SignedInAt      time.Time
	SignedOutAt     time.Time
	// Held: Envoy's block list review holds the visit (Approve releases it).
	Held bool
	// Ended is terminal: removal, sign-out or the block list's denial;
	// EndReason says which.
	Ended     bool
	EndedAt   time.Time
	EndReason string
	// Pass is nil when none was issued; Decisions say why.
	Pass      *PassInfo
	Decisions []Outcome
}

// PassInfo describes a visit's pass.
type PassInfo struct {
	ID         string
	State      State
	Start, End time.Time
	Entries    []PassEntry
	IssuedAt   time.Time
	NotifiedTo string
	// NotifiedAlso is the phone the link also went to (visitors with an
	// email and a phone get both).
	NotifiedAlso string
	NotifyError  string
	// Deliveries are the current link's messages and what the delivery
	// system last said of each (an SMS: queued, sent, delivered, or
	// failed with Twilio's code and reason).
	Deliveries []DeliveryState
}

// Visit returns the visit of an Envoy invite (inviteID) or, when inviteID
// is empty, of an Envoy entry (sign-in), following the entry to the invite
// it joined.
func (s *Service) Visit(ctx context.Context, inviteID, entryID string) (VisitInfo, error) {
	var found *visit
	err := s.transact(ctx, nil, func(t *txn) error {
		key := "inv:" + inviteID
		if inviteID == "" {
			if entryID == "" {
				return fmt.Errorf("%w: no invite or entry id", ErrNoVisit)
			}
			k, err := t.link(entryID)
			if err != nil {
				return err
			}
			key = "ent:" + entryID
			if k != "" {
				key = k
			}
		}
		v, err := t.visit(key)
		found = v
		return err
	})
	if err != nil {
		return VisitInfo{}, err
	}
	if found == nil {
		return VisitInfo{}, fmt.Errorf("%w: invite %q, entry %q", ErrNoVisit, inviteID, entryID)
	}
	return s.info(found), nil
}

func (s *Service) info(v *visit) VisitInfo {
	vi := VisitInfo{
		Key: v.Key, Location: v.Location, InviteID: v.InviteID, EntryID: v.EntryID,
		VisitorName: v.Name, Email: v.Email, Phone: v.Phone, VisitorType: v.Flow,
		ExpectedArrival: v.Expected, SignedInAt: v.SignedIn, SignedOutAt: v.SignedOut,
		Held: v.Held, Ended: v.Ended, EndedAt: v.EndedAt, EndReason: v.EndReason,
		Decisions: slices.Clone(v.Decisions),
	}
	if p := v.Pass; p != nil {
		now := s.now()
		state := StateActive
		switch {
		case passEnded(v, now):
			state = StateEnded
		case now.Before(p.Start):
			state = StateUpcoming
		}
		vi.Pass = &PassInfo{
			ID: p.ID, State: state, Start: p.Start, End: p.End, Entries: slices.Clone(p.Entries),
			IssuedAt: p.IssuedAt, NotifiedTo: p.NotifiedTo, NotifiedAlso: p.NotifiedAlso, NotifyError: p.NotifyError,
		}
		for _, d := range p.Deliveries {
			vi.Pass.Deliveries = append(vi.Pass.Deliveries, DeliveryState(d))
		}
	}
	return vi
}
