package visitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// screeningRefusal says why an employee_entry_sign_in is not a passed
// Protect screening, or "" when it is. Envoy sends the event when the
// employee has signed in, which a failed screening prevents; cloudkey
// still requires the entry to be a screening (employee-screening-flow
// true) and, when Envoy reports an approval-status, that it is
// "approved". An absent approval-status counts as passed: Envoy's own
// Protect payloads often omit it.
func screeningRefusal(ev envoy.Event) string {
	switch {
	case !ev.EmployeeScreening:
		return "not a Protect screening (employee-screening-flow is false)"
	case ev.ApprovalStatus != "" && !strings.EqualFold(ev.ApprovalStatus, "approved"):
		return "screening not passed (approval status " + quote(ev.ApprovalStatus) + ")"
	}
	return ""
}

// protectSettings loads the settings and says whether Protect applies to
// the employee; when not, the outcome is returned.
func (s *Service) protectSettings(ctx context.Context, ev envoy.Event, out Outcome) (Settings, Outcome, bool, error) {
	st, ok, err := s.loadSettings(ctx, ev.Location.ID)
	switch {
	case err != nil:
		return st, out, false, err
	case !ok:
		return st, ignored(out, "location "+ev.Location.ID+" has no visitor settings"), false, nil
	case !st.Protect.Enabled:
		return st, ignored(out, "Protect is not enabled at location "+ev.Location.ID), false, nil
	case st.excluded(out.Employee):
		return st, ignored(out, "the employee is excluded from Protect"), false, nil
	}
	return st, out, true, nil
}

// employee finds the employee's access-system user in the access system
// of the location's property (st's); when there is none (or several, or
// the property has no access system for Protect), the outcome says so.
func (s *Service) employee(ctx context.Context, st Settings, out Outcome) (access.GuestSystem, access.User, Outcome, bool, error) {
	sys, err := s.accessFor(st.Property)
	if err != nil {
		return nil, access.User{}, refused(out, err.Error()), false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AccessTimeout)
	defer cancel()
	u, err := sys.FindUserByEmail(ctx, out.Employee)
	switch {
	case errors.Is(err, access.ErrNotFound):
		return sys, u, refused(out, "no access-system user has this email"), false, nil
	case errors.Is(err, access.ErrAmbiguous):
		return sys, u, refused(out, "several access-system users have this email"), false, nil
	case err != nil:
		return sys, u, out, false, fmt.Errorf("visitor: find employee %s: %w", out.Employee, err)
	}
	return sys, u, out, true, nil
}

// onEmployeeSignIn activates the employee's access-system user after a
// passed screening and schedules its suspension after the employee access
// duration. Excluded employees are never touched; an employee whose
// sign-out was already handled is not activated; an inactive user (I: gone
// from the organisation, not merely suspended) is left alone.
func (s *Service) onEmployeeSignIn(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
	out.Employee = identity.FoldEmail(ev.Email)
	st, out, ok, err := s.protectSettings(ctx, ev, out)
	if err != nil || !ok {
		return s.logged(ctx, out, err)
	}
	if reason := screeningRefusal(ev); reason != "" {
		return s.logged(ctx, refused(out, reason), nil)
	}
	sys, u, out, ok, err := s.employee(ctx, st, out)
	if err != nil || !ok {
		return s.logged(ctx, out, err)
	}
	if u.Status == access.StatusInactive {
		return s.logged(ctx, refused(out, "the access-system user is inactive; Protect only activates suspended users"), nil)
	}
	release, err := s.lock(ctx, "prot:"+u.ID, s.cfg.AccessTimeout)
	if err != nil {
		return out, err
	}
	defer release()
	signedOut, err := s.store.HasTombstone(ctx, ev.ID)
	if err != nil {
		return out, fmt.Errorf("visitor: read employee sign-out: %w", err)
	}
	if signedOut {
		return s.logged(ctx, refused(out, "the employee already signed out"), nil)
	}
	if u.Status != access.StatusActive {
		actx, cancel := context.WithTimeout(ctx, s.cfg.AccessTimeout)
		err := sys.SetUserStatus(actx, u.ID, access.StatusActive)
		cancel()
		if err != nil {
			return out, fmt.Errorf("visitor: activate employee %s: %w", out.Employee, err)
		}
	}
	due := s.now().Add(st.Protect.EmployeeAccessDuration).UTC()
	j := job{UserID: u.ID, Email: out.Employee, Location: ev.Location.ID, EntryID: ev.ID, Due: due, Nonce: newPassID()}
	if err := s.schedule(ctx, j); err != nil {
		// The user is active with no suspension planned: fail, so that
		// Envoy delivers the event again and the schedule is retried.
		return out, err
	}
	out.Action, out.Reason = ActionEmployeeActivated, "active until "+due.Format(time.RFC3339)
	return s.logged(ctx, out, nil)
}

// onEmployeeSignOut suspends the employee's access-system user at once and
// cancels the scheduled suspension. It leaves a tombstone for the entry, so
// that a sign-in delivered after it activates nothing.
func (s *Service) onEmployeeSignOut(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
	out.Employee = identity.FoldEmail(ev.Email)
	st, out, ok, err := s.protectSettings(ctx, ev, out)
	if err != nil || !ok {
		return s.logged(ctx, out, err)
	}
	tomb := func() error {
		if err := s.store.PutTombstone(ctx, ev.ID, s.cfg.Retention); err != nil {
			return fmt.Errorf("visitor: record employee sign-out: %w", err)
		}
		return nil
	}
	sys, u, out, ok, err := s.employee(ctx, st, out)
	if err != nil || !ok {
		if err == nil {
			err = tomb()
		}
		return s.logged(ctx, out, err)
	}
	release, err := s.lock(ctx, "prot:"+u.ID, s.cfg.AccessTimeout)
	if err != nil {
		return out, err
	}
	defer release()
	if err := tomb(); err != nil {
		return out, err
	}
	if err := s.cancelJob(ctx, u.ID); err != nil {
		return out, err
	}
	if u.Status != access.StatusActive {
		return s.logged(ctx, refused(out, "the access-system user is not active (status "+string(u.Status)+"); nothing to suspend"), nil)
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AccessTimeout)
	defer cancel()
	if err := sys.SetUserStatus(actx, u.ID, access.StatusSuspended); err != nil {
		return out, fmt.Errorf("visitor: suspend employee %s: %w", out.Employee, err)
	}
	out.Action, out.Reason = ActionEmployeeSuspended, "signed out"
	return s.logged(ctx, out, nil)
}

// logged records a Protect decision in the location's log (visitor
// decisions are recorded with their visit instead) and passes err on.
func (s *Service) logged(ctx context.Context, out Outcome, err error) (Outcome, error) {
	if err == nil && out.Action != "" {
		s.logDecision(ctx, out)
	}
	return out, err
}

func (s *Service) logDecision(ctx context.Context, out Outcome) {
	s.auditProtect(ctx, out)
	b, _ := json.Marshal(out)
	err := s.store.AppendDecision(ctx, s.decision(out.Location, b))
	if err != nil {
		s.log.WarnContext(ctx, "visitor: cannot log a decision", "err", err)
	}
}
