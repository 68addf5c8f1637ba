package kisisim

import (
	"net/http"
	"testing"
	"time"
)

func TestRateLimit(t *testing.T) {
	f := newFixture(t, DemoSeed())
	if rate, burst := f.srv.RateLimit(); rate != DefaultRateLimit || burst != DefaultRateBurst {
		t.Fatalf("demo rate limit %v/%d, want on at 5/5", rate, burst)
	}
	must(t, f.srv.SetRateLimit(0.1, 5)) // a slow refill, so the test is not timing-sensitive
	// Two logins of Gina share her quota (the login itself is the admin's).
	a, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	b, _ := f.login(t, DemoHarborAPIKey, DemoGinaEmail)
	for i := range 5 {
		secret := a
		if i%2 == 1 {
			secret = b
		}
		if got := f.do(t, "GET", "/locks", secret, ""); got.status != 200 {
			t.Fatalf("request %d: %d", i+1, got.status)
		}
	}
	over := f.do(t, "GET", "/locks", b, "")
	if over.status != http.StatusTooManyRequests || over.header.Get("Retry-After") != "1" || over.apiErr(t).Code != "000429" {
		t.Fatalf("6th request: %d Retry-After %q %s", over.status, over.header.Get("Retry-After"), over.body)
	}
	if got := f.do(t, "POST", unlockPath(DemoPoolID), a, ""); got.status != http.StatusTooManyRequests {
		t.Fatalf("unlock over the limit: %d", got.status)
	}
	// Another user, and the org key (the admin user), have their own quota.
	frank, _ := f.login(t, DemoHarborAPIKey, DemoFrankEmail)
	if got := f.do(t, "GET", "/locks", frank, ""); got.status != 200 {
		t.Fatalf("another user: %d", got.status)
	}
	// Refill: two per second, so at least one after 600 ms.
	must(t, f.srv.SetRateLimit(2, 1))
	f.do(t, "GET", "/locks", a, "")
	time.Sleep(600 * time.Millisecond)
	if got := f.do(t, "GET", "/locks", a, ""); got.status != 200 {
		t.Fatalf("after the refill: %d", got.status)
	}
	// Off.
	must(t, f.srv.SetRateLimit(0, 0))
	for range 20 {
		if got := f.do(t, "GET", "/locks", a, ""); got.status != 200 {
			t.Fatalf("rate limit off: %d", got.status)
		}
	}
	if rate, burst := f.srv.RateLimit(); rate != 0 || burst != 0 {
		t.Fatalf("RateLimit() = %v, %d after turning it off", rate, burst)
	}
	if err := f.srv.SetRateLimit(-1, 1); err == nil {
		t.Fatal("negative rate accepted")
	}
	if err := f.srv.SetRateLimit(5, 0); err == nil {
		t.Fatal("zero burst accepted")
	}
}

func TestRateLimitOrgKeyIsAdmin(t *testing.T) {
	f := newFixture(t, DemoSeed())
	must(t, f.srv.SetRateLimit(0.1, 3))
	for range 3 {
		f.do(t, "GET", "/places", DemoHarborAPIKey, "")
	}
	if got := f.do(t, "POST", "/logins", DemoHarborAPIKey, loginBody(DemoGinaEmail)); got.status != http.StatusTooManyRequests {
		t.Fatalf("4th request with the key: %d", got.status)
	}
	if got := f.do(t, "GET", "/places", DemoFoundryAPIKey, ""); got.status != 200 {
		t.Fatalf("another org's key: %d", got.status)
	}
}

func TestGenerateSeedRateLimitOff(t *testing.T) {
	f := newFixture(t, GenerateSeed(3, 2))
	if rate, _ := f.srv.RateLimit(); rate != 0 {
		t.Fatalf("load seed rate limit %v, want off", rate)
	}
	for range 20 {
		if got := f.do(t, "GET", "/users?email="+LoadUserEmail(1), LoadAPIKey, ""); got.status != 200 {
			t.Fatalf("status %d", got.status)
		}
	}
}
