package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestCheckFailure(t *testing.T) {
	const secret = "s3cret-Key-0123456789"
	for _, tc := range []struct {
		name string
		err  error
		want CheckReason
	}{
		{"401", &StatusError{Op: "login", Status: 401, Body: "no"}, CheckBadCredentials},
		{"403", &StatusError{Op: "login", Status: 403}, CheckBadCredentials},
		{"404", &StatusError{Op: "login", Status: 404}, CheckUnexpected},
		{"500", &StatusError{Op: "login", Status: 500}, CheckUnexpected},
		{"503 is still an answer", &StatusError{Op: "login", Status: 503}, CheckUnexpected},
		{"no answer", fmt.Errorf("login: %w: dial tcp: connection refused", ErrUnavailable), CheckUnreachable},
		{"deadline", fmt.Errorf("login: %w", context.DeadlineExceeded), CheckUnreachable},
		{"other", errors.New("login: decode answer: bad JSON"), CheckUnexpected},
		{"echoed secret", &StatusError{Op: "login", Status: 422, Body: `{"message":"key ` + secret + ` is malformed"}`}, CheckUnexpected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := CheckFailure("harbor-view.kisi", tc.err, "", secret)
			if ce.Reason != tc.want {
				t.Errorf("Reason = %q, want %q", ce.Reason, tc.want)
			}
			msg := ce.Error()
			if !strings.HasPrefix(msg, "connection check of harbor-view.kisi: "+tc.want.String()+": ") {
				t.Errorf("message %q", msg)
			}
			if strings.Contains(msg, secret) {
				t.Errorf("message %q shows the secret", msg)
			}
			if !errors.Is(ce, tc.err) {
				t.Errorf("%v does not unwrap to %v", ce, tc.err)
			}
		})
	}
	if s := CheckReason(42).String(); s != "CheckReason(42)" {
		t.Errorf("unknown reason: %q", s)
	}
}
