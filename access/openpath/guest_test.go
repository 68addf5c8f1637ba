package openpath

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
)

func entryIDs(es []access.Entry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

func TestListOrgAndServiceEntries(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	all, err := e.client.ListOrgEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"101", "102", "103", "104", "105"}; !slices.Equal(entryIDs(all), want) || all[4].Name != "Server Room" || all[0].Zone != "Ground Floor" {
		t.Errorf("org entries = %+v", all)
	}
	mine, err := e.client.ServiceEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"101", "102", "103", "104"}; !slices.Equal(entryIDs(mine), want) {
		t.Errorf("service entries = %+v, want %v", mine, want)
	}
	// The login named the service account's user: no search by email.
	if n := e.sim.Calls(sim.OpListUsers); n != 0 {
		t.Errorf("Calls(OpListUsers) = %d, want 0", n)
	}
}

func TestSetUserStatus(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	erin := strconv.Itoa(sim.DemoErinID)
	for _, st := range []access.Status{access.StatusSuspended, access.StatusSuspended, access.StatusActive, access.StatusInactive} {
		if err := e.client.SetUserStatus(ctx, erin, st); err != nil {
			t.Fatalf("SetUserStatus(%s): %v", st, err)
		}
		if u, _ := e.sim.User("erin@example.com"); u.Status != st {
			t.Fatalf("after SetUserStatus(%s) erin is %s", st, u.Status)
		}
	}
	if err := e.client.SetUserStatus(ctx, "999", access.StatusActive); !errors.Is(err, access.ErrNotFound) || !strings.Contains(err.Error(), "user 999") {
		t.Errorf("unknown user: %v", err)
	}
	calls := totalCalls(e.sim)
	for _, tt := range []struct {
		user   string
		status access.Status
	}{{"x", access.StatusActive}, {"", access.StatusActive}, {erin, "X"}, {erin, ""}} {
		if err := e.client.SetUserStatus(ctx, tt.user, tt.status); err == nil {
			t.Errorf("SetUserStatus(%q, %q) succeeded", tt.user, tt.status)
		}
	}
	if totalCalls(e.sim) != calls {
		t.Error("an invalid status change was sent")
	}
}

// fakeClock is a settable clock shared with the simulator.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func TestIssueAndUseUnlockToken(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	start := time.Date(2026, 11, 23, 9, 45, 0, 0, time.UTC)
	end := start.Add(2 * time.Hour)
	clock := &fakeClock{now: start}
	e.sim.SetClock(clock.Now)

	tok, err := e.client.IssueUnlockToken(ctx, access.UnlockTokenRequest{
		Entries:     []access.TokenEntry{{ID: "101", Label: "Lobby"}, {ID: "104", Label: "Roof Deck"}},
		NotBefore:   start,
		Expires:     end,
		Description: "guest pass " + strings.Repeat("é", 200), // cut to 100 characters
	})
	if err != nil {
		t.Fatal(err)
	}
	issued := e.sim.UnlockTokens()
	if len(issued) != 1 || issued[0].Token != tok.Token || issued[0].UserID != sim.DemoServiceUserID ||
		!issued[0].NotBefore.Equal(start) || !issued[0].Expires.Equal(end) ||
		len([]rune(issued[0].Description)) != 100 || issued[0].Entries[1] != (sim.TokenEntry{EntryID: 104, UILabel: "Roof Deck"}) {
		t.Fatalf("issued %+v", issued)
	}
	if bot, _ := e.sim.User(sim.DemoServiceEmail); len(bot.Credentials) != 1 || bot.Credentials[0].ID != issued[0].CredentialID {
		t.Fatalf("the bot's credentials are %+v", bot.Credentials)
	}

	tests := []struct {
		name  string
		at    time.Time
		entry string
		want  error // nil, access.ErrDenied or access.ErrNotFound
	}{
		{"a second before", start.Add(-time.Second), "101", access.ErrDenied},
		{"at start", start, "101", nil},
		{"a second before the end", end.Add(-time.Second), "104", nil},
		{"at the end", end, "101", access.ErrDenied},
		{"an entry the token lacks", start, "102", access.ErrDenied},
		{"an unknown entry", start, "999", access.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Set(tt.at)
			err := e.client.UseUnlockToken(ctx, tok.Token, tt.entry)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), tok.Token) {
				t.Errorf("the error reveals the token: %v", err)
			}
			if errors.Is(err, access.ErrUnavailable) {
				t.Errorf("a refusal matches ErrUnavailable: %v", err)
			}
		})
	}
	if got, want := e.sim.Calls(sim.OpUseUnlockToken), int64(len(tests)); got != want {
		t.Errorf("Calls(OpUseUnlockToken) = %d, want %d: nothing is retried", got, want)
	}
	if n := len(e.sim.Unlocks()); n != 2 {
		t.Errorf("%d doors opened, want 2", n)
	}
	if err := e.client.UseUnlockToken(ctx, "unknown", "101"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("unknown token: %v", err)
	}

	// The service account's key is cached: a second token costs one call.
	before := totalCalls(e.sim)
	if _, err := e.client.IssueUnlockToken(ctx, access.UnlockTokenRequest{Entries: []access.TokenEntry{{ID: "101"}}, NotBefore: start, Expires: end}); err != nil {
		t.Fatal(err)
	}
	if n := totalCalls(e.sim) - before; n != 1 {
		t.Errorf("a second token took %d calls, want 1", n)
	}
}

func TestIssueUnlockTokenRefusals(t *testing.T) {
	e := newEnv(t, sim.DemoSeed())
	ctx := context.Background()
	req := func(ids ...string) access.UnlockTokenRequest {
		r := access.UnlockTokenRequest{NotBefore: time.Now(), Expires: time.Now().Add(time.Hour)}
		for _, id := range ids {
			r.Entries = append(r.Entries, access.TokenEntry{ID: id})
		}
		return r
	}
	// The bot may not open the Server Room.
	if _, err := e.client.IssueUnlockToken(ctx, req("101", "105")); !errors.Is(err, access.ErrDenied) {
		t.Errorf("server room: %v, want ErrDenied", err)
	}
	// A suspended service account issues nothing; its key is looked up
	// again afterwards.
	if err := e.sim.SetUserStatus(sim.DemoServiceEmail, access.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.IssueUnlockToken(ctx, req("101")); !errors.Is(err, access.ErrDenied) {
		t.Errorf("suspended bot: %v, want ErrDenied", err)
	}
	if err := e.sim.SetUserStatus(sim.DemoServiceEmail, access.StatusActive); err != nil {
		t.Fatal(err)
	}
	listed := e.sim.Calls(sim.OpListCredentials)
	if _, err := e.client.IssueUnlockToken(ctx, req("101")); err != nil {
		t.Errorf("reactivated bot: %v", err)
	}
	if e.sim.Calls(sim.OpListCredentials) != listed+1 {
		t.Error("the service account's key was not looked up again after a refusal")
	}
	if bot, _ := e.sim.User(sim.DemoServiceEmail); len(bot.Credentials) != 1 {
		t.Errorf("the bot has %d cloud keys, want 1", len(bot.Credentials))
	}

	calls := totalCalls(e.sim)
	now := time.Now()
	for _, tt := range []struct {
		name string
		req  access.UnlockTokenRequest
	}{
		{"no entries", req()},
		{"bad entry id", req("10a")},
		{"expires before notBefore", access.UnlockTokenRequest{Entries: []access.TokenEntry{{ID: "101"}}, NotBefore: now, Expires: now.Add(-time.Second)}},
		{"empty window", access.UnlockTokenRequest{Entries: []access.TokenEntry{{ID: "101"}}, NotBefore: now, Expires: now}},
	} {
		if _, err := e.client.IssueUnlockToken(ctx, tt.req); err == nil {
			t.Errorf("%s: issued", tt.name)
		}
	}
	for _, tok := range []string{"", "a/b", "a b", "../x", "a?b", strings.Repeat("x", 5000)} {
		if err := e.client.UseUnlockToken(ctx, tok, "101"); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token %q: %v, want ErrInvalidToken", tok, err)
		}
	}
	if err := e.client.UseUnlockToken(ctx, "abc", "x"); !errors.Is(err, ErrInvalidID) {
		t.Errorf("bad entry id: %v", err)
	}
	if totalCalls(e.sim) != calls {
		t.Error("an invalid request was sent")
	}
}

// TestServiceUserByEmail covers an Openpath whose login does not name the
// service account's user: the client finds it by the login email.
func TestServiceUserByEmail(t *testing.T) {
	s, err := sim.New(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	srv := httptest.NewServer(openpathSpec(t).Handler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/auth/login" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var ans map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Error(err)
		}
		for _, sc := range ans["data"].(map[string]any)["tokenScopeList"].([]any) {
			delete(sc.(map[string]any), "user")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		_ = json.NewEncoder(w).Encode(ans)
	})))
	t.Cleanup(srv.Close)
	c := newClient(t, Config{BaseURL: srv.URL})
	mine, err := c.ServiceEntries(context.Background())
	if err != nil || len(mine) != 4 {
		t.Fatalf("ServiceEntries = %v, %v", mine, err)
	}
	if n := s.Calls(sim.OpListUsers); n != 1 {
		t.Errorf("Calls(OpListUsers) = %d, want 1", n)
	}

	// Without such a user there is nobody to issue tokens on.
	seed := sim.DemoSeed()
	seed.Users = slices.DeleteFunc(seed.Users, func(u sim.User) bool { return u.ID == sim.DemoServiceUserID })
	e := newEnv(t, seed)
	_, err = e.client.IssueUnlockToken(context.Background(), access.UnlockTokenRequest{Entries: []access.TokenEntry{{ID: "101"}}})
	if !errors.Is(err, access.ErrNoServiceUser) {
		t.Errorf("no service user: %v, want ErrNoServiceUser", err)
	}
}
