package visitor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// Envoy's block list: entry_blacklist_deny ends the visit's pass at once
// and refuses any later one (the visit ends, terminal);
// entry_blacklist_review holds the visit until an event for the entry
// carries approval-status approved, or a manager approves it (Approve).
// Both follow the entry to the invite it joined, so an invited visitor's
// pass is the one ended or held.

const (
	denyReason = "Envoy's block list denied the visitor"
	heldReason = "held: the visitor matched Envoy's block list and awaits approval (Envoy's approval, or a manager's)"
	// messageHeld is what the guest page shows for a held pass.
	messageHeld = "This pass is waiting for approval at reception"
)

// ErrNotHeld: Approve was asked for a visit that is not held for review.
var ErrNotHeld = errors.New("visitor: the visit is not held for block-list review")

// approved reports whether ev carries Envoy's approval-status approved.
func approved(ev envoy.Event) bool { return strings.EqualFold(ev.ApprovalStatus, "approved") }

// approve releases a held visit when ev carries the approval.
func approve(v *visit, ev envoy.Event) {
	if v.Held && approved(ev) {
		v.Held = false
	}
}

// blockTarget loads (or starts) the visit an entry event is about, joined
// to its invite's visit when it names one.
func blockTarget(t *txn, ev envoy.Event) (*visit, error) {
	target, err := entryTarget(t, ev)
	if err != nil {
		return nil, err
	}
	if target != "ent:"+ev.ID {
		t.setLink(ev.ID, target)
	}
	v, err := t.visit(target)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = &visit{Key: target}
	}
	v.absorb(ev, false)
	return v, nil
}

// onBlacklistDeny ends the visit's pass at once (the guest page then says
// it has ended, and unlocks are refused) and leaves the visit ended, so
// that no later event issues one.
func (s *Service) onBlacklistDeny(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
	var res Outcome
	err := s.transact(ctx, entryKeys(ev), func(t *txn) error {
		v, err := blockTarget(t, ev)
		if err != nil {
			return err
		}
		res = s.end(t, v, out, denyReason)
		t.decide(v, res)
		return nil
	})
	if err != nil {
		return out, err
	}
	return res, nil
}

// onBlacklistReview holds the visit: no pass is issued and an existing one
// opens nothing until approval. A review that already carries the
// approval (or a denial) is handled as such.
func (s *Service) onBlacklistReview(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
	if strings.EqualFold(ev.ApprovalStatus, "denied") {
		return s.onBlacklistDeny(ctx, ev, out)
	}
	st, ok, err := s.loadSettings(ctx, ev.Location.ID)
	if err != nil {
		return out, err
	}
	if !ok {
		return ignored(out, "location "+ev.Location.ID+" has no visitor settings"), nil
	}
	var res Outcome
	var d *delivery
	err = s.transact(ctx, entryKeys(ev), func(t *txn) error {
		d = nil
		v, err := blockTarget(t, ev)
		if err != nil {
			return err
		}
		switch {
		case v.Ended:
			res = refused(out, "the visit already ended: "+v.EndReason)
			res.Visitor = v.Name
		case approved(ev):
			v.Held = false
			res, d = s.apply(t, v, &st, out, false)
		case v.Held:
			res = out
			res.Visitor, res.Action, res.Reason = v.Name, ActionUnchanged, "already "+heldReason
		default:
			v.Held, v.HeldAt = true, s.now().UTC()
			if v.Pass != nil {
				v.Pass.Upstream = nil
			}
			res, d = s.apply(t, v, &st, out, false)
		}
		t.decide(v, res)
		return nil
	})
	if err != nil {
		return out, err
	}
	return s.deliver(ctx, d, res)
}

// Approve releases a visit held by Envoy's block list review, as a
// manager's decision: the entry's visit (its invite's, when it joined
// one) at location, which must be property's ("": the default property).
// The pass is then issued (or its existing one works again) as the
// settings say, and its link sent. A visit that is not held is
// ErrNotHeld; one that ended (denied, signed out) stays ended, and the
// outcome says so; an unknown entry is ErrNoVisit.
func (s *Service) Approve(ctx context.Context, property, location, entryID string) (Outcome, error) {
	st, err := s.Settings(ctx, property, location)
	if err != nil {
		return Outcome{}, err
	}
	if strings.TrimSpace(entryID) == "" {
		return Outcome{}, fmt.Errorf("%w: no entry id", ErrNoVisit)
	}
	out := Outcome{At: s.now().UTC(), Event: "manager_approval", Location: location, EntryID: entryID}
	var res Outcome
	var d *delivery
	err = s.transact(ctx, []string{"ent:" + entryID}, func(t *txn) error {
		d = nil
		key, err := t.link(entryID)
		if err != nil {
			return err
		}
		if key == "" {
			key = "ent:" + entryID
		}
		v, err := t.visit(key)
		if err != nil {
			return err
		}
		if v == nil || v.Location != location {
			return fmt.Errorf("%w: entry %q at location %q", ErrNoVisit, entryID, location)
		}
		out.InviteID = v.InviteID
		switch {
		case v.Ended:
			res = refused(out, "the visit already ended: "+v.EndReason)
			res.Visitor = v.Name
		case !v.Held:
			return fmt.Errorf("%w: entry %q", ErrNotHeld, entryID)
		default:
			v.Held = false
			res, d = s.apply(t, v, &st, out, false)
		}
		t.decide(v, res)
		return nil
	})
	if err != nil {
		return out, err
	}
	return s.deliver(ctx, d, res)
}
