package kisisim

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
)

// TestConcurrentUse logs in, lists, unlocks and changes state from many
// goroutines at once, for the race detector.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, GenerateSeed(20, 2))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			email := LoadUserEmail(i)
			secret, id := f.login(t, LoadAPIKey, email)
			locks := f.lockIDs(t, secret, "")
			for _, l := range locks {
				if a := f.do(t, "POST", unlockPath(l), secret, ""); a.status != http.StatusOK {
					t.Errorf("%s unlock %d: %d %s", email, l, a.status, a.body)
				}
			}
			f.do(t, "GET", "/users?email="+email, LoadAPIKey, "")
			if err := f.srv.SetUserAccess(LoadOrgID, email, i%2 == 0); err != nil {
				t.Error(err)
			}
			_ = f.srv.SetLockState(LoadLockIDBase+1+i%16, false, true)
			_ = f.srv.Logins(email)
			f.do(t, "DELETE", "/logins/"+strconv.Itoa(id), secret, "")
		})
	}
	wg.Wait()
	if n := len(f.srv.Unlocks()); n != 40 {
		t.Fatalf("%d unlocks, want 40", n)
	}
}
