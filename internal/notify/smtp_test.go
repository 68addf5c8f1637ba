package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/cloudkey/cloudkey/internal/testcert"
)

// received is one message the test server accepted.
type received struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

// mailServer is a real SMTP server (emersion/go-smtp) on a loopback port.
type mailServer struct {
	addr string
	mu   sync.Mutex
	got  []received
}

// startMailServer starts a server; with tlsConf it offers STARTTLS, and
// with a password it offers AUTH PLAIN (over TLS only) for user "relay".
func startMailServer(t *testing.T, tlsConf *tls.Config, password string) *mailServer {
	t.Helper()
	ms := &mailServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{ms: ms, conn: c, password: password}, nil
	}))
	srv.Domain = "mx.test"
	srv.TLSConfig = tlsConf
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = discardLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ms
}

func (ms *mailServer) messages() []received {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]received(nil), ms.got...)
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

type session struct {
	ms       *mailServer
	conn     *smtp.Conn
	password string
	user     string
	cur      received
}

func (s *session) AuthMechanisms() []string {
	if s.password == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != "relay" || password != s.password {
			return smtp.ErrAuthFailed
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.password != "" && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.cur = received{from: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.user = s.user
	s.ms.mu.Lock()
	s.ms.got = append(s.ms.got, s.cur)
	s.ms.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

// selfSigned returns a server TLS config for 127.0.0.1 and a client config
// that trusts it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	c := testcert.New(t, "mx.test")
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}}, &tls.Config{RootCAs: c.Pool()}
}

const testLink = "https://cloudkey.example.com/g/Qx7pV2mN9sLk3Jd8Hf6Tg1Rw4Yb5Zc0Ae-_uIoPlKjHg"

func guestMessage() Message {
	return Message{
		To:      "ada@example.com",
		Subject: "Your guest pass for Harbor View — ready",
		Body:    "Hello Ada,\n\nYour pass works from 09:45 to 12:00 (Europe/Paris).\nA line starting with a dot:\n.\nEnd.",
		Link:    testLink,
	}
}

// decoded parses a received message and returns its headers and decoded
// body.
func decoded(t *testing.T, data []byte) (mail.Header, string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, data)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", cte)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Header, string(body)
}

func TestSMTPDeliversTheLink(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	tests := []struct {
		name     string
		tls      *tls.Config // the server's
		password string      // the server requires AUTH with it
		cfg      SMTPConfig
		wantTLS  bool
	}{
		{"plain relay", nil, "", SMTPConfig{TLS: NoTLS}, false},
		{"opportunistic without TLS", nil, "", SMTPConfig{TLS: StartTLSOpportunistic}, false},
		{"starttls", serverTLS, "", SMTPConfig{TLSConfig: clientTLS}, true},
		{"starttls and auth", serverTLS, "s3cret", SMTPConfig{TLSConfig: clientTLS, Username: "relay", Password: "s3cret"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := startMailServer(t, tt.tls, tt.password)
			cfg := tt.cfg
			cfg.Addr, cfg.From = ms.addr, "Harbor View <noreply@harbor.example>"
			n, err := NewSMTP(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Send(context.Background(), guestMessage()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := ms.messages()
			if len(got) != 1 {
				t.Fatalf("%d messages arrived, want 1", len(got))
			}
			m := got[0]
			if m.from != "noreply@harbor.example" || len(m.to) != 1 || m.to[0] != "ada@example.com" || m.tls != tt.wantTLS {
				t.Errorf("envelope from %q to %v, tls %v", m.from, m.to, m.tls)
			}
			if tt.password != "" && m.user != "relay" {
				t.Errorf("authenticated as %q", m.user)
			}
			h, body := decoded(t, m.data)
			subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
			if err != nil || subject != guestMessage().Subject {
				t.Errorf("subject %q (%v)", subject, err)
			}
			if from, _ := h.AddressList("From"); len(from) != 1 || from[0].Name != "Harbor View" {
				t.Errorf("From %q", h.Get("From"))
			}
			if h.Get("Message-ID") == "" || h.Get("Date") == "" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain; charset=utf-8") {
				t.Errorf("headers %v", h)
			}
			want := strings.ReplaceAll(guestMessage().Text(), "\n", "\r\n")
			if body != want {
				t.Errorf("body\n%q\nwant\n%q", body, want)
			}
			if !strings.Contains(body, "\r\n"+testLink+"\r\n") {
				t.Errorf("the link is not on a line of its own: %q", body)
			}
		})
	}
}

func TestSMTPRefusals(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	plain := startMailServer(t, nil, "")
	secured := startMailServer(t, serverTLS, "s3cret")
	ctx := context.Background()
	tests := []struct {
		name    string
		cfg     SMTPConfig
		msg     func(*Message)
		wantErr error  // matched with errors.Is, when set
		wantMsg string // contained in the error, when set
	}{
		{"starttls required but not offered", SMTPConfig{Addr: plain.addr}, nil, nil, "STARTTLS"},
		{"untrusted certificate", SMTPConfig{Addr: secured.addr}, nil, nil, "certificate"},
		{"wrong password", SMTPConfig{Addr: secured.addr, TLSConfig: clientTLS, Username: "relay", Password: "nope"}, nil, nil, "auth"},
		{"auth required", SMTPConfig{Addr: secured.addr, TLSConfig: clientTLS}, nil, nil, "mail from"},
		{"phone number", SMTPConfig{Addr: plain.addr, TLS: NoTLS}, func(m *Message) { m.To = "+14155550100" }, ErrUnsupportedRecipient, ""},
		{"display name", SMTPConfig{Addr: plain.addr, TLS: NoTLS}, func(m *Message) { m.To = "Ada <ada@example.com>" }, ErrInvalidMessage, ""},
		{"header injection", SMTPConfig{Addr: plain.addr, TLS: NoTLS}, func(m *Message) { m.Subject = "hi\r\nBcc: eve@example.com" }, ErrInvalidMessage, ""},
		{"no recipient", SMTPConfig{Addr: plain.addr, TLS: NoTLS}, func(m *Message) { m.To = "" }, ErrInvalidMessage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.From = "noreply@harbor.example"
			n, err := NewSMTP(cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := guestMessage()
			if tt.msg != nil {
				tt.msg(&m)
			}
			err = n.Send(ctx, m)
			if err == nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want %v / %q", err, tt.wantErr, tt.wantMsg)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error reveals the password: %v", err)
			}
		})
	}
	if n := len(plain.messages()) + len(secured.messages()); n != 0 {
		t.Errorf("%d messages arrived, want none", n)
	}
}

// TestSMTPHonoursTheDeadline talks to a server that accepts and never
// greets: Send must return by the context's deadline.
func TestSMTPHonoursTheDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	n, err := NewSMTP(SMTPConfig{Addr: ln.Addr().String(), From: "noreply@harbor.example", TLS: NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = n.Send(ctx, guestMessage())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v", d)
	}

	// Cancellation aborts at once too.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if err := n.Send(ctx, guestMessage()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want Canceled", err)
	}
}

func TestNewSMTPValidates(t *testing.T) {
	for _, cfg := range []SMTPConfig{
		{Addr: "smtp.example.com", From: "a@b.c"},
		{Addr: ":25", From: "a@b.c"},
		{Addr: "smtp.example.com:25", From: "not an address"},
		{Addr: "smtp.example.com:25", From: "a@b.c", TLS: TLSMode(9)},
	} {
		if _, err := NewSMTP(cfg); err == nil {
			t.Errorf("NewSMTP(%+v) accepted", cfg)
		}
	}
}
