package setup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// portfolioPasswordEnv is where the test properties files' connections
// read the simulators' service-account password from.
const portfolioPasswordEnv = "CLOUDKEY_TEST_PORTFOLIO_PASSWORD"

// startSims starts one simulator per seed, closed when the test ends.
func startSims(t *testing.T, seeds []sim.Seed) []*sim.Server {
	t.Helper()
	sims := make([]*sim.Server, len(seeds))
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, s := range sims {
			if s != nil {
				wg.Add(1)
				go func() { defer wg.Done(); s.Close() }()
			}
		}
		wg.Wait()
	})
	for k, seed := range seeds {
		s, err := sim.Start(seed)
		if err != nil {
			t.Fatal(err)
		}
		sims[k] = s
	}
	return sims
}

// writePortfolio writes a properties file naming one property per
// simulator, p0000 ..., each with one Openpath connection to it.
func writePortfolio(t *testing.T, sims []*sim.Server) string {
	t.Helper()
	t.Setenv(portfolioPasswordEnv, sim.DemoServicePassword)
	var b strings.Builder
	b.WriteString("properties:\n")
	for k, s := range sims {
		fmt.Fprintf(&b, "  - id: p%04d\n    access:\n      - system: openpath\n        url: %s\n        email: %s\n        password_env: %s\n",
			k, s.URL, sim.DemoServiceEmail, portfolioPasswordEnv)
	}
	path := filepath.Join(t.TempDir(), "properties.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// simCalls is every request the simulators answered.
func simCalls(sims []*sim.Server) int64 {
	var n int64
	for _, s := range sims {
		for _, op := range sim.Ops() {
			n += s.Calls(op)
		}
	}
	return n
}

// heapInuse is the live heap after a full collection.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// started is what startPortfolio measured.
type started struct {
	app *App
	// start is setup.Start's time; serving adds the wait until the HTTP
	// listener answers /healthz after Serve begins.
	start, serving time.Duration
	// heap is the live heap Start added; goroutines, the goroutines.
	heap       int64
	goroutines int
}

// startPortfolio starts cloudkey on a properties file naming one property
// per simulator and serves it until the test ends.
func startPortfolio(t *testing.T, redisURL string, sims []*sim.Server) started {
	t.Helper()
	file := writePortfolio(t, sims)
	heap0, g0 := heapInuse(), runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	t0 := time.Now()
	app, err := Start(ctx, Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RedisURL: redisURL, PropertiesFile: file,
		AccountTTL: 10 * time.Minute, EntriesTTL: 10 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := started{app: app, start: time.Since(t0)}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for {
		resp, err := http.Get("http://" + app.Server.HTTPAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(t0) > 30*time.Second {
			t.Fatalf("/healthz did not answer 200 in 30 s: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	st.serving = time.Since(t0)
	st.heap, st.goroutines = int64(heapInuse())-int64(heap0), runtime.NumGoroutine()-g0
	return st
}

// A portfolio of 1,000 properties starts without a request to any of
// their access systems: clients log in at their first call (the simulators'
// counters say so, after Start and once serving). Start's time and the
// heap per property are logged (BENCHMARKS.md, issue 14), not asserted.
func TestStartWithAThousandPropertiesCallsNoAccessSystem(t *testing.T) {
	const n = 1000
	redisURL := redistest.Start(t).URL()
	one := startSims(t, []sim.Seed{sim.GenerateSeed(1, 1)})
	seeds := make([]sim.Seed, n)
	for k := range seeds {
		seeds[k] = sim.GenerateSeed(1, 1)
	}
	sims := startSims(t, seeds)

	// Its own Redis: on the same one it would follow the second start's
	// properties (they live in Redis), building them as they are measured.
	single := startPortfolio(t, redistest.Start(t).URL(), one)
	if calls := simCalls(one); calls != 0 {
		t.Errorf("one property: %d requests reached its simulator during start", calls)
	}
	st := startPortfolio(t, redisURL, sims)
	if calls := simCalls(sims); calls != 0 {
		t.Errorf("%d properties: %d requests reached their simulators during start, want none", n, calls)
	}
	if got := len(st.app.Properties); got != n || st.app.Properties[0].ID != "p0000" {
		t.Fatalf("%d properties served (first %q), want %d from p0000", got, st.app.Properties[0].ID, n)
	}
	t.Logf("start (setup.Start): 1 property %v, %d properties %v; until /healthz answers: %v and %v",
		single.start.Round(time.Millisecond), n, st.start.Round(time.Millisecond),
		single.serving.Round(time.Millisecond), st.serving.Round(time.Millisecond))
	t.Logf("heap in use added by Start: 1 property %d KiB, %d properties %d KiB: %.1f KiB per property; goroutines %d and %d",
		single.heap>>10, n, st.heap>>10, float64(st.heap-single.heap)/float64(n-1)/1024, single.goroutines, st.goroutines)
}

// The cold start of one property that 1,000 residents open at once: the
// service account logs in once, each resident is looked up once, and
// every first ListEntries answers. The time is logged (BENCHMARKS.md).
//
// Under the race detector, 200 residents: 1,000 at once on a slowed
// machine outlast the requests' deadline.
func TestColdStartOfAPropertyAThousandUsersOpenAtOnce(t *testing.T) {
	const entries = 5
	users := 1000
	if raceDetector {
		users = 200
	}
	redisURL := redistest.Start(t).URL()
	sims := startSims(t, []sim.Seed{sim.GenerateSeed(users, entries)})
	st := startPortfolio(t, redisURL, sims)
	s := sims[0]

	conns := make([]*grpc.ClientConn, 8)
	for i := range conns {
		c, err := grpc.NewClient(st.app.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	ctxs := make([]context.Context, users)
	for i := range ctxs {
		tok, err := st.app.Tokens.SignFor(sim.LoadUserEmail(i), time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctxs[i] = metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok)
	}
	// Connected before the clock starts: the phones are online.
	for _, c := range conns {
		c.Connect()
	}
	go0 := make(chan struct{})
	errs := make([]error, users)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-go0
			resp, err := pb.NewResidentServiceClient(conns[i%len(conns)]).ListEntries(ctxs[i], &pb.ListEntriesRequest{})
			if err == nil && len(resp.GetEntries()) != entries {
				err = fmt.Errorf("%d entries, want %d", len(resp.GetEntries()), entries)
			}
			errs[i] = err
		}()
	}
	t0 := time.Now()
	close(go0)
	wg.Wait()
	took := time.Since(t0)
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed++; failed <= 5 {
				t.Errorf("%s: %v", sim.LoadUserEmail(i), err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d first listings failed", failed, users)
	}
	if got := s.Calls(sim.OpLogin); got != 1 {
		t.Errorf("%d logins, want 1 (the service account's, shared by every resident)", got)
	}
	if got := s.Calls(sim.OpListUsers); got != int64(users) {
		t.Errorf("%d user lookups, want %d: one per resident", got, users)
	}
	var calls []string
	for _, op := range sim.Ops() {
		if c := s.Calls(op); c > 0 {
			calls = append(calls, fmt.Sprintf("%s %d", op, c))
		}
	}
	t.Logf("cold start: %d residents' first ListEntries, sent at once, all answered in %v; simulator calls: %s",
		users, took.Round(time.Millisecond), strings.Join(calls, ", "))
}
