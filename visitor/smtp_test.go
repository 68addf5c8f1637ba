package visitor

import (
	"bytes"
	"context"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/cloudkey/cloudkey/internal/notify"
)

// inbox is a real SMTP server (emersion/go-smtp) on a loopback port that
// keeps what it receives.
type inbox struct {
	mu   sync.Mutex
	msgs [][]byte
	rcpt []string
}

func (b *inbox) NewSession(*smtp.Conn) (smtp.Session, error) { return &inboxSession{b: b}, nil }

type inboxSession struct {
	b  *inbox
	to string
}

func (s *inboxSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *inboxSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = to
	return nil
}
func (s *inboxSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, data)
	s.b.rcpt = append(s.b.rcpt, s.to)
	s.b.mu.Unlock()
	return nil
}
func (s *inboxSession) Reset()        {}
func (s *inboxSession) Logout() error { return nil }

func startInbox(t *testing.T) (*inbox, string) {
	t.Helper()
	b := &inbox{}
	srv := smtp.NewServer(b)
	srv.Domain = "mx.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return b, ln.Addr().String()
}

// TestLinkBySMTP sends a guest link through a real SMTP server and opens
// the pass with the token from the message that arrived.
func TestLinkBySMTP(t *testing.T) {
	h := newHarness(t)
	box, addr := startInbox(t)
	n, err := notify.NewSMTP(notify.SMTPConfig{Addr: addr, From: "Harbor View <noreply@harbor.example>", TLS: notify.NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = h.newService(n)
	h.configure(nil)
	if out := h.handle(event(t, "invite_created")); out.Action != ActionIssued {
		t.Fatal(out)
	}
	box.mu.Lock()
	msgs, rcpt := box.msgs, box.rcpt
	box.mu.Unlock()
	if len(msgs) != 1 || rcpt[0] != "ada.lovelace@example.com" {
		t.Fatalf("%d messages to %v", len(msgs), rcpt)
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`https://ck\.example\.com/g/([A-Za-z0-9_-]+)`).FindSubmatch(body)
	if link == nil {
		t.Fatalf("no link in %s", body)
	}
	h.clock.Set(ts("2026-11-24T09:00:00Z"))
	view := must[View](t)(h.svc.PassView(context.Background(), string(link[1])))
	if view.State != StateActive || view.VisitorName != "Ada Lovelace" {
		t.Errorf("the emailed link opens %+v", view)
	}
}
