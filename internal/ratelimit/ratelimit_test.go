package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	ip1   = netip.MustParseAddr("192.0.2.1")
	ip2   = netip.MustParseAddr("192.0.2.2")
)

func newLimiter(t testing.TB, rdb redis.UniversalClient, cfg Config) *Limiter {
	cfg.Logger = quiet
	return New(rdb, cfg)
}

// take calls allow n times and returns how many were allowed and the last
// refusal.
func take(t *testing.T, n int, allow func() error) (int, *LimitedError) {
	t.Helper()
	ok := 0
	var last *LimitedError
	for range n {
		err := allow()
		switch {
		case err == nil:
			ok++
		case errors.As(err, &last):
			if !errors.Is(err, ErrLimited) {
				t.Fatalf("%v is not ErrLimited", err)
			}
		default:
			t.Fatalf("allow: %v", err)
		}
	}
	return ok, last
}

func TestUnlockPerUser(t *testing.T) {
	rdb := redistest.Start(t).Client()
	l := newLimiter(t, rdb, Config{UnlockUser: Limit{Rate: 10, Period: time.Minute, Burst: 10}})
	ctx := context.Background()
	ok, refused := take(t, 11, func() error { return l.AllowUnlock(ctx, "alice@example.com", ip1) })
	if ok != 10 || refused == nil || refused.Scope != "user" {
		t.Fatalf("allowed %d of 11, refusal %+v; want 10 and a user refusal", ok, refused)
	}
	// The next unit comes after one emission interval (6 s at 10/min).
	if refused.RetryAfter <= 0 || refused.RetryAfter > 6*time.Second {
		t.Fatalf("RetryAfter = %v, want in (0, 6s]", refused.RetryAfter)
	}
	if err := l.AllowUnlock(ctx, "bob@example.com", ip1); err != nil {
		t.Fatalf("another user on the same IP: %v", err)
	}
}

func TestUnlockPerIP(t *testing.T) {
	rdb := redistest.Start(t).Client()
	l := newLimiter(t, rdb, Config{
		UnlockUser: Limit{Rate: 100, Period: time.Minute, Burst: 100},
		UnlockIP:   Limit{Rate: 3, Period: time.Minute, Burst: 3},
	})
	ctx := context.Background()
	users := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"}
	i := 0
	ok, refused := take(t, 4, func() error { i++; return l.AllowUnlock(ctx, users[i-1], ip1) })
	if ok != 3 || refused == nil || refused.Scope != "ip" {
		t.Fatalf("allowed %d of 4 from one IP, refusal %+v; want 3 and an ip refusal", ok, refused)
	}
	if err := l.AllowUnlock(ctx, "a@example.com", ip2); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	// IPv6 addresses of one /64 share a budget; another /64 does not.
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	j := 0
	ok, _ = take(t, 4, func() error {
		j++
		return l.AllowUnlock(ctx, users[j-1], map[bool]netip.Addr{true: a, false: b}[j%2 == 0])
	})
	if ok != 3 {
		t.Fatalf("one /64: allowed %d of 4, want 3", ok)
	}
	if err := l.AllowUnlock(ctx, "a@example.com", netip.MustParseAddr("2001:db8:1:3::1")); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	// An unknown address is limited by user only.
	if err := l.AllowUnlock(ctx, "a@example.com", netip.Addr{}); err != nil {
		t.Fatalf("no address: %v", err)
	}
}

func TestGuest(t *testing.T) {
	rdb := redistest.Start(t).Client()
	l := newLimiter(t, rdb, Config{
		GuestLink: Limit{Rate: 2, Period: time.Minute, Burst: 2},
		GuestIP:   Limit{Rate: 3, Period: time.Minute, Burst: 3},
	})
	ctx := context.Background()
	ok, refused := take(t, 3, func() error { return l.AllowGuest(ctx, "link-1", ip1) })
	if ok != 2 || refused == nil || refused.Scope != "guest_link" {
		t.Fatalf("one link: allowed %d of 3, refusal %+v", ok, refused)
	}
	// ip1 has used 2 of 3 (the refusal spent nothing on either key): one
	// more link from ip1 gets one call.
	ok, refused = take(t, 2, func() error { return l.AllowGuest(ctx, "link-2", ip1) })
	if ok != 1 || refused == nil || refused.Scope != "guest_ip" {
		t.Fatalf("second link from the same IP: allowed %d of 2, refusal %+v; want 1 and an IP refusal", ok, refused)
	}
	// link-2's try refused by ip1 gave its unit back: from another IP it
	// has one left, then none.
	if ok, _ := take(t, 2, func() error { return l.AllowGuest(ctx, "link-2", ip2) }); ok != 1 {
		t.Fatalf("link-2 from another IP: allowed %d of 2, want the 1 left of its 2", ok)
	}
	if err := l.AllowGuest(ctx, "link-3", ip2); err != nil {
		t.Fatalf("a third link from another IP: %v", err)
	}
	// Resident limits are off in this configuration and untouched.
	if err := l.AllowUnlock(ctx, "a@example.com", ip1); err != nil {
		t.Fatal(err)
	}
	// The token is not stored.
	keys, _ := rdb.Keys(ctx, "*").Result()
	for _, k := range keys {
		if strings.Contains(k, "link-") {
			t.Fatalf("key %q holds the guest token", k)
		}
	}
}

// Two replicas share one Redis and so one budget.
func TestReplicasShareBudget(t *testing.T) {
	rs := redistest.Start(t)
	cfg := Config{UnlockUser: Limit{Rate: 10, Period: time.Minute, Burst: 10}}
	a, b := newLimiter(t, rs.Client(), cfg), newLimiter(t, rs.Client(), cfg)
	ctx := context.Background()
	n := 0
	ok, refused := take(t, 12, func() error {
		n++
		if n%2 == 0 {
			return a.AllowUnlock(ctx, "alice@example.com", ip1)
		}
		return b.AllowUnlock(ctx, "alice@example.com", ip2)
	})
	if ok != 10 || refused == nil {
		t.Fatalf("two replicas allowed %d of 12, want 10", ok)
	}
}

func TestFailOpen(t *testing.T) {
	cfg := Config{UnlockUser: Limit{Rate: 1, Period: time.Hour, Burst: 1}, GuestIP: Limit{Rate: 1, Period: time.Hour, Burst: 1}}
	ctx := context.Background()
	t.Run("redis down", func(t *testing.T) {
		rs := redistest.Start(t)
		l := newLimiter(t, rs.Client(), cfg)
		if err := l.AllowUnlock(ctx, "alice@example.com", ip1); err != nil {
			t.Fatal(err)
		}
		rs.Kill()
		for range 3 {
			if err := l.AllowUnlock(ctx, "alice@example.com", ip1); err != nil {
				t.Fatalf("with Redis down: %v; want the call let through", err)
			}
		}
		if l.FailedOpen() != 3 {
			t.Fatalf("FailedOpen = %d, want 3", l.FailedOpen())
		}
	})
	t.Run("redis hangs", func(t *testing.T) {
		// A server that accepts and never answers: the check gives up
		// after Timeout instead of holding the unlock.
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		var conns []net.Conn
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			for {
				c, err := lis.Accept()
				if err != nil {
					return
				}
				conns = append(conns, c)
			}
		}()
		rdb := redis.NewClient(&redis.Options{Addr: lis.Addr().String(), ContextTimeoutEnabled: true, MaxRetries: -1})
		defer rdb.Close()
		l := newLimiter(t, rdb, cfg)
		done := make(chan error, 1)
		go func() { done <- l.AllowGuest(ctx, "link", ip1) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("with Redis hanging: %v; want the call let through", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the check did not give up on a hanging Redis")
		}
		if l.FailedOpen() != 1 {
			t.Fatalf("FailedOpen = %d, want 1", l.FailedOpen())
		}
		lis.Close()
		<-accepted
		for _, c := range conns {
			c.Close()
		}
	})
}

// After Redis restarts (or SCRIPT FLUSH) the script is sent again; the
// check still runs instead of failing open.
func TestScriptReloaded(t *testing.T) {
	rdb := redistest.Start(t).Client()
	l := newLimiter(t, rdb, Config{UnlockUser: Limit{Rate: 1, Period: time.Hour, Burst: 1}, UnlockIP: Limit{Rate: 5, Period: time.Hour, Burst: 5}})
	ctx := context.Background()
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.AllowUnlock(ctx, "alice@example.com", ip1); err != nil {
		t.Fatal(err)
	}
	rdb.ScriptFlush(ctx)
	if err := l.AllowUnlock(ctx, "alice@example.com", ip1); !errors.Is(err, ErrLimited) {
		t.Fatalf("second unlock after SCRIPT FLUSH: %v, want ErrLimited", err)
	}
	if l.FailedOpen() != 0 {
		t.Fatalf("FailedOpen = %d", l.FailedOpen())
	}
}

// The pipelined script decides as redis_rate's Allow does.
func TestAgreesWithRedisRate(t *testing.T) {
	rdb := redistest.Start(t).Client()
	ctx := context.Background()
	limit := Limit{Rate: 7, Period: time.Minute, Burst: 4}
	l := newLimiter(t, rdb, Config{UnlockUser: limit})
	rr := redis_rate.NewLimiter(rdb)
	for i := range 8 {
		err := l.AllowUnlock(ctx, "alice@example.com", netip.Addr{})
		res, rerr := rr.Allow(ctx, "alice@example.com", limit)
		if rerr != nil {
			t.Fatal(rerr)
		}
		var le *LimitedError
		ours := err == nil
		if !ours && !errors.As(err, &le) {
			t.Fatal(err)
		}
		if ours != (res.Allowed == 1) {
			t.Fatalf("call %d: ours allowed=%v, redis_rate allowed=%d", i, ours, res.Allowed)
		}
		if !ours && (le.RetryAfter <= 0 || res.RetryAfter <= 0) {
			t.Fatalf("call %d: retry ours %v, redis_rate %v", i, le.RetryAfter, res.RetryAfter)
		}
	}
}

func TestOff(t *testing.T) {
	// No limit set: no Redis call at all (the client points nowhere).
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	l := newLimiter(t, rdb, Config{})
	for range 3 {
		if err := l.AllowUnlock(context.Background(), "alice@example.com", ip1); err != nil {
			t.Fatal(err)
		}
	}
	if l.FailedOpen() != 0 {
		t.Fatal("a disabled limiter called Redis")
	}
	if (Config{}).Enabled() || !Defaults().Enabled() {
		t.Fatal("Enabled")
	}
}

func TestParseLimit(t *testing.T) {
	tests := []struct {
		in      string
		want    Limit
		wantErr bool
	}{
		{in: "30/m", want: Limit{Rate: 30, Period: time.Minute, Burst: 30}},
		{in: "30/m,burst=10", want: Limit{Rate: 30, Period: time.Minute, Burst: 10}},
		{in: " 5/10s , burst=2 ", want: Limit{Rate: 5, Period: 10 * time.Second, Burst: 2}},
		{in: "100/h", want: Limit{Rate: 100, Period: time.Hour, Burst: 100}},
		{in: "1/s", want: Limit{Rate: 1, Period: time.Second, Burst: 1}},
		{in: "off", want: Limit{}},
		{in: "0", want: Limit{}},
		{in: "", wantErr: true},
		{in: "30", wantErr: true},
		{in: "0/m", wantErr: true},
		{in: "-1/m", wantErr: true},
		{in: "x/m", wantErr: true},
		{in: "30/fortnight", wantErr: true},
		{in: "30/-1s", wantErr: true},
		{in: "30/m,burst=0", wantErr: true},
		{in: "30/m,bust=3", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseLimit(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseLimit(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseLimit(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		if back, err := ParseLimit(FormatLimit(got)); err != nil || back != got {
			t.Errorf("FormatLimit(%v) = %q does not read back: %v, %v", got, FormatLimit(got), back, err)
		}
	}
}

// BenchmarkAllowUnlock is one resident check (user and IP keys, one
// pipelined round trip); BenchmarkRedisRateTwoKeys is the same with two
// redis_rate.Allow calls; BenchmarkPing is one bare round trip.
func BenchmarkAllowUnlock(b *testing.B) {
	rdb := redistest.Start(b).Client()
	l := newLimiter(b, rdb, Config{
		UnlockUser: Limit{Rate: 1 << 30, Period: time.Second, Burst: 1 << 30},
		UnlockIP:   Limit{Rate: 1 << 30, Period: time.Second, Burst: 1 << 30},
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.AllowUnlock(ctx, "alice@example.com", ip1); err != nil {
			b.Fatal(err)
		}
	}
	if l.FailedOpen() != 0 {
		b.Fatal("failed open")
	}
}

func BenchmarkRedisRateTwoKeys(b *testing.B) {
	rdb := redistest.Start(b).Client()
	rr := redis_rate.NewLimiter(rdb)
	limit := Limit{Rate: 1 << 30, Period: time.Second, Burst: 1 << 30}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rr.Allow(ctx, "user:alice@example.com", limit); err != nil {
			b.Fatal(err)
		}
		if _, err := rr.Allow(ctx, "ip:192.0.2.1", limit); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPing(b *testing.B) {
	rdb := redistest.Start(b).Client()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := rdb.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
}

// A call refused by one key gives back the unit it took from the other:
// a resident behind a busy shared address keeps their own budget, and a
// user over their limit does not use up their address's.
func TestRefusedCallSpendsNothing(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		user, ip     Limit
		first        func(l *Limiter) error // refused after its first call
		then         func(l *Limiter) error // draws on the budget first must not have spent
		wantThen     int
		refusedScope string
	}{
		{
			name: "refused by the address: the user's unit comes back",
			user: Limit{Rate: 3, Period: time.Minute, Burst: 3}, ip: Limit{Rate: 1, Period: time.Minute, Burst: 1},
			first: func(l *Limiter) error { return l.AllowUnlock(ctx, "alice@example.com", ip1) },
			then: func() func(l *Limiter) error {
				i := 0 // a new address each time: only alice's own budget counts
				return func(l *Limiter) error {
					i++
					return l.AllowUnlock(ctx, "alice@example.com", netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
				}
			}(),
			wantThen: 2, refusedScope: "ip",
		},
		{
			name: "refused by the user: the address's unit comes back",
			user: Limit{Rate: 1, Period: time.Minute, Burst: 1}, ip: Limit{Rate: 3, Period: time.Minute, Burst: 3},
			first: func(l *Limiter) error { return l.AllowUnlock(ctx, "bob@example.com", ip1) },
			then: func() func(l *Limiter) error {
				i := 0
				return func(l *Limiter) error { i++; return l.AllowUnlock(ctx, fmt.Sprintf("u%d@example.com", i), ip1) }
			}(),
			wantThen: 2, refusedScope: "user",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := redistest.Start(t).Client()
			l := newLimiter(t, rdb, Config{UnlockUser: tt.user, UnlockIP: tt.ip})
			ok, refused := take(t, 5, func() error { return tt.first(l) })
			if ok != 1 || refused == nil || refused.Scope != tt.refusedScope {
				t.Fatalf("first: allowed %d of 5, refusal %+v; want 1 and a %s refusal", ok, refused, tt.refusedScope)
			}
			if ok, _ := take(t, 5, func() error { return tt.then(l) }); ok != tt.wantThen {
				t.Errorf("then: allowed %d of 5, want %d: the refused calls spent the other budget", ok, tt.wantThen)
			}
		})
	}
}

// The refund never gives more than was taken: a key already full (or
// gone) stays full, and does not go beyond its burst.
func TestRefundStopsAtFull(t *testing.T) {
	rdb := redistest.Start(t).Client()
	ctx := context.Background()
	lim := Limit{Rate: 2, Period: time.Minute, Burst: 2}
	key := "ck:v1:rl:user:carol@example.com"
	for range 3 { // nothing to give back: no key
		if err := refund.Run(ctx, rdb, []string{key}, lim.Rate, lim.Period.Seconds()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	l := newLimiter(t, rdb, Config{UnlockUser: lim})
	if ok, _ := take(t, 5, func() error { return l.AllowUnlock(ctx, "carol@example.com", ip1) }); ok != 2 {
		t.Fatalf("allowed %d of 5 after refunds of nothing, want the burst of 2", ok)
	}
	for range 5 { // two units back, then full
		if err := refund.Run(ctx, rdb, []string{key}, lim.Rate, lim.Period.Seconds()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := take(t, 5, func() error { return l.AllowUnlock(ctx, "carol@example.com", ip1) }); ok != 2 {
		t.Errorf("allowed %d of 5 after five refunds of two units, want 2", ok)
	}
}

// TestRegistrationPerContactAndBuilding: a contact's registrations stop at
// the contact's budget, another contact of the building goes on until the
// building's budget, shared by all its contacts, is spent; another building
// is not affected, nor is a building with the same id at another property.
// A refusal spends nothing.
func TestRegistrationPerContactAndBuilding(t *testing.T) {
	rdb := redistest.Start(t).Client()
	l := newLimiter(t, rdb, Config{
		RegisterContact:  Limit{Rate: 3, Period: time.Hour, Burst: 3},
		RegisterBuilding: Limit{Rate: 5, Period: time.Hour, Burst: 5},
	})
	ctx := context.Background()
	ok, refused := take(t, 5, func() error { return l.AllowRegistration(ctx, "harbor-view", "pat@acme.example", "hq") })
	if ok != 3 || refused == nil || refused.Scope != "contact" || refused.RetryAfter <= 0 {
		t.Fatalf("allowed %d of 5, refusal %+v; want 3 and a contact refusal", ok, refused)
	}
	if !strings.Contains(refused.Error(), "too many visitor registrations") {
		t.Errorf("refusal says %q", refused)
	}
	// Pat's refusals did not spend the building's budget: 2 are left.
	ok, refused = take(t, 3, func() error { return l.AllowRegistration(ctx, "harbor-view", "lee@acme.example", "hq") })
	if ok != 2 || refused == nil || refused.Scope != "building" {
		t.Fatalf("another contact: allowed %d of 3, refusal %+v; want 2 and a building refusal", ok, refused)
	}
	if err := l.AllowRegistration(ctx, "harbor-view", "lee@acme.example", "annex"); err != nil {
		t.Fatalf("another building: %v", err)
	}
	// The same contact and building ids at another property: their own budgets.
	if ok, refused = take(t, 3, func() error { return l.AllowRegistration(ctx, "foundry-lofts", "pat@acme.example", "hq") }); ok != 3 {
		t.Fatalf("another property: allowed %d of 3, refusal %+v; want all", ok, refused)
	}
}
