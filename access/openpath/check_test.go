package openpath

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
)

// Check against the simulator over real HTTP: each failure is classified
// so that a manager knows what to fix, and no message shows the password.
func TestCheck(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	const wrongPassword = "not-the-password-Zq9x"
	for _, tc := range []struct {
		name   string
		cfg    Config
		faults *sim.Faults
		closed bool // the client's URL is a closed port
		ctxFor time.Duration
		want   access.CheckReason // -1: no error
		words  []string           // in the message
	}{
		{name: "good, first org", want: -1},
		{name: "good, org given", cfg: Config{OrgID: "1"}, want: -1},
		{name: "wrong password", cfg: Config{Email: sim.DemoServiceEmail, Password: wrongPassword},
			want: access.CheckBadCredentials, words: []string{"HTTP 401"}},
		{name: "wrong email", cfg: Config{Email: "nobody@example.com", Password: sim.DemoServicePassword},
			want: access.CheckBadCredentials},
		{name: "unknown org", cfg: Config{OrgID: "999"},
			want: access.CheckUnknownOrganisation, words: []string{"organisation 999", "(1)"}},
		{name: "unreachable", closed: true, want: access.CheckUnreachable},
		{name: "server error", faults: &sim.Faults{ErrorRate: 1, ErrorStatus: 500, IncludeLogin: true},
			want: access.CheckUnexpected, words: []string{"HTTP 500"}},
		{name: "no answer before the deadline", faults: &sim.Faults{Hang: true, IncludeLogin: true},
			ctxFor: 200 * time.Millisecond, want: access.CheckUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Name = "harbor-view.openpath"
			e := newEnvConfig(t, sim.DemoSeed(), cfg)
			c := e.client
			if tc.closed {
				cfg.BaseURL = closedURL
				c = newClient(t, cfg)
			}
			if tc.faults != nil {
				if err := e.sim.SetFaults(*tc.faults); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			if tc.ctxFor > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxFor)
				defer cancel()
			}
			err := c.Check(ctx)
			if tc.want < 0 {
				if err != nil {
					t.Fatalf("Check = %v", err)
				}
				// The checked client serves without logging in again.
				if _, err := c.FindUserByEmail(ctx, "erin@example.com"); err != nil {
					t.Fatal(err)
				}
				if n := e.sim.Calls(sim.OpLogin); n != 1 {
					t.Errorf("%d logins, want the check's only", n)
				}
				return
			}
			var ce *access.CheckError
			if !errors.As(err, &ce) || ce.Reason != tc.want {
				t.Fatalf("Check = %v, want a CheckError %q", err, tc.want)
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range append(tc.words, "harbor-view.openpath", tc.want.String()) {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			for _, secret := range []string{wrongPassword, sim.DemoServicePassword} {
				if strings.Contains(msg, secret) {
					t.Errorf("message %q shows the password", msg)
				}
			}
			// A failing check does not count against the breaker.
			for range 2 * breakerConsecutive {
				_ = c.Check(ctx)
			}
			if st := c.BreakerState(); st != "closed" {
				t.Errorf("breaker %s after failing checks", st)
			}
		})
	}
}

// An answer quoting the password has it cut out of the message.
func TestCheckRedactsEcho(t *testing.T) {
	const password = "echoed-Password-4711"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = w.Write([]byte(`{"message":"password ` + password + ` is not valid"}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, Config{BaseURL: srv.URL, Email: "bot@example.com", Password: password})
	err := c.Check(context.Background())
	var ce *access.CheckError
	if !errors.As(err, &ce) || ce.Reason != access.CheckUnexpected {
		t.Fatalf("Check = %v, want CheckUnexpected", err)
	}
	if strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("message %q", err)
	}
	var se *access.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnprocessableEntity {
		t.Errorf("the status is not reachable through errors.As: %v", err)
	}
}
