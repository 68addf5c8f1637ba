package kisisim

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestUnlockRefusals(t *testing.T) {
	base := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		setup  func(t *testing.T, s *Sim) // before the unlock; the clock is base
		key    string                     // the API key of the login's org
		email  string
		lock   int
		body   string
		status int
		code   string
	}{
		{name: "granted", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 200},
		{name: "granted with a body", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID,
			body: `{"context":{"location":{"latitude":40.7,"longitude":-74.0},"services":[{"type":"GPS","enabled":true}]}}`, status: 200},
		{name: "access disabled", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 403, code: "fcd8ff",
			setup: func(t *testing.T, s *Sim) { must(t, s.SetUserAccess(DemoHarborOrgID, DemoGinaEmail, false)) }},
		{name: "scim access disabled", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 403, code: "fcd8ff",
			setup: func(t *testing.T, s *Sim) { must(t, s.SetSCIMAccess(DemoHarborOrgID, DemoGinaEmail, false)) }},
		{name: "disabled wins over no access", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPackageRoomID, status: 403, code: "fcd8ff",
			setup: func(t *testing.T, s *Sim) { must(t, s.SetUserAccess(DemoHarborOrgID, DemoGinaEmail, false)) }},
		{name: "no access", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPackageRoomID, status: 403, code: "fcd8ef"},
		{name: "revoked", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 403, code: "fcd8ef",
			setup: func(t *testing.T, s *Sim) { must(t, s.Revoke(DemoGinaEmail, DemoPoolID)) }},
		{name: "granted later", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPackageRoomID, status: 200,
			setup: func(t *testing.T, s *Sim) { must(t, s.Grant(DemoGinaEmail, DemoPackageRoomID)) }},
		{name: "not yet valid", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 403, code: "f358de",
			setup: func(t *testing.T, s *Sim) {
				must(t, s.GrantWindow(DemoGinaEmail, DemoPoolID, base.Add(time.Hour), time.Time{}))
			}},
		{name: "valid from now", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 200,
			setup: func(t *testing.T, s *Sim) {
				must(t, s.GrantWindow(DemoGinaEmail, DemoPoolID, base, base.Add(time.Hour)))
			}},
		{name: "no longer valid", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 403, code: "f35ade",
			setup: func(t *testing.T, s *Sim) {
				must(t, s.GrantWindow(DemoGinaEmail, DemoPoolID, base.Add(-2*time.Hour), base))
			}},
		{name: "reader restricted", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 403, code: "bb4faa",
			setup: func(t *testing.T, s *Sim) { must(t, s.SetLockRestrictions(DemoPoolID, true, false)) }},
		{name: "reader restricted, null proof", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 403, code: "bb4faa",
			body:  `{"lock":{"proximity_proof":null}}`,
			setup: func(t *testing.T, s *Sim) { must(t, s.SetLockRestrictions(DemoPoolID, true, false)) }},
		{name: "reader restricted with proof", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 200,
			body:  `{"lock":{"proximity_proof":"proof"}}`,
			setup: func(t *testing.T, s *Sim) { must(t, s.SetLockRestrictions(DemoPoolID, true, false)) }},
		{name: "geofenced", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 403, code: "a3995f",
			setup: func(t *testing.T, s *Sim) { must(t, s.SetLockRestrictions(DemoPoolID, false, true)) }},
		{name: "geofenced with location", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 200,
			body:  `{"context":{"location":{"latitude":40.7,"longitude":-74.0}}}`,
			setup: func(t *testing.T, s *Sim) { must(t, s.SetLockRestrictions(DemoPoolID, false, true)) }},
		{name: "locked down", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 409, code: "fad001",
			setup: func(t *testing.T, s *Sim) { must(t, s.SetLockState(DemoPoolID, true, true)) }},
		{name: "offline", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPoolID, status: 503, code: "fad107",
			setup: func(t *testing.T, s *Sim) { must(t, s.SetLockState(DemoPoolID, false, false)) }},
		{name: "no access wins over lock state", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: DemoPackageRoomID, status: 403, code: "fcd8ef",
			setup: func(t *testing.T, s *Sim) { must(t, s.SetLockState(DemoPackageRoomID, true, false)) }},
		{name: "other org's lock", key: DemoFoundryAPIKey, email: DemoFrankEmail, lock: DemoPoolID, status: 404, code: "fad10e"},
		{name: "unknown lock", key: DemoHarborAPIKey, email: DemoGinaEmail, lock: 424242, status: 404, code: "fad10e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := demo(t)
			f.srv.SetClock(func() time.Time { return base })
			secret, loginID := f.login(t, tt.key, tt.email)
			if tt.setup != nil {
				tt.setup(t, f.srv.Sim)
			}
			a := f.do(t, "POST", unlockPath(tt.lock), secret, tt.body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			unlocks := f.srv.Unlocks()
			if tt.status != http.StatusOK {
				if e := a.apiErr(t); e.Code != tt.code || e.Error == "" {
					t.Fatalf("error %+v, want code %s", e, tt.code)
				}
				if len(unlocks) != 0 {
					t.Fatalf("refused unlock recorded: %+v", unlocks)
				}
				return
			}
			if string(a.body) != `{"message":"Unlocked!"}` {
				t.Fatalf("body %s", a.body)
			}
			want := Unlock{OrgID: DemoHarborOrgID, LockID: tt.lock, UserID: DemoGinaID, Email: DemoGinaEmail, LoginID: loginID, At: base}
			if len(unlocks) != 1 || unlocks[0] != want {
				t.Fatalf("unlocks %+v, want %+v", unlocks, want)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnlockByOrgKey(t *testing.T) {
	f := demo(t)
	// The admin may open any lock of the org, whoever has access.
	must(t, f.srv.Revoke(DemoGinaEmail, DemoPoolID))
	if a := f.do(t, "POST", unlockPath(DemoPoolID), DemoHarborAPIKey, ""); a.status != 200 {
		t.Fatalf("unlock by key: %d %s", a.status, a.body)
	}
	u := f.srv.Unlocks()
	if len(u) != 1 || !u[0].ByOrgKey || u[0].UserID != DemoHarborAdminID || u[0].LoginID != DemoHarborKeyLoginID || u[0].LockID != DemoPoolID {
		t.Fatalf("unlocks %+v", u)
	}
	// Lock state still applies, and other orgs' locks are not found.
	must(t, f.srv.SetLockState(DemoPackageRoomID, true, true))
	if a := f.do(t, "POST", unlockPath(DemoPackageRoomID), DemoHarborAPIKey, ""); a.status != 409 {
		t.Fatalf("locked down: %d", a.status)
	}
	if a := f.do(t, "POST", unlockPath(DemoFrontDoorID), DemoHarborAPIKey, ""); a.status != 404 || a.apiErr(t).Code != "fad10e" {
		t.Fatalf("other org: %d %s", a.status, a.body)
	}
}

func TestUnlockMalformed(t *testing.T) {
	f := demo(t)
	gina, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	tests := []struct{ name, path, body string }{
		{"not JSON", unlockPath(DemoPoolID), `{`},
		{"location without latitude", unlockPath(DemoPoolID), `{"context":{"location":{"longitude":1}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a := f.send(t, f.raw, "POST", tt.path, gina, tt.body); a.status != 400 {
				t.Fatalf("status %d: %s", a.status, a.body)
			}
		})
	}
	if a := f.send(t, f.raw, "POST", "/locks/abc/unlock", gina, ""); a.status != 404 {
		t.Fatalf("non-integer id: %d", a.status)
	}
	if len(f.srv.Unlocks()) != 0 {
		t.Fatal("malformed unlock recorded")
	}
}

// TestOrgIsolation: a Foundry Lofts login sees no Harbor View lock or place
// and cannot open one, though the same email is a Harbor View user.
func TestOrgIsolation(t *testing.T) {
	f := demo(t)
	frankFL, _ := f.login(t, DemoFoundryAPIKey, DemoFrankEmail)
	for _, id := range f.lockIDs(t, frankFL, "") {
		if id == DemoPoolID || id == DemoPackageRoomID {
			t.Errorf("Foundry Lofts login sees Harbor View lock %d", id)
		}
	}
	for _, id := range f.lockIDs(t, DemoFoundryAPIKey, "") {
		if id == DemoPoolID || id == DemoPackageRoomID {
			t.Errorf("Foundry Lofts key sees Harbor View lock %d", id)
		}
	}
	for _, lock := range []int{DemoPoolID, DemoPackageRoomID} {
		a := f.do(t, "POST", unlockPath(lock), frankFL, "")
		if a.status != 404 || a.apiErr(t).Code != "fad10e" {
			t.Errorf("unlock %d: %d %s", lock, a.status, a.body)
		}
	}
	var places []placeJSON
	f.do(t, "GET", "/places", frankFL, "").decode(t, &places)
	if len(places) != 1 || places[0].ID != DemoFoundryPlaceID {
		t.Errorf("places %+v", places)
	}
	if len(f.srv.Unlocks()) != 0 {
		t.Fatal("a door opened")
	}
	// Frank's Harbor View login opens Pool, attributed to his Harbor View user.
	frankHV, _ := f.login(t, DemoHarborAPIKey, DemoFrankEmail)
	if a := f.do(t, "POST", unlockPath(DemoPoolID), frankHV, ""); a.status != 200 {
		t.Fatalf("Harbor View unlock: %d", a.status)
	}
	if u := f.srv.Unlocks(); len(u) != 1 || u[0].UserID != DemoHarborFrankID || u[0].OrgID != DemoHarborOrgID {
		t.Fatalf("unlocks %+v", u)
	}
	if f.srv.Logins(DemoFrankEmail) != 2 || f.srv.OrgLogins(DemoFoundryOrgID, DemoFrankEmail) != 1 {
		t.Fatalf("logins %d", f.srv.Logins(DemoFrankEmail))
	}
}

func TestLocksListFollowsValidity(t *testing.T) {
	base := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f := demo(t)
	f.srv.SetClock(func() time.Time { return base })
	gina, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	// Future access is listed (the user "can access" it, later); expired is not.
	must(t, f.srv.GrantWindow(DemoGinaEmail, DemoPackageRoomID, base.Add(time.Hour), base.Add(2*time.Hour)))
	must(t, f.srv.GrantWindow(DemoGinaEmail, DemoPoolID, base.Add(-2*time.Hour), base))
	got := f.lockIDs(t, gina, "")
	if len(got) != 1 || got[0] != DemoPackageRoomID {
		t.Fatalf("locks %v, want only the package room", got)
	}
	if err := f.srv.GrantWindow(DemoGinaEmail, DemoPoolID, base, base); err == nil {
		t.Fatal("an empty window was accepted")
	}
	if err := f.srv.Grant(DemoGinaEmail, DemoFrontDoorID); err == nil {
		t.Fatal("granted a lock of another organisation")
	}
}

func TestDeviceLoginExpiry(t *testing.T) {
	start := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64 // the server's goroutines read the clock
	f := demo(t)
	f.srv.SetClock(func() time.Time { return start.Add(time.Duration(elapsed.Load())) })
	a := f.do(t, "POST", "/logins", DemoHarborAPIKey, `{"login":{"type":"device","email":"gina@example.com"},"user":{}}`)
	var expiring createdLoginJSON
	a.decode(t, &expiring)
	lasting, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail) // expire:false
	elapsed.Store(int64(DeviceLoginTTL + time.Minute))
	if a := f.do(t, "GET", "/login", expiring.Secret, ""); a.status != 401 {
		t.Fatalf("expiring login after 14 idle days: %d", a.status)
	}
	if a := f.do(t, "GET", "/login", lasting, ""); a.status != 200 {
		t.Fatalf("expire:false login: %d", a.status)
	}
}
