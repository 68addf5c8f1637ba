package notify

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"github.com/cloudkey/cloudkey/internal/redact"
)

// Log is a Notifier that writes each message to a slog.Logger instead of
// delivering it. It is cloudkey's embedded default, for development: with
// RevealLinks on, the full link is logged at info level so that the
// developer can open it. Anywhere else leave RevealLinks off: a guest link
// opens doors, and logs are read by more people, and kept longer, than the
// link's recipient; the link is then logged with its last path segment
// (the token) cut to its first four characters.
type Log struct {
	log    *slog.Logger
	reveal bool
}

// NewLog returns a Log notifier writing to logger (nil: slog.Default()).
// revealLinks logs links in full; see Log.
func NewLog(logger *slog.Logger, revealLinks bool) *Log {
	if logger == nil {
		logger = slog.Default()
	}
	return &Log{log: logger, reveal: revealLinks}
}

// Send logs m at info level. It never fails.
func (l *Log) Send(ctx context.Context, m Message) error {
	// Revealed: a redacting handler (telemetry.LogHandler) would
	// otherwise cut the token the developer needs. The recipient's email
	// is not revealed.
	var link any = redact.Revealed(m.Link)
	if !l.reveal {
		link = RedactLink(m.Link)
	}
	l.log.InfoContext(ctx, "notify: message not sent (log notifier)",
		"to", m.To, "subject", m.Subject, "link", link, "body", m.Body)
	return nil
}

// RedactLink shortens the last path segment of link (where a token lives)
// to its first four characters and drops the query and fragment, so that a
// log line shows which link it was without making it usable.
func RedactLink(link string) string {
	if link == "" {
		return ""
	}
	u, err := url.Parse(link)
	if err != nil {
		return "[unparsable link]"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	dir, last := "", u.Path
	if i := strings.LastIndexByte(u.Path, '/'); i >= 0 {
		dir, last = u.Path[:i+1], u.Path[i+1:]
	}
	if len(last) > 4 {
		last = last[:4] + "…"
	}
	u.Path, u.RawPath = "", ""
	return fmt.Sprintf("%s%s%s", u.String(), dir, last)
}

// Memory is a Notifier that keeps every message, for tests (a browser test
// reads the guest link from it). It is safe for concurrent use.
type Memory struct {
	mu   sync.Mutex
	msgs []Message
	err  error
}

// Send keeps m, or fails with the error given to SetErr.
func (n *Memory) Send(_ context.Context, m Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.err != nil {
		return n.err
	}
	n.msgs = append(n.msgs, m)
	return nil
}

// SetErr makes later sends fail with err (nil: succeed again).
func (n *Memory) SetErr(err error) {
	n.mu.Lock()
	n.err = err
	n.mu.Unlock()
}

// Messages returns the kept messages, oldest first.
func (n *Memory) Messages() []Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Message(nil), n.msgs...)
}

// Last returns the latest message to to, if any.
func (n *Memory) Last(to string) (Message, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.msgs) - 1; i >= 0; i-- {
		if n.msgs[i].To == to {
			return n.msgs[i], true
		}
	}
	return Message{}, false
}
