// Package notify delivers short messages, such as a visitor's guest link,
// to an email address or a phone number.
//
// Implementations: SMTP sends email through a relay; Log writes messages to
// a slog.Logger and is the embedded default, for development, where the
// developer opens the link from the log; Memory keeps them, for tests.
//
// It must not import Redis, gRPC or the domain packages: visitor calls it
// through its Notifier interface.
package notify

import (
	"context"
	"errors"
	"net/mail"
	"strings"
)

// Message is one notification.
type Message struct {
	// To is an email address ("ada@example.com") or a phone number
	// ("+14155550100"); an implementation that cannot reach that kind of
	// recipient answers ErrUnsupportedRecipient.
	To string
	// Subject is a single line; email uses it as the subject.
	Subject string
	// Body is plain text, without the link.
	Body string
	// Link, when set, is added after the body. It may be a credential (a
	// guest link opens doors): implementations must not log it in full
	// unless told to.
	Link string
}

// Notifier sends messages. Send returns by the context's deadline; a nil
// error means the message was handed to the delivery system, not that it
// was read.
type Notifier interface {
	Send(ctx context.Context, m Message) error
}

// Errors of Send, matched with errors.Is.
var (
	// ErrUnsupportedRecipient: this notifier cannot reach the recipient
	// (an SMTP notifier given a phone number).
	ErrUnsupportedRecipient = errors.New("notify: cannot deliver to this kind of recipient")
	// ErrInvalidMessage: the message is malformed (no recipient, a line
	// break in the subject, an address that does not parse).
	ErrInvalidMessage = errors.New("notify: invalid message")
)

// IsEmail reports whether to is a bare email address (no display name),
// as Message.To holds one.
func IsEmail(to string) bool {
	a, err := mail.ParseAddress(to)
	return err == nil && a.Name == "" && a.Address == to && !strings.ContainsAny(to, "\r\n")
}

// Text is the message as plain text: the body, then the link on a line of
// its own unless the body already contains it.
func (m Message) Text() string {
	text := strings.TrimRight(m.Body, "\r\n")
	if m.Link != "" && !strings.Contains(text, m.Link) {
		if text != "" {
			text += "\n\n"
		}
		text += m.Link
	}
	return text + "\n"
}
