package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeClock is advanced by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func throttledLogger(buf *bytes.Buffer, clock *fakeClock) *slog.Logger {
	return slog.New(&logHandler{h: slog.NewTextHandler(buf, nil), t: newThrottle(clock.now)})
}

func TestLogThrottle(t *testing.T) {
	type step struct {
		advance time.Duration
		level   slog.Level
		msg     string
		n       int    // records logged
		lines   int    // lines written
		last    string // the last line written contains this ("" = nothing to check)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a burst passes, the rest is held back", []step{
			{0, slog.LevelError, "rpc failed", logBurst + 5, logBurst, ""},
		}},
		{"a second later one passes and counts the held back", []step{
			{0, slog.LevelError, "rpc failed", logBurst + 5, logBurst, ""},
			{logEvery, slog.LevelError, "rpc failed", 3, 1, "suppressed=5"},
			{3 * logEvery, slog.LevelError, "rpc failed", 1, 1, "suppressed=2"},
		}},
		{"no held-back count when none was held back", []step{
			{0, slog.LevelWarn, "cache unavailable", 1, 1, `msg="cache unavailable"`},
		}},
		{"messages and levels are throttled apart", []step{
			{0, slog.LevelError, "rpc failed", logBurst + 1, logBurst, ""},
			{0, slog.LevelError, "other failure", logBurst, logBurst, ""},
			{0, slog.LevelWarn, "rpc failed", logBurst, logBurst, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
			log := throttledLogger(&buf, clock)
			for i, s := range tt.steps {
				clock.t = clock.t.Add(s.advance)
				buf.Reset()
				for range s.n {
					log.Log(context.Background(), s.level, s.msg)
				}
				lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
				if buf.Len() == 0 {
					lines = nil
				}
				if len(lines) != s.lines {
					t.Fatalf("step %d: %d lines written, want %d:\n%s", i, len(lines), s.lines, buf.String())
				}
				if s.last != "" && !strings.Contains(lines[len(lines)-1], s.last) {
					t.Errorf("step %d: last line %q lacks %q", i, lines[len(lines)-1], s.last)
				}
				if s.last == "" || !strings.Contains(s.last, "suppressed") {
					if strings.Contains(buf.String(), "suppressed=") {
						t.Errorf("step %d: a held-back count where none was held back:\n%s", i, buf.String())
					}
				}
			}
		})
	}
}

// Loggers derived with With share their parent's throttle, as every
// request's logger derives from the server's.
func TestLogThrottleSharedByDerivedLoggers(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	log := throttledLogger(&buf, clock)
	for i := range logBurst * 2 {
		log.With("request", i).WithGroup("g").Error("rpc failed")
	}
	if n := strings.Count(buf.String(), "\n"); n != logBurst {
		t.Errorf("%d lines through derived loggers, want %d", n, logBurst)
	}
}

// The tracked messages stay bounded however many distinct ones come.
func TestLogThrottleBoundsItsKeys(t *testing.T) {
	th := newThrottle(time.Now)
	for i := range logKeys * 3 {
		if ok, _ := th.allow(0, strings.Repeat("x", i%97)+string(rune(i))); !ok {
			t.Fatalf("a first record of message %d was held back", i)
		}
	}
	if len(th.keys) > logKeys {
		t.Errorf("%d messages tracked, want at most %d", len(th.keys), logKeys)
	}
}
