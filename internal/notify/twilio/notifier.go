package twilio

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudkey/cloudkey/internal/notify"
)

// Notifier is a notify.Notifier that texts messages to phone numbers
// through a Client. The text is the message's Text (body, then link); SMS
// have no subject. Email recipients answer notify.ErrUnsupportedRecipient,
// so that a caller holding both an SMTP and an SMS notifier can send to
// each what it reaches.
type Notifier struct {
	c *Client
	// sent, when set, is told each message created, for delivery
	// tracking (the pass's delivery state).
	sent func(ctx context.Context, to string, m Message)
}

// NewNotifier returns a Notifier sending through c. onSent, when not nil,
// is called after each message Twilio accepted, with its SID to match the
// status callbacks against.
func NewNotifier(c *Client, onSent func(ctx context.Context, to string, m Message)) *Notifier {
	return &Notifier{c: c, sent: onSent}
}

// Send texts m to m.To, an E.164 number. The message's SID and first
// status go to the context's notify.Receipt, when the caller asked for
// one, to match the status callbacks against. A refusal that is final for the
// recipient (*RefusedError) also matches notify.ErrInvalidMessage, which
// callers treat as permanent; a recipient that is an email address
// matches notify.ErrUnsupportedRecipient.
func (n *Notifier) Send(ctx context.Context, m notify.Message) error {
	to := strings.TrimSpace(m.To)
	if notify.IsEmail(to) {
		return notify.ErrUnsupportedRecipient
	}
	if !e164.MatchString(to) {
		return fmt.Errorf("%w: %w", notify.ErrInvalidMessage, &RefusedError{Code: CodeInvalidTo,
			Reason: "the phone number is not in international format (+ and country code): " + Reason(CodeInvalidTo)})
	}
	msg, err := n.c.Send(ctx, to, m.Text())
	if err != nil {
		if errors.Is(err, ErrRefused) {
			return fmt.Errorf("%w: %w", notify.ErrInvalidMessage, err)
		}
		return err
	}
	notify.SetReceipt(ctx, msg.SID, string(msg.Status))
	if n.sent != nil {
		n.sent(ctx, to, msg)
	}
	return nil
}
