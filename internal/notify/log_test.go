package notify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/internal/telemetry"
)

func TestLogNotifier(t *testing.T) {
	tests := []struct {
		name     string
		reveal   bool
		want     string
		mustLack string
	}{
		{"development reveals the link", true, testLink, ""},
		{"otherwise the token is cut", false, "https://cloudkey.example.com/g/Qx7p…", "Qx7pV2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			n := NewLog(slog.New(slog.NewTextHandler(&buf, nil)), tt.reveal)
			if err := n.Send(context.Background(), guestMessage()); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if !strings.Contains(out, "level=INFO") || !strings.Contains(out, tt.want) || !strings.Contains(out, "ada@example.com") {
				t.Errorf("log %q lacks %q", out, tt.want)
			}
			if tt.mustLack != "" && strings.Contains(out, tt.mustLack) {
				t.Errorf("log %q reveals the token", out)
			}
		})
	}
}

func TestRedactLink(t *testing.T) {
	for in, want := range map[string]string{
		"":                                   "",
		"https://h/g/abcdefgh":               "https://h/g/abcd…",
		"https://h/g/abc":                    "https://h/g/abc",
		"https://u:p@h/x?token=secret#frag":  "https://h/x",
		"http://h:8080/a/b/c/tokentokentoke": "http://h:8080/a/b/c/toke…",
		"%zz":                                "[unparsable link]",
	} {
		if got := RedactLink(in); got != want {
			t.Errorf("RedactLink(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMessageText(t *testing.T) {
	for _, tt := range []struct {
		m    Message
		want string
	}{
		{Message{Body: "Hi\n", Link: "L"}, "Hi\n\nL\n"},
		{Message{Body: "Open L now", Link: "L"}, "Open L now\n"},
		{Message{Link: "L"}, "L\n"},
		{Message{Body: "Hi"}, "Hi\n"},
	} {
		if got := tt.m.Text(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestMemory(t *testing.T) {
	var n Memory
	ctx := context.Background()
	_ = n.Send(ctx, Message{To: "a@x", Link: "1"})
	_ = n.Send(ctx, Message{To: "b@x", Link: "2"})
	_ = n.Send(ctx, Message{To: "a@x", Link: "3"})
	if m, ok := n.Last("a@x"); !ok || m.Link != "3" || len(n.Messages()) != 3 {
		t.Errorf("Last = %+v %v; %d messages", m, ok, len(n.Messages()))
	}
	boom := errors.New("boom")
	n.SetErr(boom)
	if err := n.Send(ctx, Message{To: "c@x"}); !errors.Is(err, boom) || len(n.Messages()) != 3 {
		t.Errorf("failing send: %v", err)
	}
	if _, ok := n.Last("c@x"); ok {
		t.Error("a failed message was kept")
	}
}

func TestIsEmail(t *testing.T) {
	for to, want := range map[string]bool{
		"ada@example.com": true, "+14155550100": false, "Ada <ada@example.com>": false, "": false, "a@b\r\nX: y": false,
	} {
		if IsEmail(to) != want {
			t.Errorf("IsEmail(%q) = %v", to, !want)
		}
	}
}

// Behind the redacting handler cloudkey logs with, development still gets
// the whole link (it exists to be opened) but not the recipient's email;
// otherwise the token stays cut.
func TestLogNotifierBehindRedaction(t *testing.T) {
	for _, reveal := range []bool{true, false} {
		var buf bytes.Buffer
		n := NewLog(slog.New(telemetry.LogHandler(slog.NewTextHandler(&buf, nil))), reveal)
		if err := n.Send(context.Background(), guestMessage()); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if got := strings.Contains(out, testLink); got != reveal {
			t.Errorf("reveal=%v: full link logged = %v: %q", reveal, got, out)
		}
		if strings.Contains(out, "ada@example.com") || !strings.Contains(out, "a***@example.com") {
			t.Errorf("reveal=%v: recipient not redacted: %q", reveal, out)
		}
	}
}
