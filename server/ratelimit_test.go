package server_test

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

var perMinute = func(n int) ratelimit.Limit { return ratelimit.Limit{Rate: n, Period: time.Minute, Burst: n} }

func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// postREST sends a JSON POST (as email when set, with extra headers) and
// returns the status code and Retry-After.
func (s *stack) postREST(t *testing.T, path, email, body string, headers ...string) (int, string) {
	t.Helper()
	headers = append([]string{"Content-Type", "application/json"}, headers...)
	if email != "" {
		headers = append(headers, "Authorization", "Bearer "+s.token(t, email))
	}
	resp, _ := s.send(t, "POST", path, []byte(body), headers...)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func (s *stack) unlock(t *testing.T, ctx context.Context) error {
	t.Helper()
	r, err := s.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101"}})
	if err == nil && r.Results[0].Status != pb.UnlockStatus_UNLOCK_STATUS_OK {
		t.Fatalf("unlock: %v", r.Results[0])
	}
	return err
}

func TestUnlockRateLimitPerUser(t *testing.T) {
	st := newStack(t, stackOpts{limits: ratelimit.Config{UnlockUser: perMinute(10)}})
	alice := st.as(t, "alice@example.com")
	for i := range 10 {
		if err := st.unlock(t, alice); err != nil {
			t.Fatalf("unlock %d: %v", i+1, err)
		}
	}
	before := st.sim.Calls(sim.OpUnlock)
	err := st.unlock(t, alice)
	if status.Code(err) != codes.ResourceExhausted || reason(err) != "RATE_LIMITED" {
		t.Fatalf("11th unlock: %v; want RESOURCE_EXHAUSTED, RATE_LIMITED", err)
	}
	if d := retryDelay(err); d <= 0 || d > 6*time.Second {
		t.Fatalf("RetryInfo delay = %v, want in (0, 6s]", d)
	}
	code, retry := st.postREST(t, "/v1/me/unlock", "alice@example.com", `{"entryIds":["101"]}`)
	if secs, err := strconv.Atoi(retry); code != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 6 {
		t.Fatalf("REST over the limit: %d, Retry-After %q; want 429 and 1..6 seconds", code, retry)
	}
	if n := st.sim.Calls(sim.OpUnlock); n != before {
		t.Fatalf("refused unlocks reached the access system: %d calls, want %d", n, before)
	}
	// Only Unlock is limited, and only alice.
	if _, err := st.client.ListEntries(alice, &pb.ListEntriesRequest{}); err != nil {
		t.Fatalf("ListEntries of a limited user: %v", err)
	}
	if err := st.unlock(t, st.as(t, "erin@example.com")); err != nil {
		t.Fatalf("another user: %v", err)
	}
	if n := st.sim.Calls(sim.OpUnlock); n != before+1 {
		t.Fatalf("access-system unlocks = %d, want %d", n, before+1)
	}
}

// The IP budget is shared by gRPC and REST callers of one address: the
// gateway hands the HTTP peer's address to the limiter, and a client's own
// X-Forwarded-For is not believed.
func TestUnlockRateLimitPerIP(t *testing.T) {
	st := newStack(t, stackOpts{limits: ratelimit.Config{UnlockIP: perMinute(3)}})
	for i, email := range []string{"alice@example.com", "erin@example.com", "alice@example.com"} {
		if err := st.unlock(t, st.as(t, email)); err != nil {
			t.Fatalf("unlock %d: %v", i+1, err)
		}
	}
	if err := st.unlock(t, st.as(t, "erin@example.com")); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("4th unlock from one IP: %v", err)
	}
	if code, _ := st.postREST(t, "/v1/me/unlock", "erin@example.com", `{"entryIds":["101"]}`,
		"X-Forwarded-For", "203.0.113.9"); code != http.StatusTooManyRequests {
		t.Fatalf("REST from the same address with a made-up X-Forwarded-For: %d, want 429", code)
	}
	spoofed := metadata.AppendToOutgoingContext(st.as(t, "erin@example.com"), "x-forwarded-for", "203.0.113.9")
	if err := st.unlock(t, spoofed); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC with a made-up x-forwarded-for: %v", err)
	}
}

func TestUnlockRateLimitTrustedProxy(t *testing.T) {
	st := newStack(t, stackOpts{
		limits:  ratelimit.Config{UnlockIP: perMinute(1)},
		proxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	tests := []struct {
		name, xff string
		want      int
	}{
		{"client A", "203.0.113.7", 200},
		{"client A again", "203.0.113.7", 429},
		{"client B", "203.0.113.8", 200},
		{"A behind a forged left entry", "198.51.100.1, 203.0.113.7", 429},
		{"A through a second trusted hop", "203.0.113.7, 127.0.0.5", 429},
		{"no header: the proxy itself", "", 200},
	}
	for _, tt := range tests {
		var h []string
		if tt.xff != "" {
			h = []string{"X-Forwarded-For", tt.xff}
		}
		if code, _ := st.postREST(t, "/v1/me/unlock", "alice@example.com", `{"entryIds":["101"]}`, h...); code != tt.want {
			t.Errorf("%s (X-Forwarded-For %q): %d, want %d", tt.name, tt.xff, code, tt.want)
		}
	}
	// gRPC from a trusted proxy: its x-forwarded-for names the client.
	viaProxy := metadata.AppendToOutgoingContext(st.as(t, "erin@example.com"), "x-forwarded-for", "203.0.113.8")
	if err := st.unlock(t, viaProxy); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC for client B again: %v", err)
	}
	viaProxy = metadata.AppendToOutgoingContext(st.as(t, "erin@example.com"), "x-forwarded-for", "203.0.113.10")
	if err := st.unlock(t, viaProxy); err != nil {
		t.Fatalf("gRPC for client C: %v", err)
	}
}

func TestGuestUnlockRateLimit(t *testing.T) {
	st, mem := visitorStackWith(t, stackOpts{limits: ratelimit.Config{GuestLink: perMinute(2)}})
	invite := fixture(t, "invite_created.json", time.Now())
	if code, body := st.do(t, "POST", "/webhooks/envoy", invite, envoy.SignatureHeader, envoy.Sign(invite, []byte(testEnvoySecret))); code != 200 {
		t.Fatalf("invite: %d %s", code, body)
	}
	token := strings.TrimPrefix(mem.Messages()[0].Link, st.http+"/g/")
	body := `{"token":"` + token + `","entryId":"101"}`
	for i := range 2 {
		if code, _ := st.postREST(t, "/v1/guest/unlock", "", body); code != 200 {
			t.Fatalf("guest unlock %d: %d", i+1, code)
		}
	}
	opened := len(st.sim.Unlocks())
	code, retry := st.postREST(t, "/v1/guest/unlock", "", body)
	if secs, err := strconv.Atoi(retry); code != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 30 {
		t.Fatalf("3rd guest unlock: %d, Retry-After %q; want 429 and 1..30 seconds", code, retry)
	}
	conn, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = pb.NewGuestServiceClient(conn).GuestUnlock(context.Background(), &pb.GuestUnlockRequest{Token: token, EntryId: "101"})
	if status.Code(err) != codes.ResourceExhausted || retryDelay(err) <= 0 {
		t.Fatalf("gRPC guest unlock over the limit: %v", err)
	}
	if n := len(st.sim.Unlocks()); n != opened {
		t.Fatalf("refused guest unlocks opened doors: %d, want %d", n, opened)
	}
	// Another link is not limited by this one (an unknown link is refused
	// as an ended pass, not as limited).
	if code, _ := st.postREST(t, "/v1/guest/unlock", "", `{"token":"`+strings.Repeat("A", len(token))+`","entryId":"101"}`); code != 200 {
		t.Fatalf("another link: %d", code)
	}
}

// With Redis not answering the limiter lets unlocks through (the access
// system still authorises them) instead of refusing or hanging. Redis is
// paused rather than killed: a killed one leaves go-redis redialling in
// the background for a second after Close, which goleak would report.
// ratelimit's own tests kill it.
func TestRateLimitFailsOpen(t *testing.T) {
	st := newStack(t, stackOpts{limits: ratelimit.Config{UnlockUser: perMinute(1), UnlockIP: perMinute(1)}})
	alice := st.as(t, "alice@example.com")
	if err := st.unlock(t, alice); err != nil {
		t.Fatal(err)
	}
	if err := st.unlock(t, alice); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second unlock: %v", err)
	}
	if err := st.redis.Client().Do(context.Background(), "CLIENT", "PAUSE", 3000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	before := st.sim.Calls(sim.OpUnlock)
	ctx, cancel := context.WithTimeout(alice, 20*time.Second)
	defer cancel()
	if err := st.unlock(t, ctx); err != nil {
		t.Fatalf("unlock with Redis down: %v; want it let through", err)
	}
	if n := st.sim.Calls(sim.OpUnlock); n != before+1 {
		t.Fatalf("access-system unlocks = %d, want %d", n, before+1)
	}
}
