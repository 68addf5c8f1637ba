package kisi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/guard"
	"github.com/cloudkey/cloudkey/access/kisisim"
)

// Check against the simulator over real HTTP: each failure is classified
// so that a manager knows what to fix, and no message shows the key.
func TestCheck(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	const wrongKey = "not-the-key-Zq9x-0123456789"
	for _, tc := range []struct {
		name   string
		key    string // the organisation key given
		places []int64
		faults *kisisim.Faults
		closed bool
		// userLogin: the key is a device login of gina's, made with the
		// Harbor View key.
		userLogin bool
		want      access.CheckReason // -1: no error
		words     []string
		sends     int64 // requests the simulator gets for one check
	}{
		{name: "good, every place", key: kisisim.DemoFoundryAPIKey, want: -1, sends: 1},
		{name: "good, places given", key: kisisim.DemoHarborAPIKey, places: []int64{kisisim.DemoHarborPlaceID}, want: -1, sends: 2},
		{name: "wrong key", key: wrongKey, want: access.CheckBadCredentials, words: []string{"HTTP 401"}, sends: 1},
		{name: "wrong key, places given", key: wrongKey, places: []int64{kisisim.DemoHarborPlaceID},
			want: access.CheckBadCredentials, words: []string{"HTTP 401"}, sends: 1},
		{name: "a user's login, not an admin's key", key: kisisim.DemoHarborAPIKey, userLogin: true,
			want: access.CheckBadCredentials, words: []string{"HTTP 403", "administrator"}, sends: 1},
		{name: "another organisation's place", key: kisisim.DemoFoundryAPIKey,
			places: []int64{kisisim.DemoFoundryPlaceID, kisisim.DemoHarborPlaceID},
			want:   access.CheckUnknownPlace, words: []string{"place 7010", "HTTP 404"}, sends: 3},
		{name: "no such place", key: kisisim.DemoFoundryAPIKey, places: []int64{424242},
			want: access.CheckUnknownPlace, words: []string{"place 424242"}, sends: 2},
		{name: "unreachable", key: kisisim.DemoFoundryAPIKey, closed: true, want: access.CheckUnreachable},
		{name: "server error", key: kisisim.DemoFoundryAPIKey, faults: &kisisim.Faults{ErrorRate: 1, ErrorStatus: 500},
			want: access.CheckUnexpected, words: []string{"HTTP 500"}, sends: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Name: "foundry-lofts.kisi", PlaceIDs: tc.places, OrgRate: 1000}
			e := newEnv(t, quietSeed(), tc.key, cfg)
			c := e.client
			if tc.userLogin {
				u, err := e.client.FindUserByEmail(context.Background(), kisisim.DemoGinaEmail)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.client.EnsureCloudKey(context.Background(), u); err != nil {
					t.Fatal(err)
				}
				tc.key = e.store.secrets()[0]
				e.srv.Reset()
			}
			if tc.closed || tc.userLogin {
				cfg.BaseURL, cfg.APIKey, cfg.Logins = e.srv.URL, tc.key, e.store
				if tc.closed {
					cfg.BaseURL = closedURL
				}
				var err error
				if c, err = New(cfg); err != nil {
					t.Fatal(err)
				}
			}
			if tc.faults != nil {
				if err := e.srv.SetFaults(*tc.faults); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			err := c.Check(ctx)
			var calls int64
			for _, op := range kisisim.Ops() {
				calls += e.srv.Calls(op)
			}
			if calls != tc.sends {
				t.Errorf("the simulator got %d requests, want %d", calls, tc.sends)
			}
			if tc.want < 0 {
				if err != nil {
					t.Fatalf("Check = %v", err)
				}
				return
			}
			var ce *access.CheckError
			if !errors.As(err, &ce) || ce.Reason != tc.want {
				t.Fatalf("Check = %v, want a CheckError %q", err, tc.want)
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range append(tc.words, "foundry-lofts.kisi", tc.want.String()) {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if strings.Contains(msg, tc.key) {
				t.Errorf("message %q shows the key", msg)
			}
			// A failing check does not count against the breaker.
			for range 2 * guard.BreakerConsecutive {
				_ = c.Check(ctx)
			}
			if st := c.BreakerState(); st != "closed" {
				t.Errorf("breaker %s after failing checks", st)
			}
		})
	}
}
