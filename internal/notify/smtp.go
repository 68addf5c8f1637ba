package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"
)

// TLSMode says how an SMTP notifier protects the connection.
type TLSMode int

const (
	// StartTLSRequired (the zero value) upgrades the connection with
	// STARTTLS and refuses to send if the server does not offer it, so
	// that an attacker in the path cannot strip it and read the links.
	StartTLSRequired TLSMode = iota
	// StartTLSOpportunistic uses STARTTLS when the server offers it and
	// sends in the clear otherwise.
	StartTLSOpportunistic
	// ImplicitTLS speaks TLS from the first byte (port 465, "SMTPS").
	ImplicitTLS
	// NoTLS sends in the clear: for a relay on the same host.
	NoTLS
)

// SMTPConfig configures an SMTP notifier.
type SMTPConfig struct {
	// Addr is the relay's host:port, e.g. "smtp.example.com:587".
	Addr string
	// From is the sender, a bare address or with a display name:
	// "Harbor View <noreply@example.com>".
	From string
	// Username and Password, when set, authenticate with AUTH PLAIN, which
	// net/smtp only sends over TLS or to a loopback host.
	Username, Password string
	// TLS selects how the connection is protected; see TLSMode.
	TLS TLSMode
	// TLSConfig verifies the server; nil means the system roots and the
	// host of Addr as the server name.
	TLSConfig *tls.Config
	// HelloName is sent with EHLO; empty means "localhost".
	HelloName string
	// Timeout bounds one message when the context allows longer; zero
	// means 30 s.
	Timeout time.Duration
}

// SMTP is a Notifier that sends email through a relay, one connection per
// message (guest links are few; a pool would only hold idle connections
// that relays close anyway). It is safe for concurrent use.
type SMTP struct {
	cfg    SMTPConfig
	host   string
	from   *mail.Address
	domain string // for Message-ID
	tls    *tls.Config
}

// NewSMTP validates cfg and returns a notifier. It does not connect.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("notify: smtp address %q is not host:port", cfg.Addr)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("notify: smtp sender %q: %w", cfg.From, err)
	}
	if cfg.TLS < StartTLSRequired || cfg.TLS > NoTLS {
		return nil, fmt.Errorf("notify: unknown TLS mode %d", cfg.TLS)
	}
	if cfg.HelloName == "" {
		cfg.HelloName = "localhost"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = host
		}
	}
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	return &SMTP{cfg: cfg, host: host, from: from, domain: domain, tls: tc}, nil
}

// Send delivers m to its email address. A phone number is
// ErrUnsupportedRecipient. The whole conversation is bounded by ctx and
// by Timeout; cancelling ctx aborts it at once.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := checkEmailMessage(m); err != nil {
		return err
	}
	msg := s.compose(m, time.Now())
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.send(ctx, m.To, msg); err != nil {
		if cerr := ctxErr(ctx); cerr != nil {
			return fmt.Errorf("notify: smtp to %s: %w (%w)", m.To, cerr, err)
		}
		return fmt.Errorf("notify: smtp to %s: %w", m.To, err)
	}
	return nil
}

// ctxErr is ctx.Err(), or DeadlineExceeded once the deadline has passed:
// the connection's deadline, set to the context's, can fire a moment
// before the context's own timer does.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func checkEmailMessage(m Message) error {
	switch {
	case m.To == "":
		return fmt.Errorf("%w: no recipient", ErrInvalidMessage)
	case !strings.Contains(m.To, "@"):
		return fmt.Errorf("%w: %q is not an email address", ErrUnsupportedRecipient, m.To)
	case !IsEmail(m.To):
		return fmt.Errorf("%w: recipient %q is not a bare email address", ErrInvalidMessage, m.To)
	case strings.ContainsAny(m.Subject, "\r\n"):
		// A line break would let the subject add headers.
		return fmt.Errorf("%w: the subject has a line break", ErrInvalidMessage)
	}
	return nil
}

func (s *SMTP) send(ctx context.Context, to string, msg []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	// net/smtp knows no contexts: the deadline bounds every read and
	// write, and cancellation moves it to the past, which fails the
	// pending one at once.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.cfg.TLS == ImplicitTLS {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HelloName); err != nil {
		return fmt.Errorf("ehlo: %w", err)
	}
	if s.cfg.TLS == StartTLSRequired || s.cfg.TLS == StartTLSOpportunistic {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tls); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
		} else if s.cfg.TLS == StartTLSRequired {
			return errors.New("the server does not offer STARTTLS, which this notifier requires")
		}
	}
	if s.cfg.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the server does not offer AUTH, and credentials are configured")
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("rcpt to: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	// The relay has accepted the message; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// compose writes m as an RFC 5322 message: UTF-8 plain text in
// quoted-printable, so that any body survives 7-bit relays, and the
// subject as an RFC 2047 encoded word when it is not ASCII.
func (s *SMTP) compose(m Message, now time.Time) []byte {
	var b bytes.Buffer
	header := func(k, v string) {
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
		b.WriteString("\r\n")
	}
	header("From", s.from.String())
	header("To", (&mail.Address{Address: m.To}).String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+rand.Text()+"@"+s.domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(m.Text())) // writes to a bytes.Buffer do not fail
	_ = qp.Close()
	return b.Bytes()
}
