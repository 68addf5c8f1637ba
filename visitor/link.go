package visitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/notify"
)

// Link returns the guest link for a token: BaseURL/g/{token}.
func (s *Service) Link(token string) string { return s.baseURL + "/g/" + token }

// zone is where a visit's times are shown: the settings' time zone, else
// the location's from Envoy, else UTC.
func zone(st *Settings, v *visit) *time.Location {
	for _, name := range []string{st.TimeZone, v.TimeZone} {
		if name == "" || name == "Local" {
			continue
		}
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return time.UTC
}

// placeName is the name of the building v's pass is for: Envoy's
// location name (or the tenant building's, for a tile registration), else
// the property's name, else "the building".
func (s *Service) placeName(v *visit) string {
	if v.LocationName != "" {
		return v.LocationName
	}
	if s.cfg.PropertyName != nil && v.Pass != nil {
		if n := strings.TrimSpace(s.cfg.PropertyName(s.property(v.Pass.Property))); n != "" {
			return n
		}
	}
	return "the building"
}

// formatTime is how the guest page and messages show a time.
func formatTime(t time.Time, loc *time.Location) string {
	return t.In(loc).Format("Mon 2 Jan 2006, 15:04") + " (" + loc.String() + ")"
}

// linkMessage is the message that carries v's guest link.
func (s *Service) linkMessage(v *visit, st *Settings, token string) notify.Message {
	loc := zone(st, v)
	place := s.placeName(v)
	name := v.Name
	if name == "" {
		name = "there"
	}
	doors := make([]string, len(v.Pass.Entries))
	for i, e := range v.Pass.Entries {
		doors[i] = e.Name
		if doors[i] == "" {
			doors[i] = "entry " + e.ID
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\nYour guest pass for %s opens: %s.\n", name, place, strings.Join(doors, ", "))
	fmt.Fprintf(&b, "It works from %s until %s.\n", formatTime(v.Pass.Start, loc), formatTime(v.Pass.End, loc))
	if st.Instructions != "" {
		fmt.Fprintf(&b, "\n%s\n", st.Instructions)
	}
	b.WriteString("\nOpen this link on your phone to unlock the doors; do not share it:")
	return notify.Message{
		To:      v.contact(),
		Subject: "Your guest pass for " + place,
		Body:    b.String(),
		Link:    s.Link(token),
	}
}

// deliver sends a link decided by a committed transaction. A transient
// failure is returned (the webhook answers 5xx and Envoy delivers the event
// again; the link is then sent with a fresh token) after the pass is marked
// unsent. A permanent one (a recipient the notifier cannot reach) is
// recorded on the pass and not retried.
func (s *Service) deliver(ctx context.Context, d *delivery, out Outcome) (Outcome, error) {
	if d == nil {
		return out, nil
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.NotifyTimeout)
	err := s.notify.Send(sctx, d.msg)
	cancel()
	if err == nil {
		return out, nil
	}
	permanent := errors.Is(err, notify.ErrUnsupportedRecipient) || errors.Is(err, notify.ErrInvalidMessage)
	// Record the failure even if the caller has given up.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	sendErr := err
	rerr := s.transact(rctx, []string{d.visitKey}, func(t *txn) error {
		v, err := t.visit(d.visitKey)
		if err != nil || v == nil || v.Pass == nil || v.Pass.TokenHash != d.hash {
			return err // the pass moved on meanwhile; nothing to correct
		}
		if !permanent {
			v.Pass.NotifiedTo = ""
		}
		v.Pass.NotifyError = sendErr.Error()
		t.put(v)
		return nil
	})
	if rerr != nil {
		s.log.ErrorContext(ctx, "visitor: cannot record a failed link delivery", "visit", d.visitKey, "err", rerr)
	}
	if permanent {
		s.log.WarnContext(ctx, "visitor: the guest link cannot be delivered to this recipient", "visit", d.visitKey, "pass", out.PassID, "err", err)
		out.Reason = strings.Replace(out.Reason, "link sent to", "link for", 1) + " not delivered: " + err.Error()
		return out, nil
	}
	return out, fmt.Errorf("visitor: send the guest link of pass %s: %w", out.PassID, err)
}
