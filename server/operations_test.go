package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/cache"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// eventually polls cond until it holds, failing the test after a generous
// deadline (machines are noisy; nothing here asserts on speed).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *stack) health(t *testing.T) string {
	t.Helper()
	_, body := s.rest(t, "GET", "/healthz", "", "")
	st, _ := body["status"].(string)
	return st
}

// lookups counts the simulator's calls that the cache exists to save.
func lookups(s *sim.Server) int64 {
	return s.Calls(sim.OpListUsers) + s.Calls(sim.OpListUserEntries) + s.Calls(sim.OpListCredentials)
}

// Redis is killed in the middle of a bounded load and started again:
// calls keep being answered from the access system, upstream concurrency
// stays within the client's, health says degraded and then ok, every OK
// unlock is exactly one door opening, the audit records of the outage
// reach Redis once it is back, and the cache serves hits again.
func TestRedisGoesAwayUnderLoad(t *testing.T) {
	st := newStack(t, stackOpts{})
	users := map[string][]string{"alice@example.com": {"101", "102", "103"}, "erin@example.com": {"101", "104"}}
	ctxs := map[string]context.Context{}
	for email := range users {
		ctxs[email] = st.as(t, email)
		if _, err := st.client.ListEntries(ctxs[email], &pb.ListEntriesRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if h := st.health(t); h != "ok" {
		t.Fatalf("health before = %q", h)
	}
	st.sim.Reset()

	const workers = 8
	var (
		stop                 = make(chan struct{})
		wg                   sync.WaitGroup
		calls, listErrs      atomic.Int64
		unlockBad, afterKill atomic.Int64
		killed               atomic.Bool
		mu                   sync.Mutex
		opened               = map[string]int{} // email/entry → OK unlocks seen by clients
		firstErr             atomic.Value
	)
	for w := range workers {
		email := "alice@example.com"
		if w%2 == 1 {
			email = "erin@example.com"
		}
		ctx, entries := ctxs[email], users[email]
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
						listErrs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				} else {
					entry := entries[i%len(entries)]
					during := killed.Load()
					resp, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{entry}})
					switch {
					case err != nil:
						unlockBad.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					case resp.Results[0].Status != pb.UnlockStatus_UNLOCK_STATUS_OK:
						unlockBad.Add(1)
						firstErr.CompareAndSwap(nil, resp.Results[0].String())
					default:
						mu.Lock()
						opened[email+"/"+entry]++
						mu.Unlock()
						if during {
							afterKill.Add(1)
						}
					}
				}
				calls.Add(1)
			}
		})
	}
	atLeast := func(n int64) func() bool {
		target := calls.Load() + n
		return func() bool { return calls.Load() >= target }
	}
	eventually(t, "load before the kill", atLeast(200))

	st.redis.Kill()
	killed.Store(true)
	st.sim.ResetMaxInFlight()
	eventually(t, "health degraded with Redis down", func() bool { return st.health(t) == "degraded" })
	eventually(t, "load with Redis down", atLeast(200))
	maxDown := st.sim.MaxInFlight()

	st.redis.Restart()
	eventually(t, "health ok with Redis back", func() bool { return st.health(t) == "ok" })
	eventually(t, "load with Redis back", atLeast(200))
	close(stop)
	wg.Wait()
	t.Logf("%d calls; list errors %d; upstream max in flight with Redis down %d (workers %d)", calls.Load(), listErrs.Load(), maxDown, workers)

	if n := unlockBad.Load(); n != 0 {
		t.Errorf("%d unlocks not OK (first: %v); unlocks do not need Redis", n, firstErr.Load())
	}
	if n := listErrs.Load(); n*100 > calls.Load() {
		t.Errorf("%d ListEntries errors in %d calls (first: %v): more than 1%%", n, calls.Load(), firstErr.Load())
	}
	if maxDown > workers {
		t.Errorf("upstream served %d requests at once with Redis down, more than the %d callers", maxDown, workers)
	}
	// Every OK the clients saw is one door opening, and nothing else opened.
	doors := map[string]int{}
	for _, u := range st.sim.Unlocks() {
		doors[u.Email+"/"+strconv.Itoa(u.EntryID)]++
	}
	if fmt.Sprint(doors) != fmt.Sprint(opened) {
		t.Errorf("simulator opened %v, clients saw OK for %v", doors, opened)
	}
	// Redis came back empty: the audit stream holds (at least) every
	// attempt made since the kill, queued while Redis was down.
	rdb := st.redis.Client()
	eventually(t, "audit records of the outage written", func() bool {
		return rdb.XLen(context.Background(), "ck:v1:audit").Val() >= afterKill.Load()
	})
	// Recovered by itself: hits again, no upstream lookups.
	eventually(t, "cache hits again", func() bool {
		before := lookups(st.sim)
		for email := range users {
			for range 5 {
				if _, err := st.client.ListEntries(ctxs[email], &pb.ListEntriesRequest{}); err != nil {
					return false
				}
			}
		}
		return lookups(st.sim) == before
	})
}

// Two replicas on one Redis and one access system: a change made through
// one is seen by the other at once, though each keeps hits in memory
// for an hour; timed Protect suspensions run once.
func TestTwoReplicas(t *testing.T) {
	rs := redistest.Start(t)
	simSrv, err := sim.Start(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simSrv.Close() })
	opts := stackOpts{redis: rs, sim: simSrv, localTTL: time.Hour, notifier: &notify.Memory{}}
	a, b := newStack(t, opts), newStack(t, opts)
	const alice = "alice@example.com"
	entriesOf := func(s *stack) (ids []string, favs []string) {
		resp, err := s.client.ListEntries(s.as(t, alice), &pb.ListEntriesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.Entries {
			ids = append(ids, e.Id)
			if e.Favorite {
				favs = append(favs, e.Id)
			}
		}
		return ids, favs
	}
	// Alice's first calls reach both replicas at once: one cloud key is
	// created, not one per replica (cache/loadlock.go).
	simSrv.SetFaults(sim.Faults{OpLatency: map[sim.Op]time.Duration{sim.OpCreateCredential: 200 * time.Millisecond}})
	var wg sync.WaitGroup
	for _, s := range []*stack{a, b, a, b} {
		wg.Go(func() {
			if _, err := s.client.ListEntries(s.as(t, alice), &pb.ListEntriesRequest{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	simSrv.SetFaults(sim.Faults{})
	if n := simSrv.Calls(sim.OpCreateCredential); n != 1 {
		t.Fatalf("cloud keys created by two replicas' first calls = %d, want 1", n)
	}
	for _, s := range []*stack{a, b} { // cached in both processes
		if ids, _ := entriesOf(s); len(ids) != 3 {
			t.Fatalf("entries %v", ids)
		}
	}

	t.Run("favourite set on A is seen by B", func(t *testing.T) {
		if _, err := a.client.SetFavorite(a.as(t, alice), &pb.SetFavoriteRequest{EntryId: "102", Favorite: true}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "B shows the favourite", func() bool { _, f := entriesOf(b); return fmt.Sprint(f) == "[102]" })
	})
	t.Run("invalidation on A drops B's copy", func(t *testing.T) {
		if err := simSrv.UnassignEntry(alice, 103); err != nil {
			t.Fatal(err)
		}
		if ids, _ := entriesOf(b); len(ids) != 3 {
			t.Fatalf("B before the invalidation: %v; want its cached 3 entries", ids)
		}
		key := a.adminKey(t, "1")
		if code, body := a.do(t, "POST", "/v1/admin/cache:invalidate", []byte(`{"email":"`+alice+`"}`),
			"x-auth-scheme", "api-token", "x-auth-apikey", key); code != 200 {
			t.Fatalf("invalidate: %d %s", code, body)
		}
		eventually(t, "B reads the new entry list", func() bool { ids, _ := entriesOf(b); slices.Sort(ids); return fmt.Sprint(ids) == "[101 102]" })
	})

	t.Run("a timed suspension runs once", func(t *testing.T) {
		key := a.adminKey(t, "1")
		settings := strings.Replace(goodSettings, `"protect":{"enabled":false}`,
			`"protect":{"enabled":true,"employeeAccessDuration":"60s"}`, 1)
		if code, body := a.do(t, "PUT", "/v1/admin/locations/"+location+"/visitor-settings", []byte(settings),
			"x-auth-scheme", "api-token", "x-auth-apikey", key); code != 200 {
			t.Fatalf("settings: %d %s", code, body)
		}
		employees := map[string]string{"bob@example.com": "e1", "erin@example.com": "e2", alice: "e3"}
		for email, id := range employees {
			body := fixture(t, "employee_entry_sign_in.json", time.Now())
			body = []byte(strings.NewReplacer(`"55667788"`, `"`+id+`"`).Replace(string(body)))
			body = setEmployeeEmail(t, body, email)
			if code, resp := a.webhook(t, body); code != 200 {
				t.Fatalf("sign-in of %s: %d %s", email, code, resp)
			}
		}
		due := rs.Client().ZCard(context.Background(), "ck:v1:vis:prot:due").Val()
		if due != int64(len(employees)) {
			t.Fatalf("%d suspensions scheduled, want %d", due, len(employees))
		}
		before := simSrv.Calls(sim.OpSetUserStatus)
		// As if the access duration had passed: both replicas' schedulers
		// (every second) race for the jobs now.
		rdb := rs.Client()
		for email := range employees {
			u, _ := simSrv.User(email)
			rdb.ZAdd(context.Background(), "ck:v1:vis:prot:due", redis.Z{Score: float64(time.Now().UnixMilli()), Member: strconv.Itoa(u.ID)})
		}
		eventually(t, "every employee suspended", func() bool {
			for email := range employees {
				if u, _ := simSrv.User(email); u.Status != access.StatusSuspended {
					return false
				}
			}
			return true
		})
		eventually(t, "no job left", func() bool {
			n, _ := rdb.ZCard(context.Background(), "ck:v1:vis:prot:due").Result()
			m, _ := rdb.ZCard(context.Background(), "ck:v1:vis:prot:run").Result()
			return n == 0 && m == 0
		})
		time.Sleep(2500 * time.Millisecond) // two more ticks of both schedulers
		if n := simSrv.Calls(sim.OpSetUserStatus) - before; n != int64(len(employees)) {
			t.Errorf("%d suspensions made for %d due jobs, want exactly one each", n, len(employees))
		}
	})
}

// In-flight unlocks finish when cloudkey is told to stop (SIGTERM ends
// serve's context), health turns NOT_SERVING, and their audit records are
// in Redis once the app has closed.
func TestGracefulShutdownDrainsUnlocks(t *testing.T) {
	st := newStack(t, stackOpts{unlockCap: 10 * time.Second})
	const email = "alice@example.com"
	ctx := st.as(t, email)
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil { // resolved before the clock starts
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wctx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	watch, err := healthpb.NewHealthClient(conn).Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", r, err)
	}
	if err := st.sim.SetFaults(sim.Faults{OpLatency: map[sim.Op]time.Duration{sim.OpUnlock: 500 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}

	const grpcCalls, restCalls = 4, 2
	results := make(chan string, grpcCalls+restCalls)
	for i := range grpcCalls {
		go func() {
			entry := []string{"101", "102", "103"}[i%3]
			resp, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{entry}})
			if err != nil {
				results <- "gRPC: " + err.Error()
				return
			}
			results <- resp.Results[0].Status.String()
		}()
	}
	for range restCalls {
		go func() {
			req, _ := http.NewRequest("POST", st.http+"/v1/me/unlock", strings.NewReader(`{"entryIds":["101"]}`))
			req.Header.Set("Authorization", "Bearer "+st.token(t, email))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				results <- "REST: " + err.Error()
				return
			}
			defer resp.Body.Close()
			var out struct {
				Results []struct{ Status string } `json:"results"`
			}
			if err := jsonDecode(resp, &out); err != nil || len(out.Results) != 1 {
				results <- fmt.Sprintf("REST: %d %v", resp.StatusCode, err)
				return
			}
			results <- out.Results[0].Status
		}()
	}
	eventually(t, "every unlock in flight upstream", func() bool { return st.sim.InFlight() == grpcCalls+restCalls })

	st.stop() // what SIGTERM does to `cloudkey serve`
	r, err := watch.Recv()
	if err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("health on shutdown = %v, %v; want NOT_SERVING", r, err)
	}
	// The watcher is not stopped: shutdown ends its stream (it would
	// otherwise hold the graceful stop for the whole grace).
	// (Canceled: ended by the server; the grace's hard stop would give
	// Unavailable.)
	if _, err := watch.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("health watch after shutdown began: %v; want the stream ended by the server (Canceled)", err)
	}
	for range grpcCalls + restCalls {
		if got := <-results; got != "UNLOCK_STATUS_OK" {
			t.Errorf("in-flight unlock ended %s, want OK", got)
		}
	}
	if err := <-st.served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if n := len(st.sim.Unlocks()); n != grpcCalls+restCalls {
		t.Errorf("simulator opened %d doors, want %d", n, grpcCalls+restCalls)
	}
	// Serve returned after Close: the audit queue was flushed before Redis closed.
	msgs, err := st.redis.Client().XRange(context.Background(), "ck:v1:audit", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, m := range msgs {
		if m.Values["result"] == "OK" {
			ok++
		}
	}
	if ok != grpcCalls+restCalls {
		t.Errorf("audit stream has %d OK records, want %d", ok, grpcCalls+restCalls)
	}
}

// webhook posts a signed Envoy event.
func (s *stack) webhook(t *testing.T, body []byte) (int, string) {
	t.Helper()
	return s.do(t, "POST", "/webhooks/envoy", body, envoy.SignatureHeader, envoy.Sign(body, []byte(testEnvoySecret)))
}

// setEmployeeEmail replaces the employee of the sign-in fixture.
func setEmployeeEmail(t *testing.T, body []byte, email string) []byte {
	t.Helper()
	out := strings.Replace(string(body), `"email": "Erin@Example.com"`, `"email": "`+email+`"`, 1)
	if out == string(body) {
		t.Fatal("the fixture's employee email was not found")
	}
	return []byte(out)
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// A whole cloudkey on a real three-master Redis Cluster: resident calls,
// the audit stream and its admin reader, invalidation of everything,
// visitor settings and webhooks (transactions in one slot) work as on a
// single server.
func TestOnRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t)
	st := newStack(t, stackOpts{redisURL: cluster.URL(), notifier: &notify.Memory{}})
	rdb := cluster.Client()
	key, _, err := adminkey.NewStore(rdb, cache.DefaultPrefix).Create(context.Background(), "1", "test")
	if err != nil {
		t.Fatal(err)
	}
	admin := []string{"x-auth-scheme", "api-token", "x-auth-apikey", key}
	for _, email := range []string{"alice@example.com", "erin@example.com"} {
		if resp, err := st.client.ListEntries(st.as(t, email), &pb.ListEntriesRequest{}); err != nil || len(resp.Entries) == 0 {
			t.Fatalf("ListEntries(%s) = %v, %v", email, resp, err)
		}
		if _, err := st.client.SetFavorite(st.as(t, email), &pb.SetFavoriteRequest{EntryId: "101", Favorite: true}); err != nil {
			t.Fatal(err)
		}
		resp, err := st.client.Unlock(st.as(t, email), &pb.UnlockRequest{EntryIds: []string{"101"}})
		if err != nil || resp.Results[0].Status != pb.UnlockStatus_UNLOCK_STATUS_OK {
			t.Fatalf("Unlock(%s) = %v, %v", email, resp, err)
		}
	}
	eventually(t, "audit records readable through the admin API", func() bool {
		code, body := st.do(t, "GET", "/v1/admin/audit?user=erin@example.com", nil, admin...)
		return code == 200 && strings.Contains(body, `"entryId":"101"`)
	})
	if code, body := st.do(t, "POST", "/v1/admin/cache:invalidate", []byte(`{"all":true}`), admin...); code != 200 || !strings.Contains(body, `"invalidated":"2"`) {
		t.Errorf("invalidate all = %d %s; want both users' entries dropped", code, body)
	}
	if code, body := st.do(t, "PUT", "/v1/admin/locations/"+location+"/visitor-settings", []byte(goodSettings), admin...); code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}
	invite := fixture(t, "invite_created.json", time.Now())
	if code, body := st.webhook(t, invite); code != 200 || !strings.Contains(body, `"action":"ISSUED"`) {
		t.Errorf("webhook on the cluster = %d %s", code, body)
	}
	if h := st.health(t); h != "ok" {
		t.Errorf("health = %q", h)
	}
}

// A Redis that hangs (stopped, or cut off) answers nothing: without the
// breaker in front of it every cache command waited its 250 ms out, and
// a cold call made about six (1.5 s more per tap). Once the breaker
// opens, calls answer from the access system within a 1 s deadline; when
// Redis answers again, cloudkey goes back to it by itself.
func TestHungRedisIsSkipped(t *testing.T) {
	st := newStack(t, stackOpts{})
	st.redis.Server.Pause()
	t.Cleanup(func() { st.redis.Server.Resume() })

	quick := func(who string) error {
		ctx, cancel := context.WithTimeout(st.as(t, who), time.Second)
		defer cancel()
		if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
			return err
		}
		r, err := st.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{"101"}})
		if err == nil && r.Results[0].Status != pb.UnlockStatus_UNLOCK_STATUS_OK {
			return fmt.Errorf("unlock: %v", r.Results[0])
		}
		return err
	}
	// The first calls wait for Redis and open the breaker; the deadline
	// may cut them short.
	ok := 0
	for try := 0; ok < 3; try++ {
		if try == 10 {
			t.Fatalf("with Redis hung, no run of 3 calls answered within 1 s each (last: %v)", quick("erin@example.com"))
		}
		if err := quick("erin@example.com"); err != nil {
			ok = 0
			continue
		}
		ok++
	}
	// What was loaded is kept in memory while Redis is away (for a few
	// seconds): the next calls make no upstream lookups.
	before := lookups(st.sim)
	for range 3 {
		if err := quick("erin@example.com"); err != nil {
			t.Fatalf("with Redis hung and erin loaded: %v", err)
		}
	}
	if n := lookups(st.sim) - before; n != 0 {
		t.Errorf("%d upstream lookups for calls after erin was loaded with Redis hung, want 0", n)
	}
	if h := st.health(t); h != "degraded" {
		t.Errorf("health with Redis hung = %q, want degraded", h)
	}

	st.redis.Server.Resume()
	eventually(t, "health ok with Redis answering", func() bool { return st.health(t) == "ok" })
	eventually(t, "cache hits again", func() bool {
		before := lookups(st.sim)
		for range 3 {
			if err := quick("erin@example.com"); err != nil {
				return false
			}
		}
		return lookups(st.sim) == before
	})
}
