package kisi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/kisisim"
)

func TestFindUserByEmail(t *testing.T) {
	seed := quietSeed()
	foundryOrg := &seed.Orgs[1]
	foundryOrg.Users = append(foundryOrg.Users,
		kisisim.User{ID: 8031, Email: "Mixed.Case@Example.COM", Name: "Mixed Case"},
		kisisim.User{ID: 8032, Email: "off@example.com", Name: "Off", AccessDisabled: true},
		kisisim.User{ID: 8033, Email: "scim@example.com", Name: "Scim", SCIMAccessDisabled: true},
		kisisim.User{ID: 8034, Email: "kate@example.com", Name: "Kate"},
	)
	e := newEnv(t, seed, kisisim.DemoFoundryAPIKey, Config{})
	for _, tt := range []struct {
		name    string
		email   string
		want    access.User
		wantErr error
	}{
		{name: "found", email: kisisim.DemoFrankEmail,
			want: access.User{ID: id(kisisim.DemoFoundryFrankID), Email: kisisim.DemoFrankEmail, Name: "Frank", Status: access.StatusActive}},
		{name: "stored in mixed case", email: "mixed.case@example.com",
			want: access.User{ID: "8031", Email: "Mixed.Case@Example.COM", Name: "Mixed Case", Status: access.StatusActive}},
		{name: "access disabled", email: "off@example.com",
			want: access.User{ID: "8032", Email: "off@example.com", Name: "Off", Status: access.StatusSuspended}},
		{name: "SCIM access disabled", email: "scim@example.com",
			want: access.User{ID: "8033", Email: "scim@example.com", Name: "Scim", Status: access.StatusSuspended}},
		{name: "not found", email: "nobody@example.com", wantErr: access.ErrNotFound},
		{name: "another organisation's user", email: kisisim.DemoGinaEmail, wantErr: access.ErrNotFound},
		// The Kelvin sign is not a k: no Unicode folding.
		{name: "look-alike", email: "\u212aate@example.com", wantErr: access.ErrNotFound},
		{name: "empty email", email: "", wantErr: access.ErrNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.client.FindUserByEmail(context.Background(), tt.email)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, r := range e.sent() {
		if r.method != http.MethodGet || r.path != "/users" || r.auth != "KISI-LOGIN "+kisisim.DemoFoundryAPIKey {
			t.Errorf("request %+v, want GET /users with the organisation key", r)
		}
	}
}

// TestFindUserAmbiguous: Kisi answering two users with the email (in any
// case) is ErrAmbiguous. The simulator keeps emails unique per
// organisation, so its answer is doubled on the way.
func TestFindUserAmbiguous(t *testing.T) {
	e := foundry(t)
	base := http.DefaultTransport
	e.intercept = func(req *http.Request) *http.Response {
		if req.URL.Path != "/users" {
			return nil
		}
		resp, err := base.RoundTrip(req.Clone(req.Context()))
		if err != nil {
			t.Error(err)
			return nil
		}
		defer resp.Body.Close()
		var users []map[string]any
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, &users); err != nil || len(users) != 1 {
			t.Errorf("simulator answered %s", body)
			return nil
		}
		twin := map[string]any{}
		for k, v := range users[0] {
			twin[k] = v
		}
		twin["id"] = 9999
		twin["email"] = "HANK@example.com"
		doubled, _ := json.Marshal(append(users, twin))
		return jsonAnswer(req, 200, string(doubled), http.Header{"X-Collection-Range": {"0-1/2"}})
	}
	_, err := e.client.FindUserByEmail(context.Background(), kisisim.DemoHankEmail)
	if !errors.Is(err, access.ErrAmbiguous) {
		t.Fatalf("err = %v, want ErrAmbiguous", err)
	}
}

// TestSetUserStatus suspends and reactivates a user through
// PATCH /users/{id} (validated against Kisi's spec on the way): the flag
// shows in the users list, a suspended user's unlock is refused, and bad
// arguments are refused unsent.
func TestSetUserStatus(t *testing.T) {
	e := foundry(t)
	ctx := context.Background()
	cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	hank := id(kisisim.DemoHankID)
	for _, st := range []access.Status{access.StatusSuspended, access.StatusSuspended, access.StatusActive} {
		if err := e.client.SetUserStatus(ctx, hank, st); err != nil {
			t.Fatalf("SetUserStatus(%s): %v", st, err)
		}
		u, err := e.client.FindUserByEmail(ctx, kisisim.DemoHankEmail)
		if err != nil || u.Status != st {
			t.Fatalf("after SetUserStatus(%s) hank is %+v, %v", st, u, err)
		}
		err = e.client.Unlock(ctx, hank, cred, id(kisisim.DemoBikeRoomID))
		if st == access.StatusSuspended && !errors.Is(err, access.ErrDenied) {
			t.Fatalf("unlock while suspended: %v, want ErrDenied", err)
		}
		if st == access.StatusActive && err != nil {
			t.Fatalf("unlock after reactivation: %v", err)
		}
	}
	patches := 0
	for _, r := range e.sent() {
		if r.method == http.MethodPatch {
			patches++
			if r.path != "/users/"+hank || r.auth != "KISI-LOGIN "+kisisim.DemoFoundryAPIKey {
				t.Errorf("request %+v, want PATCH /users/%s with the organisation key", r, hank)
			}
		}
	}
	if patches != 3 {
		t.Errorf("%d PATCH requests, want 3", patches)
	}
	before := len(e.sent())
	for _, tt := range []struct {
		name, user string
		status     access.Status
		want       error
	}{
		{"inactive", hank, access.StatusInactive, nil},
		{"unknown status", hank, access.Status("X"), nil},
		{"id not a number", "12a", access.StatusSuspended, ErrInvalidID},
		{"empty id", "", access.StatusSuspended, ErrInvalidID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := e.client.SetUserStatus(ctx, tt.user, tt.status)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("err = %v, want a refusal (%v)", err, tt.want)
			}
		})
	}
	if n := len(e.sent()); n != before {
		t.Errorf("%d requests sent for refused arguments", n-before)
	}
	if err := e.client.SetUserStatus(ctx, "999999", access.StatusSuspended); !errors.Is(err, access.ErrNotFound) || !strings.Contains(err.Error(), "user 999999") {
		t.Errorf("unknown user: %v, want ErrNotFound naming the user", err)
	}
}

// TestSetUserStatusRetries429: Kisi answers 429 without processing the
// call, so a PATCH refused so is sent again.
func TestSetUserStatusRetries429(t *testing.T) {
	e := foundry(t)
	if err := e.srv.SetFaults(kisisim.Faults{RateLimitRate: 1, MaxFaults: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.client.SetUserStatus(ctx, id(kisisim.DemoHankID), access.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Calls(kisisim.OpUpdateUser); n != 2 {
		t.Errorf("%d PATCH calls, want 2 (one 429, one retry)", n)
	}
	if u, _ := e.srv.User(kisisim.DemoFoundryOrgID, kisisim.DemoHankEmail); !u.AccessDisabled {
		t.Error("hank is not suspended")
	}
}
