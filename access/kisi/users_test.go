package kisi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

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
