package sim

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

func unlockPath(userID, credID int) string {
	return fmt.Sprintf("%s/users/%d/credentials/%d/cloudKeyEntryUnlock", orgPath, userID, credID)
}

func entryBody(id int) string { return `{"entryId":` + strconv.Itoa(id) + `}` }

func TestUnlockAuthorization(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	tests := []struct {
		name       string
		user, cred int
		body       string
		raw        bool // a malformed request, not sent through the spec check
		wantStatus int
	}{
		{"erin opens the lobby", DemoErinID, DemoErinCloudKeyID, entryBody(DemoLobbyID), false, 204},
		{"erin opens the roof deck", DemoErinID, DemoErinCloudKeyID, `{"entryId":104,"description":"from the app"}`, false, 204},
		{"unassigned entry", DemoErinID, DemoErinCloudKeyID, entryBody(DemoServerRoomID), false, 403},
		{"another user's cloud key", DemoErinID, DemoCarolCloudKeyID, entryBody(DemoLobbyID), false, 403},
		{"unknown credential", DemoErinID, 999, entryBody(DemoLobbyID), false, 403},
		{"not a cloud key", DemoAliceID, DemoAliceMobileID, entryBody(DemoLobbyID), false, 403},
		{"suspended user", DemoCarolID, DemoCarolCloudKeyID, entryBody(DemoLobbyID), false, 403},
		{"unknown user", 999, DemoErinCloudKeyID, entryBody(DemoLobbyID), false, 404},
		{"unknown entry", DemoErinID, DemoErinCloudKeyID, entryBody(999), false, 404},
		{"no entry id", DemoErinID, DemoErinCloudKeyID, `{}`, true, 400},
		{"fractional entry id", DemoErinID, DemoErinCloudKeyID, `{"entryId":101.5}`, false, 400},
		{"string entry id", DemoErinID, DemoErinCloudKeyID, `{"entryId":"101"}`, true, 400},
		{"malformed json", DemoErinID, DemoErinCloudKeyID, `{"entryId":`, true, 400},
		{"no body", DemoErinID, DemoErinCloudKeyID, ``, true, 400},
		// Bodies beside the exact form cloudkey sends, which is parsed by hand.
		{"spaced json", DemoErinID, DemoErinCloudKeyID, `{ "entryId": 101 }`, false, 204},
		{"long description", DemoErinID, DemoErinCloudKeyID, `{"entryId":104,"description":"` + strings.Repeat("x", 90) + `"}`, false, 204},
		{"leading zero", DemoErinID, DemoErinCloudKeyID, `{"entryId":0101}`, true, 400},
		{"negative entry id", DemoErinID, DemoErinCloudKeyID, `{"entryId":-101}`, true, 404},
		{"data after the body", DemoErinID, DemoErinCloudKeyID, `{"entryId":101}{}`, true, 400},
		{"entry id beyond int", DemoErinID, DemoErinCloudKeyID, `{"entryId":1234567890123456789012}`, true, 400},
	}
	opened := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := f.checked
			if tt.raw {
				base = f.raw
			}
			status, body := call(t, "POST", base+unlockPath(tt.user, tt.cred), token, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tt.wantStatus, body)
			}
			if status == 204 {
				opened++
			}
			if status == 403 && errorName(t, body) != "ForbiddenError" {
				t.Errorf("403 body %s", body)
			}
		})
	}
	got := f.sim.Unlocks()
	if len(got) != opened || opened != 4 {
		t.Fatalf("recorded %d unlocks, want %d (opened)", len(got), opened)
	}
	if u := got[0]; u.UserID != DemoErinID || u.Email != "erin@example.com" || u.CredentialID != DemoErinCloudKeyID || u.EntryID != DemoLobbyID || time.Since(u.At) > time.Minute {
		t.Errorf("first unlock = %+v", u)
	}
	if got[1].EntryID != DemoRoofDeckID {
		t.Errorf("second unlock = %+v", got[1])
	}
	if n := f.sim.Calls(OpUnlock); n != int64(len(tests)) {
		t.Errorf("Calls(OpUnlock) = %d, want %d (every attempt counts)", n, len(tests))
	}
}

// TestUnlockFollowsState checks that the back door changes what the API
// authorizes at once: a move-out suspends, an assignment grants.
func TestUnlockFollowsState(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	unlock := func(entry int) int {
		t.Helper()
		status, _ := call(t, "POST", f.checked+unlockPath(DemoErinID, DemoErinCloudKeyID), token, entryBody(entry))
		return status
	}
	steps := []struct {
		name   string
		change func() error
		entry  int
		want   int
	}{
		{"active", nil, DemoLobbyID, 204},
		{"suspended", func() error { return f.sim.SetUserStatus("ERIN@example.com", access.StatusSuspended) }, DemoLobbyID, 403},
		{"inactive", func() error { return f.sim.SetUserStatus("erin@example.com", access.StatusInactive) }, DemoLobbyID, 403},
		{"reactivated", func() error { return f.sim.SetUserStatus("erin@example.com", access.StatusActive) }, DemoLobbyID, 204},
		{"server room not assigned", nil, DemoServerRoomID, 403},
		{"server room assigned", func() error { return f.sim.AssignEntry("erin@example.com", DemoServerRoomID) }, DemoServerRoomID, 204},
		{"assigned twice", func() error { return f.sim.AssignEntry("erin@example.com", DemoServerRoomID) }, DemoServerRoomID, 204},
		{"lobby unassigned", func() error { return f.sim.UnassignEntry("erin@example.com", DemoLobbyID) }, DemoLobbyID, 403},
		{"unassigned twice", func() error { return f.sim.UnassignEntry("erin@example.com", DemoLobbyID) }, DemoLobbyID, 403},
	}
	for _, st := range steps {
		if st.change != nil {
			if err := st.change(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		if got := unlock(st.entry); got != st.want {
			t.Errorf("%s: unlock answered %d, want %d", st.name, got, st.want)
		}
	}
	u, err := f.sim.User("erin@example.com")
	if err != nil || u.Status != access.StatusActive || fmt.Sprint(u.EntryIDs) != fmt.Sprint([]int{DemoRoofDeckID, DemoServerRoomID}) {
		t.Errorf("erin = %+v, %v", u, err)
	}

	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"unknown user status", f.sim.SetUserStatus("nobody@example.com", access.StatusActive), ErrNoSuchUser},
		{"unknown user assign", f.sim.AssignEntry("nobody@example.com", DemoLobbyID), ErrNoSuchUser},
		{"unknown entry", f.sim.AssignEntry("erin@example.com", 999), ErrNoSuchEntry},
		{"unknown entry unassign", f.sim.UnassignEntry("erin@example.com", 999), ErrNoSuchEntry},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if err := f.sim.SetUserStatus("erin@example.com", "X"); err == nil {
		t.Error("SetUserStatus accepted status X")
	}
	ambiguous, err := New(maliceSeed())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ambiguous.User("dup@example.com"); !errors.Is(err, ErrAmbiguousUser) {
		t.Errorf("User(dup) err = %v, want ErrAmbiguousUser", err)
	}
}

func TestCountersAndReset(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.checked)
	call(t, "GET", f.checked+orgPath+"/users/204/entries", token, "")
	call(t, "GET", f.checked+orgPath+"/users/204/entries", token, "")
	call(t, "POST", f.checked+unlockPath(DemoErinID, DemoErinCloudKeyID), token, entryBody(DemoLobbyID))
	call(t, "GET", f.raw+orgPath+"/users", "", "") // 401, still counted

	want := map[Op]int64{OpLogin: 1, OpListUserEntries: 2, OpUnlock: 1, OpListUsers: 1}
	for _, op := range Ops() {
		if got := f.sim.Calls(op); got != want[op] {
			t.Errorf("Calls(%s) = %d, want %d", op, got, want[op])
		}
	}
	if len(f.sim.Unlocks()) != 1 {
		t.Errorf("Unlocks() = %v", f.sim.Unlocks())
	}
	f.sim.Reset()
	for _, op := range Ops() {
		if got := f.sim.Calls(op); got != 0 {
			t.Errorf("after Reset, Calls(%s) = %d", op, got)
		}
	}
	if len(f.sim.Unlocks()) != 0 {
		t.Errorf("after Reset, Unlocks() = %v", f.sim.Unlocks())
	}
	// Tokens and state survive Reset.
	if status, _ := call(t, "POST", f.checked+unlockPath(DemoErinID, DemoErinCloudKeyID), token, entryBody(DemoLobbyID)); status != 204 {
		t.Errorf("unlock after Reset: %d", status)
	}
	if f.sim.Calls(Op(-1)) != 0 || f.sim.Calls(numOps) != 0 {
		t.Error("Calls of an invalid op is not 0")
	}
}

func TestUnlockLogIsBounded(t *testing.T) {
	var l unlockLog
	for i := range MaxRecordedUnlocks + 5 {
		l.add(Unlock{EntryID: i})
	}
	got := l.list()
	if len(got) != MaxRecordedUnlocks || got[0].EntryID != 5 || got[len(got)-1].EntryID != MaxRecordedUnlocks+4 {
		t.Errorf("ring holds %d, first %d, last %d", len(got), got[0].EntryID, got[len(got)-1].EntryID)
	}
}

// TestConcurrentUse runs the API and the back door at once, for the race
// detector.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, DemoSeed())
	token := login(t, f.raw)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				switch (g + i) % 4 {
				case 0:
					call(t, "POST", f.raw+unlockPath(DemoErinID, DemoErinCloudKeyID), token, entryBody(DemoLobbyID))
				case 1:
					call(t, "GET", f.raw+orgPath+"/users/204/entries", token, "")
				case 2:
					call(t, "POST", f.raw+orgPath+"/users/204/credentials", token, `{"credentialTypeId":7}`)
				case 3:
					call(t, "GET", f.raw+orgPath+"/users?filter=identity.email:(erin)", token, "")
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			if i%2 == 0 {
				_ = f.sim.UnassignEntry("erin@example.com", DemoGymID)
				_ = f.sim.SetUserStatus("erin@example.com", access.StatusActive)
			} else {
				_ = f.sim.AssignEntry("erin@example.com", DemoGymID)
			}
			_, _ = f.sim.User("erin@example.com")
			_ = f.sim.Unlocks()
		}
	})
	wg.Wait()
	u, _ := f.sim.User("erin@example.com")
	if got := len(u.Credentials); got != 1+40 {
		t.Errorf("erin has %d credentials, want 41", got)
	}
}
