package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/notify/twilio"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/setup"
	"github.com/cloudkey/cloudkey/internal/telemetry"
)

// stack is a whole cloudkey on loopback, wired as `cloudkey serve` wires
// it: a real redis-server, the simulator over HTTP, the server over real
// gRPC and HTTP.
type stack struct {
	sim    *sim.Server
	app    *setup.App
	redis  *redistest.Server
	tokens *identity.HS256
	client pb.ResidentServiceClient
	http   string // base URL
	grpc   string
	// stop ends Serve, as SIGTERM does; served then yields its result.
	stop   context.CancelFunc
	served chan error
}

type stackOpts struct {
	accountTTL time.Duration
	unlockCap  time.Duration
	notifier   notify.Notifier
	smtp       notify.SMTPConfig
	twilio     twilio.Config // guest-link texts (with no notifier)
	limits     ratelimit.Config
	proxies    []netip.Prefix
	jwksURL    string // tokens are verified against it (issuer testIssuer, audience testAudience)
	// cors, tileAncestors and tlsCert/tlsKey are the HTTP security
	// settings; with TLS, client and http are not usable as they are.
	cors            []string
	tileAncestors   string
	tlsCert, tlsKey string
	// breakerOpen is the access system's breaker open timeout; 0: default.
	breakerOpen time.Duration
	logger      *slog.Logger // nil: discard
	tracing     telemetry.TracingConfig
	// redis and sim, when set, are shared with other stacks (replicas);
	// otherwise the stack has a redis-server and an embedded simulator
	// of its own.
	redis    *redistest.Server
	sim      *sim.Server
	localTTL time.Duration
	// redisURL, when set, is used instead of a redis-server (redis is nil).
	redisURL string
	// embeddedRedis: no Redis URL at all, so the embedded Redis, as
	// `cloudkey serve` runs by default (redis is nil).
	embeddedRedis bool
	// envoy keeps the demo's embedded Envoy simulator, connected at
	// location: tile registrations there then go through Envoy.
	envoy bool
}

func newStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	rs := o.redis
	redisURL := o.redisURL
	if rs == nil && redisURL == "" && !o.embeddedRedis {
		rs = redistest.Start(t)
	}
	if rs != nil {
		redisURL = rs.URL()
	}
	if o.logger == nil {
		o.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var access setup.Config
	if o.sim != nil {
		access = setup.Config{AccessURL: o.sim.URL, AccessEmail: sim.DemoServiceEmail,
			AccessPassword: sim.DemoServicePassword, AccessOrg: strconv.Itoa(sim.DemoOrgID)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	secret, issuer, audience := identity.DevelopmentSecret, "", ""
	if o.jwksURL != "" {
		secret, issuer, audience = "", testIssuer, testAudience
	}
	app, err := setup.Start(ctx, setup.Config{
		AccessURL: access.AccessURL, AccessEmail: access.AccessEmail,
		AccessPassword: access.AccessPassword, AccessOrg: access.AccessOrg, LocalTTL: o.localTTL,
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		RedisURL: redisURL, TokenSecret: secret,
		JWKSURL: o.jwksURL, TokenIssuer: issuer, TokenAudience: audience,
		UnlockTimeout: o.unlockCap, AccountTTL: o.accountTTL, AccessBreakerOpen: o.breakerOpen,
		Logger:      o.logger,
		Tracing:     o.tracing,
		Notifier:    o.notifier,
		SMTP:        o.smtp,
		Twilio:      o.twilio,
		EnvoySecret: testEnvoySecret,
		RateLimits:  o.limits, TrustedProxies: o.proxies,
		CORSOrigins: o.cors, TileFrameAncestors: o.tileAncestors,
		TLSCertFile: o.tlsCert, TLSKeyFile: o.tlsKey, DemoWithoutEnvoy: !o.envoy,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	// done yields Serve's result, then (closed) nil to further receivers.
	go func() { done <- app.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient(app.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	simSrv := app.Sim
	if o.sim != nil {
		simSrv = o.sim
	}
	return &stack{
		sim: simSrv, app: app, redis: rs, tokens: app.Tokens, stop: cancel, served: done,
		client: pb.NewResidentServiceClient(conn),
		http:   "http://" + app.Server.HTTPAddr(), grpc: app.Server.GRPCAddr(),
	}
}

func (s *stack) token(t testing.TB, email string) string {
	t.Helper()
	tok, err := s.tokens.Sign(email, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *stack) as(t *testing.T, email string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+s.token(t, email))
}

// rest calls the gateway and returns the status code and decoded body.
func (s *stack) rest(t *testing.T, method, path, email, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, s.http+path, strings.NewReader(body))
	if email != "" {
		req.Header.Set("Authorization", "Bearer "+s.token(t, email))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, raw, err)
	}
	return resp.StatusCode, out
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.Reason
		}
	}
	return ""
}

func field(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.FieldViolations) > 0 {
			return br.FieldViolations[0].Field
		}
	}
	return ""
}

// GetMe, ListEntries, bad tokens and bad unlocks over both transports:
// TestResidentAPI (resident_api_test.go).

// Warm ListEntries answers are built once per cached snapshot and
// shared: repeated calls over gRPC and REST give the same full answer.
func TestWarmListEntriesSharedAnswer(t *testing.T) {
	st := newStack(t, stackOpts{})
	ctx := st.as(t, "alice@example.com")
	var first *pb.ListEntriesResponse
	for i := range 3 {
		resp, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Entries) != 3 || resp.Entries[0].Id == "" || resp.Entries[0].Site == "" {
			t.Fatalf("call %d: entries %v, want alice's three, complete", i, resp.Entries)
		}
		if first == nil {
			first = resp
		} else if !proto.Equal(first, resp) {
			t.Fatalf("call %d: %v, want the first answer %v", i, resp, first)
		}
	}
	for i := range 2 {
		code, body := st.rest(t, "GET", "/v1/me/entries", "alice@example.com", "")
		es, _ := body["entries"].([]any)
		if code != 200 || len(es) != 3 {
			t.Fatalf("REST call %d: %d %v, want alice's three entries", i, code, body)
		}
		for j, e := range es {
			m := e.(map[string]any)
			if m["id"] != first.Entries[j].Id || m["name"] != first.Entries[j].Name || m["site"] != first.Entries[j].Site {
				t.Errorf("REST call %d entry %d = %v, want %v", i, j, m, first.Entries[j])
			}
		}
	}
}

func TestFavorites(t *testing.T) {
	st := newStack(t, stackOpts{})
	ctx := st.as(t, "alice@example.com")
	if _, err := st.client.SetFavorite(ctx, &pb.SetFavoriteRequest{EntryId: "103", Favorite: true}); err != nil {
		t.Fatal(err)
	}
	resp, _ := st.client.ListEntries(ctx, &pb.ListEntriesRequest{})
	if e := resp.Entries[0]; e.Name != "Gym" || !e.Favorite {
		t.Fatalf("first entry = %+v, want the favourite Gym", e)
	}
	// REST: PUT sets, DELETE clears.
	if code, body := st.rest(t, "PUT", "/v1/me/favorites/101", "alice@example.com", ""); code != 200 || body["entry"].(map[string]any)["favorite"] != true {
		t.Fatalf("PUT favorite = %d %v", code, body)
	}
	if code, body := st.rest(t, "DELETE", "/v1/me/favorites/103", "alice@example.com", ""); code != 200 || body["entry"].(map[string]any)["favorite"] != false {
		t.Fatalf("DELETE favorite = %d %v", code, body)
	}
	resp, _ = st.client.ListEntries(ctx, &pb.ListEntriesRequest{})
	var favs []string
	for _, e := range resp.Entries {
		if e.Favorite {
			favs = append(favs, e.Name)
		}
	}
	if fmt.Sprint(favs) != "[Lobby]" {
		t.Errorf("favourites = %v, want [Lobby]", favs)
	}
	// The refusals (not one of alice's entries; empty id): TestResidentAPI.
}

func TestUnlock(t *testing.T) {
	st := newStack(t, stackOpts{})
	resp, err := st.client.Unlock(st.as(t, "alice@example.com"), &pb.UnlockRequest{EntryIds: []string{"101", "105", "102"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]pb.UnlockStatus{}
	for i, r := range resp.Results {
		got[r.EntryId] = r.Status
		if want := []string{"101", "105", "102"}[i]; r.EntryId != want {
			t.Errorf("result %d is for %s, want request order (%s)", i, r.EntryId, want)
		}
	}
	want := map[string]pb.UnlockStatus{
		"101": pb.UnlockStatus_UNLOCK_STATUS_OK,
		"102": pb.UnlockStatus_UNLOCK_STATUS_OK,
		"105": pb.UnlockStatus_UNLOCK_STATUS_DENIED,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("results = %v, want %v", got, want)
	}
	if n := st.sim.Calls(sim.OpUnlock); n != 2 {
		t.Errorf("upstream unlock calls = %d, want 2 (Server Room denied without a call)", n)
	}
}

func TestUnlockNotPermittedMakesNoUpstreamCall(t *testing.T) {
	st := newStack(t, stackOpts{})
	resp, err := st.client.Unlock(st.as(t, "erin@example.com"), &pb.UnlockRequest{EntryIds: []string{"102"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Results[0]; r.Status != pb.UnlockStatus_UNLOCK_STATUS_DENIED || r.Message == "" {
		t.Errorf("result = %+v, want DENIED with a message", r)
	}
	if n := st.sim.Calls(sim.OpUnlock); n != 0 {
		t.Errorf("upstream unlock calls = %d, want 0", n)
	}
}

func TestCloudKeyCreatedOnceUnderConcurrentFirstCalls(t *testing.T) {
	st := newStack(t, stackOpts{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := st.client.ListEntries(st.as(t, "alice@example.com"), &pb.ListEntriesRequest{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := st.sim.Calls(sim.OpCreateCredential); n != 1 {
		t.Errorf("cloud keys created = %d, want 1", n)
	}
	// And it is reused: an unlock works with it.
	resp, err := st.client.Unlock(st.as(t, "alice@example.com"), &pb.UnlockRequest{EntryIds: []string{"101"}})
	if err != nil || resp.Results[0].Status != pb.UnlockStatus_UNLOCK_STATUS_OK {
		t.Fatalf("unlock with the new cloud key: %v %v", resp, err)
	}
}

func TestColdListEntriesMakeOneUpstreamCall(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.sim.SetFaults(sim.Faults{Latency: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for range 1000 { // the budget of issue 3: 1,000 cold callers, one upstream call
		wg.Go(func() {
			if _, err := st.client.ListEntries(st.as(t, "alice@example.com"), &pb.ListEntriesRequest{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := st.sim.Calls(sim.OpListUserEntries); n != 1 {
		t.Errorf("upstream entries calls = %d, want 1", n)
	}
	if n := st.sim.Calls(sim.OpListUsers); n != 1 {
		t.Errorf("upstream user lookups = %d, want 1", n)
	}
}

func TestUnlockFansOutConcurrently(t *testing.T) {
	st := newStack(t, stackOpts{})
	ctx := st.as(t, "alice@example.com")
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil { // warm the cache
		t.Fatal(err)
	}
	// 1 s per upstream unlock: sequential takes 3 s or more, concurrent
	// about 1 s; the 2.5 s bound leaves a loaded machine 1.5 s of slack.
	st.sim.SetFaults(sim.Faults{Latency: time.Second})
	start := time.Now()
	resp, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101", "102", "103"}})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.Status != pb.UnlockStatus_UNLOCK_STATUS_OK {
			t.Fatalf("result %+v", r)
		}
	}
	if elapsed >= 2500*time.Millisecond {
		t.Errorf("3 entries at 1 s each took %v: not concurrent", elapsed)
	}
	t.Logf("3 entries at 1 s each: %v", elapsed)
}

func TestUnlockHangingUpstreamTimesOutByCallerDeadline(t *testing.T) {
	st := newStack(t, stackOpts{})
	ctx := st.as(t, "alice@example.com")
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
		t.Fatal(err)
	}
	st.sim.SetFaults(sim.Faults{Hang: true})
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	resp, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101", "102"}})
	// The server answers TIMEOUT per entry just inside the deadline, or
	// the deadline passes on the wire first; either way by the deadline.
	if err != nil {
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("err = %v, want per-entry TIMEOUT or DEADLINE_EXCEEDED", err)
		}
	} else {
		for _, r := range resp.Results {
			if r.Status != pb.UnlockStatus_UNLOCK_STATUS_TIMEOUT {
				t.Errorf("result %+v, want TIMEOUT", r)
			}
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("hanging upstream held the call %v past a 300 ms deadline", el)
	}
}

func TestUnlockServerCapGivesTimeoutResults(t *testing.T) {
	st := newStack(t, stackOpts{unlockCap: 200 * time.Millisecond})
	ctx := st.as(t, "alice@example.com")
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
		t.Fatal(err)
	}
	st.sim.SetFaults(sim.Faults{Hang: true})
	resp, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101", "102"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.Status != pb.UnlockStatus_UNLOCK_STATUS_TIMEOUT || r.Message == "" {
			t.Errorf("result %+v, want TIMEOUT with a message", r)
		}
	}
}

func TestUnlockUpstreamErrorsAreUnavailable(t *testing.T) {
	st := newStack(t, stackOpts{})
	ctx := st.as(t, "alice@example.com")
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
		t.Fatal(err)
	}
	st.sim.SetFaults(sim.Faults{ErrorRate: 1})
	resp, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Results[0]; r.Status != pb.UnlockStatus_UNLOCK_STATUS_UNAVAILABLE {
		t.Errorf("result %+v, want UNAVAILABLE", r)
	}
	// A cold user with the access system down gets UNAVAILABLE, not a crash.
	_, err = st.client.ListEntries(st.as(t, "erin@example.com"), &pb.ListEntriesRequest{})
	if status.Code(err) != codes.Unavailable || reason(err) != "ACCESS_UNAVAILABLE" {
		t.Errorf("cold ListEntries with access system failing: %v", err)
	}
}

func TestMoveOut(t *testing.T) {
	st := newStack(t, stackOpts{accountTTL: time.Minute})
	ctx := st.as(t, "alice@example.com")
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
		t.Fatal(err)
	}
	st.sim.SetUserStatus("alice@example.com", access.StatusSuspended)
	// The cache still says active, but the access system refuses at once.
	resp, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.Results[0]; r.Status != pb.UnlockStatus_UNLOCK_STATUS_DENIED {
		t.Fatalf("suspended user's unlock = %+v, want DENIED", r)
	}
	// The refusal dropped the cache: the next call knows.
	me, err := st.client.GetMe(ctx, &pb.GetMeRequest{})
	if err != nil || me.Connected || me.Reason != "USER_DISABLED" {
		t.Fatalf("GetMe after refusal = %+v, %v; want USER_DISABLED", me, err)
	}
	_, err = st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101"}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("unlock after move-out: %v, want PERMISSION_DENIED", err)
	}
}

func TestMoveOutWithinAccountTTL(t *testing.T) {
	st := newStack(t, stackOpts{accountTTL: 500 * time.Millisecond})
	ctx := st.as(t, "erin@example.com")
	if me, err := st.client.GetMe(ctx, &pb.GetMeRequest{}); err != nil || !me.Connected {
		t.Fatal(me, err)
	}
	st.sim.SetUserStatus("erin@example.com", access.StatusSuspended)
	// Without any unlock, the cached "active" expires within the bound
	// (TTL plus at most 20% jitter).
	deadline := time.Now().Add(5 * time.Second)
	for {
		me, err := st.client.GetMe(ctx, &pb.GetMeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if me.Reason == "USER_DISABLED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("suspension not seen within the account TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHealth(t *testing.T) {
	st := newStack(t, stackOpts{})
	conn, _ := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", resp, err)
	}
	code, body := st.rest(t, "GET", "/healthz", "", "")
	if code != 200 || body["status"] != "ok" {
		t.Errorf("/healthz = %d %v", code, body)
	}
}

func TestAuditStream(t *testing.T) {
	st := newStack(t, stackOpts{})
	if _, err := st.client.Unlock(st.as(t, "alice@example.com"), &pb.UnlockRequest{EntryIds: []string{"101", "105"}}); err != nil {
		t.Fatal(err)
	}
	rdb := st.redis.Client()
	deadline := time.Now().Add(5 * time.Second)
	for {
		msgs, err := rdb.XRange(context.Background(), "ck:v1:audit", "-", "+").Result()
		if err == nil && len(msgs) == 2 {
			got := map[string]any{}
			for _, m := range msgs {
				got[m.Values["entry"].(string)] = m.Values["result"]
				if m.Values["email"] != "alice@example.com" {
					t.Errorf("audit email = %v", m.Values["email"])
				}
			}
			if got["101"] != "OK" || got["105"] != "DENIED" {
				t.Errorf("audit results = %v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit stream has %d records (%v), want 2", len(msgs), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
