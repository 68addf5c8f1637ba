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

// linkMessage is the message that carries v's guest link to to (its
// email or its phone). A text is short (no instructions: the guest page
// shows them), to stay within an SMS's 1,600 characters.
func (s *Service) linkMessage(v *visit, st *Settings, token, to string) notify.Message {
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
	m := notify.Message{To: to, Subject: "Your guest pass for " + place, Link: s.Link(token)}
	if !notify.IsEmail(to) {
		m.Body = fmt.Sprintf("Your guest pass for %s (%s) works from %s until %s. Open this link to unlock; do not share it:",
			place, strings.Join(doors, ", "), formatTime(v.Pass.Start, loc), formatTime(v.Pass.End, loc))
		return m
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\nYour guest pass for %s opens: %s.\n", name, place, strings.Join(doors, ", "))
	fmt.Fprintf(&b, "It works from %s until %s.\n", formatTime(v.Pass.Start, loc), formatTime(v.Pass.End, loc))
	if st.Instructions != "" {
		fmt.Fprintf(&b, "\n%s\n", st.Instructions)
	}
	b.WriteString("\nOpen this link on your phone to unlock the doors; do not share it:")
	m.Body = b.String()
	return m
}

// Delivery channels.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

func channelOf(to string) string {
	if notify.IsEmail(to) {
		return ChannelEmail
	}
	return ChannelSMS
}

func channelsOf(contact, also string) string {
	if also == "" {
		return channelOf(contact)
	}
	return channelOf(contact) + " and " + channelOf(also)
}

// sent is one message of a pass's current link: where it went and what
// the delivery system last said of it.
type sent struct {
	Channel   string    `json:"channel"`
	To        string    `json:"to"`
	MessageID string    `json:"messageId,omitempty"` // the delivery system's id (Twilio's SID)
	Status    string    `json:"status"`
	ErrorCode int       `json:"errorCode,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// Delivery statuses cloudkey sets itself; the others (queued, sent,
// delivered, undelivered, failed...) are the delivery system's.
const (
	// DeliveryHandedOver: the notifier took the message and reports no
	// status of its own (SMTP, the log notifier).
	DeliveryHandedOver = "handed_over"
	// DeliveryFailed: refused for good; ErrorCode and Reason say why.
	DeliveryFailed = "failed"
	// DeliveryRetrying: a transient failure; Envoy's redelivery of the
	// event sends the link again.
	DeliveryRetrying = "retrying"
)

// DeliveryState is one message of a pass's link, for the manager's view.
type DeliveryState struct {
	Channel   string // ChannelEmail or ChannelSMS
	To        string
	MessageID string
	// Status is the delivery system's (queued, sent, delivered,
	// undelivered, failed...) or one of the Delivery* constants.
	Status string
	// ErrorCode and Reason say why a message failed (Twilio's 21211,
	// 21610, 21614, 30006, 30007...).
	ErrorCode int
	Reason    string
	At        time.Time
}

// coded is an error carrying the delivery system's code
// (twilio.RefusedError).
type coded interface{ DeliveryCode() int }

// smsRef is how a message id is indexed beside the link tokens' hashes
// (which are hex, so the two never collide).
func smsRef(id string) string { return "msg:" + id }

// deliver sends a link decided by a committed transaction, to each
// recipient, and records each message's state on the pass. A transient
// failure is returned (the webhook answers 5xx and Envoy delivers the event
// again; the link is then sent with a fresh token) after the pass is marked
// unsent. A permanent one (a recipient the notifier cannot reach, a number
// Twilio refuses for good) is recorded on the pass and not retried.
func (s *Service) deliver(ctx context.Context, d *delivery, out Outcome) (Outcome, error) {
	if d == nil {
		return out, nil
	}
	var states []sent
	var transient, primary error
	for i, m := range d.msgs {
		sctx, cancel := context.WithTimeout(ctx, s.cfg.NotifyTimeout)
		sctx, receipt := notify.WithReceipt(sctx)
		err := s.notify.Send(sctx, m)
		cancel()
		st := sent{Channel: channelOf(m.To), To: m.To, Status: DeliveryHandedOver, At: s.now().UTC()}
		switch {
		case err == nil:
			if id, status := receipt.Get(); id != "" {
				st.MessageID, st.Status = id, status
			}
		case errors.Is(err, notify.ErrUnsupportedRecipient) || errors.Is(err, notify.ErrInvalidMessage):
			st.Status, st.Reason = DeliveryFailed, err.Error()
			var c coded
			if errors.As(err, &c) {
				st.ErrorCode = c.DeliveryCode()
			}
			if i == 0 {
				primary = err
			}
		default:
			st.Status, st.Reason = DeliveryRetrying, err.Error()
			if transient == nil {
				transient = err
			}
		}
		states = append(states, st)
	}
	// Record the states even if the caller has given up.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rerr := s.transact(rctx, []string{d.visitKey}, func(t *txn) error {
		v, err := t.visit(d.visitKey)
		if err != nil || v == nil || v.Pass == nil || v.Pass.TokenHash != d.hash {
			return err // the pass moved on meanwhile; nothing to correct
		}
		v.Pass.Deliveries = states
		for _, st := range states {
			if st.MessageID != "" {
				t.setToken(smsRef(st.MessageID), v.Key)
			}
		}
		switch {
		case transient != nil:
			v.Pass.NotifiedTo, v.Pass.NotifiedAlso = "", ""
			v.Pass.NotifyError = transient.Error()
		case primary != nil:
			v.Pass.NotifyError = primary.Error()
		}
		t.put(v)
		return nil
	})
	if rerr != nil {
		s.log.ErrorContext(ctx, "visitor: cannot record the guest link's delivery", "visit", d.visitKey, "err", rerr)
	}
	if transient != nil {
		return out, fmt.Errorf("visitor: send the guest link of pass %s: %w", out.PassID, transient)
	}
	for _, st := range states {
		if st.Status == DeliveryFailed {
			s.log.WarnContext(ctx, "visitor: the guest link cannot be delivered to this recipient", "visit", d.visitKey, "pass", out.PassID,
				"channel", st.Channel, "code", st.ErrorCode, "err", st.Reason)
			out.Reason += "; not delivered by " + st.Channel + ": " + st.Reason
		}
	}
	return out, nil
}

// deliveryRank orders statuses so that a late report never overwrites a
// later one (Twilio's callbacks may arrive out of order).
func deliveryRank(status string) int {
	switch status {
	case "accepted", "scheduled", "queued", DeliveryHandedOver:
		return 1
	case "sending":
		return 2
	case "sent":
		return 3
	case "delivered", "undelivered", "failed", "canceled", "read":
		return 4
	}
	return 0
}

// UpdateDelivery records what the delivery system reports of a message
// (a Twilio status callback): its status and, for a failure, the code and
// a reason a manager can act on. An unknown or expired message id is not
// an error (nothing to record); a status older than the one recorded is
// ignored. The error is only for a failure of the store.
func (s *Service) UpdateDelivery(ctx context.Context, messageID, status string, code int, reason string) error {
	key, ok, err := s.store.TokenVisit(ctx, smsRef(messageID))
	if err != nil {
		return fmt.Errorf("visitor: look up message %s: %w", messageID, err)
	}
	if !ok {
		return nil
	}
	return s.transact(ctx, []string{key}, func(t *txn) error {
		v, err := t.visit(key)
		if err != nil || v == nil || v.Pass == nil {
			return err
		}
		for i := range v.Pass.Deliveries {
			d := &v.Pass.Deliveries[i]
			if d.MessageID != messageID || deliveryRank(status) < deliveryRank(d.Status) {
				continue
			}
			d.Status, d.ErrorCode, d.Reason, d.At = status, code, reason, s.now().UTC()
			t.put(v)
		}
		return nil
	})
}
