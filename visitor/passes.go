package visitor

import (
	"context"
	"fmt"

	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// delivery is a guest link to send, to each of the visitor's contacts,
// once the transaction that decided it has committed.
type delivery struct {
	visitKey string
	hash     string // the token hash the link carries
	msgs     []notify.Message
}

// onInvite handles invite_created and invite_updated: the invite's visit is
// created or updated and, unless refused, gets a pass whose window follows
// the expected arrival. An invite that was removed, or whose visitor signed
// out, stays ended.
func (s *Service) onInvite(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
	return s.invite(ctx, ev, out, false, "")
}

// invite is onInvite; tile marks a tile registration, whose pass the tile
// issues itself whatever invite only says; host is the tenant contact who
// registered the visitor in the tile ("" otherwise), recorded before the
// pass is decided so that the per-host guest permission covers them.
func (s *Service) invite(ctx context.Context, ev envoy.Event, out Outcome, tile bool, host string) (Outcome, error) {
	st, ok, err := s.loadSettings(ctx, ev.Location.ID)
	if err != nil {
		return out, err
	}
	if !ok {
		return ignored(out, "location "+ev.Location.ID+" has no visitor settings"), nil
	}
	key := "inv:" + ev.ID
	var res Outcome
	var d *delivery
	err = s.transact(ctx, []string{key}, func(t *txn) error {
		v, err := t.visit(key)
		if err != nil {
			return err
		}
		if v == nil {
			v = &visit{Key: key}
			v.absorb(ev, false)
		} else {
			v.absorb(ev, ev.Name == envoy.InviteCreated)
		}
		v.Tile = v.Tile || tile
		if v.Host == "" && host != "" {
			v.Host = identity.FoldEmail(host)
		}
		approve(v, ev)
		if !v.Ended && !v.SignedOut.IsZero() {
			// An update carrying signed-out-at: the visitor has left.
			res, d = s.end(t, v, out, "the visitor signed out"), nil
		} else {
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

// onInviteRemoved ends the invite's pass at once and leaves a tombstone, so
// that an update or a sign-in arriving later does not bring it back.
func (s *Service) onInviteRemoved(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
	key := "inv:" + ev.ID
	var res Outcome
	err := s.transact(ctx, []string{key}, func(t *txn) error {
		v, err := t.visit(key)
		if err != nil {
			return err
		}
		if v == nil {
			v = &visit{Key: key}
		}
		v.absorb(ev, false)
		res = s.end(t, v, out, "the invite was removed")
		t.decide(v, res)
		return nil
	})
	if err != nil {
		return out, err
	}
	return res, nil
}

// entryTarget is the visit an Envoy entry belongs to: its invite's, the one
// it was joined to earlier, or its own.
func entryTarget(t *txn, ev envoy.Event) (string, error) {
	if ev.InviteID != "" {
		return "inv:" + ev.InviteID, nil
	}
	linked, err := t.link(ev.ID)
	if err != nil || linked != "" {
		return linked, err
	}
	return "ent:" + ev.ID, nil
}

func entryKeys(ev envoy.Event) []string {
	keys := []string{"ent:" + ev.ID}
	if ev.InviteID != "" {
		keys = append(keys, "inv:"+ev.InviteID)
	}
	return keys
}

// onSignIn handles entry_sign_in. With an invite it joins (and activates)
// the invite's visit: one pass per visit, never a second. Without one it is
// a walk-in, refused when the location is invite only. A sign-in whose
// sign-out was already handled gets nothing.
func (s *Service) onSignIn(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
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
		own := "ent:" + ev.ID
		tomb, err := t.visit(own)
		if err != nil {
			return err
		}
		target, err := entryTarget(t, ev)
		if err != nil {
			return err
		}
		if target != own {
			t.setLink(ev.ID, target)
		}
		v, err := t.visit(target)
		if err != nil {
			return err
		}
		if v == nil {
			v = &visit{Key: target}
		}
		v.absorb(ev, false)
		approve(v, ev)
		if target != own && tomb != nil && tomb.Ended {
			// The sign-out (or the block list's denial) came first and
			// named no invite; now that the sign-in names it, the
			// invite's visit is over too.
			if v.SignedOut.IsZero() {
				v.SignedOut = tomb.SignedOut
			}
			res = s.end(t, v, out, tomb.EndReason)
			t.decide(v, res)
			return nil
		}
		res, d = s.apply(t, v, &st, out, true)
		t.decide(v, res)
		return nil
	})
	if err != nil {
		return out, err
	}
	return s.deliver(ctx, d, res)
}

// onSignOut ends the visit's pass at once. When no visit is known yet (the
// sign-out overtook the sign-in), it leaves a tombstone so that the
// sign-in, when it comes, issues nothing.
func (s *Service) onSignOut(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
	var res Outcome
	err := s.transact(ctx, entryKeys(ev), func(t *txn) error {
		target, err := entryTarget(t, ev)
		if err != nil {
			return err
		}
		if target != "ent:"+ev.ID {
			t.setLink(ev.ID, target)
		}
		v, err := t.visit(target)
		if err != nil {
			return err
		}
		if v == nil {
			v = &visit{Key: target}
		}
		v.absorb(ev, false)
		if v.SignedOut.IsZero() {
			v.SignedOut = s.now().UTC()
		}
		res = s.end(t, v, out, "the visitor signed out")
		t.decide(v, res)
		return nil
	})
	if err != nil {
		return out, err
	}
	return res, nil
}

// apply decides v's pass under st once an event has been absorbed: refuse,
// revoke, issue or update it, and whether its link must be sent. invited
// says the visitor has an invite; signIn that the event is a sign-in.
// A refusal the settings' permissions made (see auditedRefusal) is
// audited once the transaction commits.
func (s *Service) apply(t *txn, v *visit, st *Settings, o Outcome, signIn bool) (Outcome, *delivery) {
	res, d := s.decidePass(t, v, st, o, signIn)
	if res.Action == ActionRefused && !v.Ended && auditedRefusal(st, v) {
		t.refusals = append(t.refusals, refusalNote{outcome: res, property: s.property(st.Property)})
	}
	return res, d
}

// decidePass is apply's decision.
func (s *Service) decidePass(t *txn, v *visit, st *Settings, o Outcome, signIn bool) (Outcome, *delivery) {
	o.Visitor = v.Name
	if v.Pass != nil {
		o.PassID = v.Pass.ID
	}
	if v.Ended {
		return refused(o, "the visit already ended: "+v.EndReason), nil
	}
	if v.Held {
		o.Action, o.Reason = ActionHeld, heldReason
		return o, nil
	}
	if !st.enabled() {
		// Switched off: no new pass, and an existing one is left as it
		// is until it ends (its window, a sign-out, the invite's removal
		// or a manager end it as usual).
		if v.Pass == nil {
			return refused(o, reasonDisabled), nil
		}
		o.Action, o.Reason = ActionUnchanged, reasonDisabled+"; the pass already issued is kept unchanged until it ends"
		return o, nil
	}
	if reason := refusal(st, v); reason != "" {
		if v.Pass != nil {
			return s.end(t, v, o, reason), nil
		}
		return refused(o, reason), nil
	}
	now := s.now()
	start, end := window(v, st)
	var token string
	switch {
	case v.Pass == nil:
		var hash string
		token, hash = newToken()
		v.Pass = &pass{
			ID: newPassID(), TokenHash: hash, Start: start, End: end,
			Flow: v.Flow, Entries: st.entriesFor(v.Flow), IssuedAt: now.UTC(), Property: st.Property,
		}
		t.setToken(hash, v.Key)
		o.Action, o.PassID = ActionIssued, v.Pass.ID
	default:
		p := v.Pass
		changed := false
		if !p.Start.Equal(start) || !p.End.Equal(end) {
			p.Start, p.End, p.Upstream = start, end, nil
			changed = true
		}
		if typeKey(p.Flow) != typeKey(v.Flow) {
			// The visitor type changed: its entries are mapped afresh.
			p.Flow, p.Entries, p.Upstream = v.Flow, st.entriesFor(v.Flow), nil
			changed = true
		}
		switch {
		case signIn:
			o.Action = ActionActivated
		case changed:
			o.Action = ActionUpdated
		default:
			o.Action = ActionUnchanged
		}
	}
	o.Reason = fmt.Sprintf("valid %s to %s", start.Format("2006-01-02 15:04:05Z07:00"), end.Format("2006-01-02 15:04:05Z07:00"))
	return s.planLink(t, v, st, o, token)
}

// planLink decides whether v's link must be sent: once per contact, while
// the window is not over. token is the link token when the pass was just
// issued; otherwise the token is not known (only its hash is stored) and a
// new one replaces it: the old link was never delivered to this contact.
func (s *Service) planLink(t *txn, v *visit, st *Settings, o Outcome, token string) (Outcome, *delivery) {
	p := v.Pass
	contact, also := v.contact(), v.also()
	switch {
	case contact == "":
		o.Reason += "; no email or phone, so no link was sent"
		return o, nil
	case !s.now().Before(p.End):
		o.Reason += "; the window is over, so no link was sent"
		return o, nil
	case p.NotifiedTo == contact && p.NotifiedAlso == also:
		return o, nil
	case p.NotifiedTo == contact && p.NotifiedAlso == "" && p.Deliveries == nil:
		// Sent before links went to both contacts: a new link now would
		// replace the one the visitor has. The phone gets none.
		return o, nil
	}
	if token == "" {
		var hash string
		token, hash = newToken()
		t.dropToken(p.TokenHash)
		t.setToken(hash, v.Key)
		p.TokenHash = hash
	}
	// Marked before sending, so that a concurrent event does not send it
	// again; deliver undoes it if sending fails.
	p.NotifiedTo, p.NotifiedAlso, p.NotifyError, p.Deliveries = contact, also, "", nil
	// The reason is logged: it names the channels, never the address or
	// number.
	o.Reason += "; link sent by " + channelsOf(contact, also)
	d := &delivery{visitKey: v.Key, hash: p.TokenHash}
	for _, to := range []string{contact, also} {
		if to != "" {
			d.msgs = append(d.msgs, s.linkMessage(v, st, token, to))
		}
	}
	return o, d
}

// end ends v at once (terminal) and drops its upstream unlock token.
func (s *Service) end(t *txn, v *visit, o Outcome, reason string) Outcome {
	o.Visitor = v.Name
	if v.Pass != nil {
		o.PassID = v.Pass.ID
	}
	if v.Ended {
		o.Action, o.Reason = ActionUnchanged, "already ended: "+v.EndReason
		return o
	}
	v.Ended, v.EndedAt, v.EndReason = true, s.now().UTC(), reason
	if v.Pass != nil {
		v.Pass.Upstream = nil
	}
	o.Action, o.Reason = ActionEnded, reason
	t.put(v)
	return o
}

func refused(o Outcome, reason string) Outcome {
	o.Action, o.Reason = ActionRefused, reason
	return o
}

func ignored(o Outcome, reason string) Outcome {
	o.Action, o.Reason = ActionIgnored, reason
	return o
}
