package notify

import (
	"context"
	"sync"
)

// Router sends each message through the notifier for its kind of
// recipient: Email for email addresses, Phone for anything else (phone
// numbers). A nil notifier answers ErrUnsupportedRecipient, as SMTP
// given a phone number does.
type Router struct {
	Email Notifier
	Phone Notifier
}

// Send routes m by m.To.
func (r Router) Send(ctx context.Context, m Message) error {
	n := r.Phone
	if IsEmail(m.To) {
		n = r.Email
	}
	if n == nil {
		return ErrUnsupportedRecipient
	}
	return n.Send(ctx, m)
}

// Receipt is what a delivery system said when it took a message: its id
// (Twilio's message SID), by which later status reports name it, and its
// first status. A caller that tracks deliveries asks for one with
// WithReceipt; a notifier that has an id fills it with SetReceipt.
type Receipt struct {
	mu     sync.Mutex
	id     string
	status string
}

// Get returns the message id and status; id is "" when the notifier gave
// none.
func (r *Receipt) Get() (id, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id, r.status
}

type receiptKey struct{}

// WithReceipt returns a context whose Send fills the returned Receipt.
func WithReceipt(ctx context.Context) (context.Context, *Receipt) {
	r := &Receipt{}
	return context.WithValue(ctx, receiptKey{}, r), r
}

// SetReceipt records the message id and status on ctx's Receipt, if the
// caller asked for one.
func SetReceipt(ctx context.Context, id, status string) {
	if r, ok := ctx.Value(receiptKey{}).(*Receipt); ok {
		r.mu.Lock()
		r.id, r.status = id, status
		r.mu.Unlock()
	}
}
