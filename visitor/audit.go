package visitor

import (
	"context"
	"time"

	"github.com/cloudkey/cloudkey/unlock"
)

// The audit of what the visitor service changes: passes issued and
// ended, and Protect's activations and suspensions, each a record of its
// kind in the same audit as unlocks (Config.Audit), per property.

// passMark is what the audit compares of a visit's pass before and after
// a transaction.
type passMark struct {
	passID string
	ended  bool
}

func markOf(v *visit) passMark {
	m := passMark{ended: v.Ended}
	if v.Pass != nil {
		m.passID = v.Pass.ID
	}
	return m
}

// auditPasses records the passes t issued and ended, once it committed.
// who acted is ctx's actor (WithActor), else Envoy.
func (s *Service) auditPasses(ctx context.Context, t *txn) {
	for _, v := range t.dirty {
		if v.Pass == nil {
			continue
		}
		was, now := t.before[v.Key], markOf(v)
		at := unlock.Attempt{
			At: s.now().UTC(), Email: actor(ctx), EntryID: v.Pass.ID,
			Property: s.property(v.Pass.Property), Status: unlock.OK,
		}
		if now.passID != was.passID {
			at.Kind = unlock.KindPassIssued
			at.Message = "issued to " + v.Name + " at location " + v.Location + ", valid " +
				v.Pass.Start.Format(time.RFC3339) + " to " + v.Pass.End.Format(time.RFC3339) +
				" (" + string(s.summary(v, s.now()).Issued) + ")"
			s.audit.Record(at)
		}
		if now.ended && !was.ended {
			at.Kind = unlock.KindPassEnded
			at.Message = v.Name + " at location " + v.Location + ": " + v.EndReason
			s.audit.Record(at)
		}
	}
}

// refusalNote is a refused pass, for the audit.
type refusalNote struct {
	outcome  Outcome
	property string
}

// auditedRefusal reports whether v's refusal under st is a decision of
// the settings' permissions about the visitor (the location switched off,
// the host's guests disabled, the type blocked), which the audit records;
// refusals that wait for a later event (a sign-in when invite only is
// off) or that a mapping explains are in the outcome and the decision
// log only.
func auditedRefusal(st *Settings, v *visit) bool {
	return !st.enabled() || !st.guestsAllowed(v.hostEmail()) || st.blocked(v.Flow)
}

// auditRefusals records the passes t refused (see auditedRefusal), once it
// committed, under the location's property: what was refused is the
// visit (its Envoy invite or entry), as no pass exists.
func (s *Service) auditRefusals(ctx context.Context, t *txn) {
	for _, r := range t.refusals {
		o := r.outcome
		what := "invite " + o.InviteID
		if o.InviteID == "" {
			what = "entry " + o.EntryID
		}
		s.audit.Record(unlock.Attempt{
			Kind: unlock.KindPassRefused, At: s.now().UTC(), Email: actor(ctx), EntryID: what,
			Property: r.property, Status: unlock.OK,
			Message: o.Visitor + " at location " + o.Location + " (" + o.Event + "): " + o.Reason,
		})
	}
}

// auditProtect records a Protect activation or suspension, under the
// property of the location's settings.
func (s *Service) auditProtect(ctx context.Context, out Outcome) {
	kind := ""
	switch out.Action {
	case ActionEmployeeActivated:
		kind = unlock.KindProtectActivated
	case ActionEmployeeSuspended:
		kind = unlock.KindProtectSuspended
	default:
		return
	}
	who := actor(ctx)
	if out.Event == "protect_suspension" {
		who = "cloudkey:scheduler" // the employee access duration elapsed
	}
	property := s.property("")
	if st, ok, err := s.loadSettings(ctx, out.Location); err == nil && ok {
		property = s.property(st.Property)
	}
	s.audit.Record(unlock.Attempt{
		Kind: kind, At: s.now().UTC(), Email: who, EntryID: out.Employee,
		Property: property, Status: unlock.OK, Message: "at location " + out.Location + ": " + out.Reason,
	})
}
