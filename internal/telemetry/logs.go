package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cloudkey/cloudkey/internal/redact"
)

// LogHandler wraps h so that every record carries the request id of its
// context (request_id; trace_id and span_id too when the request is
// traced), and no record carries a full email or a token: the message and
// every string, error and Stringer value go through redact.Text. Values
// wrapped in redact.Revealed pass unchanged. Log with the *Context
// methods (InfoContext, ...) for the request id to be found. Wrapping
// twice is the same as once.
//
// Repeated records are throttled (see logBurst): past a burst, one
// record per message and level per second is written, and it carries
// suppressed=N for the like records held back.
func LogHandler(h slog.Handler) slog.Handler {
	if l, ok := h.(*logHandler); ok {
		return l
	}
	return &logHandler{h: h, t: newThrottle(time.Now)}
}

type logHandler struct {
	h slog.Handler
	t *throttle
}

func (l *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l *logHandler) Handle(ctx context.Context, rec slog.Record) error {
	ok, suppressed := l.t.allow(int(rec.Level), rec.Message)
	if !ok {
		return nil
	}
	out := slog.NewRecord(rec.Time, rec.Level, redact.Text(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	if id := RequestID(ctx); id != "" {
		out.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		out.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if suppressed > 0 {
		out.AddAttrs(slog.Int64("suppressed", suppressed))
	}
	return l.h.Handle(ctx, out)
}

func (l *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return &logHandler{h: l.h.WithAttrs(red), t: l.t}
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{h: l.h.WithGroup(name), t: l.t}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value
	if v.Kind() == slog.KindLogValuer {
		if r, ok := v.Any().(redact.Revealed); ok {
			return slog.String(a.Key, string(r))
		}
		v = v.Resolve()
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redact.Text(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]slog.Attr, len(g))
		for i, x := range g {
			red[i] = redactAttr(x)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(red...)}
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, redact.Text(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, redact.Text(x.String()))
		case []string:
			red := make([]string, len(x))
			for i, s := range x {
				red[i] = redact.Text(s)
			}
			return slog.Any(a.Key, red)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
