package kisi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/cloudkey/cloudkey/access/kisisim"
)

// TestEnsureCloudKey: the first call creates a device login on the user's
// behalf with the organisation key and stores it; later calls, in this
// client or in another one sharing the store (another replica), reuse it;
// concurrent first calls create one.
func TestEnsureCloudKey(t *testing.T) {
	e := foundry(t)
	var body []byte // POST /logins's
	e.intercept = func(req *http.Request) *http.Response {
		if req.URL.Path == "/logins" && req.GetBody != nil {
			rc, _ := req.GetBody()
			body, _ = io.ReadAll(rc)
		}
		return nil
	}
	ctx := context.Background()
	cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	again := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	if again != cred {
		t.Errorf("second call: login %s, want %s", again, cred)
	}
	if got := e.srv.Calls(kisisim.OpCreateLogin); got != 1 {
		t.Errorf("logins created: %d, want 1", got)
	}
	if got := e.srv.Logins(kisisim.DemoHankEmail); got != 1 {
		t.Errorf("Kisi holds %d logins of hank, want 1", got)
	}
	l, ok, _ := e.store.Get(ctx, kisisim.DemoHankID)
	if !ok || strconv.FormatInt(l.ID, 10) != cred || l.UserID != kisisim.DemoHankID || l.Secret == "" || l.CreatedAt.IsZero() {
		t.Errorf("stored login %+v (ok %v), want login %s of user %d with its secret", l, ok, cred, kisisim.DemoHankID)
	}
	var sentBody map[string]map[string]any
	if err := json.Unmarshal(body, &sentBody); err != nil {
		t.Fatalf("POST /logins body %s: %v", body, err)
	}
	if lg := sentBody["login"]; lg["type"] != "device" || lg["email"] != kisisim.DemoHankEmail || lg["expire"] != false || lg["name"] != loginName {
		t.Errorf("login body %s", body)
	}
	if _, ok := sentBody["user"]; !ok {
		t.Errorf("login body %s has no user, which the spec requires", body)
	}
	for _, r := range e.sent() {
		if r.path == "/logins" && r.auth != "KISI-LOGIN "+kisisim.DemoFoundryAPIKey {
			t.Errorf("POST /logins sent with %q, want the organisation key", r.auth)
		}
	}

	// Another replica: a new client, the same store.
	other, err := New(Config{BaseURL: e.srv.URL, APIKey: kisisim.DemoFoundryAPIKey, Logins: e.store})
	if err != nil {
		t.Fatal(err)
	}
	defer other.CloseIdleConnections()
	if got, err := other.EnsureCloudKey(ctx, kisiUser(kisisim.DemoHankID, kisisim.DemoHankEmail)); err != nil || got != cred {
		t.Errorf("other replica: %s, %v; want %s", got, err, cred)
	}
	if got := e.srv.Calls(kisisim.OpCreateLogin); got != 1 {
		t.Errorf("logins created: %d, want still 1", got)
	}

	// Concurrent first calls for one user.
	var wg sync.WaitGroup
	creds := make([]string, 8)
	for i := range creds {
		wg.Go(func() {
			c, err := e.client.EnsureCloudKey(ctx, kisiUser(kisisim.DemoFoundryFrankID, kisisim.DemoFrankEmail))
			if err != nil {
				t.Error(err)
			}
			creds[i] = c
		})
	}
	wg.Wait()
	for _, c := range creds {
		if c != creds[0] {
			t.Errorf("concurrent calls got logins %v, want one", creds)
			break
		}
	}
	if got := e.srv.OrgLogins(kisisim.DemoFoundryOrgID, kisisim.DemoFrankEmail); got != 1 {
		t.Errorf("Kisi holds %d logins of frank, want 1", got)
	}
}

func TestEnsureCloudKeyRefusals(t *testing.T) {
	e := foundry(t)
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		id   string
	}{
		{"not a number", "abc"},
		{"zero", "0"},
		{"leading zero", "08022"},
		{"negative", "-1"},
	} {
		if _, err := e.client.EnsureCloudKey(ctx, withID(kisiUser(0, kisisim.DemoHankEmail), tt.id)); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	// An email Kisi does not know.
	if _, err := e.client.EnsureCloudKey(ctx, kisiUser(8099, "ghost@example.com")); err == nil {
		t.Error("unknown email: no error")
	}
	if puts, _ := e.store.counts(); puts != 0 {
		t.Errorf("%d logins stored, want none", puts)
	}
	if n := len(e.sent()); n != 1 {
		t.Errorf("%d requests sent, want 1 (the unknown email's)", n)
	}
}

// TestCreateLoginRetried429: Kisi answers 429 without processing the
// request, so a login creation answered 429 is sent again (one login
// results); any other failure of it is not.
func TestCreateLoginRetried429(t *testing.T) {
	for _, tt := range []struct {
		name   string
		faults kisisim.Faults
		calls  int64
		ok     bool
	}{
		{"429 once", kisisim.Faults{RateLimitRate: 1, MaxFaults: 1, IncludeLogin: true}, 2, true},
		{"503 once: not repeated", kisisim.Faults{ErrorRate: 1, MaxFaults: 1, IncludeLogin: true}, 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := foundry(t)
			if err := e.srv.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			_, err := e.client.EnsureCloudKey(context.Background(), kisiUser(kisisim.DemoHankID, kisisim.DemoHankEmail))
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok %v", err, tt.ok)
			}
			if n := e.srv.Calls(kisisim.OpCreateLogin); n != tt.calls {
				t.Errorf("POST /logins sent %d times, want %d", n, tt.calls)
			}
		})
	}
}
