package setup

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/cache"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/schedule"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/roster/pmspull"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

const pmsSecretEnv = "CLOUDKEY_TEST_BUILDIUM_SECRET"

// waitFor polls cond until it holds; the bound only stops a broken test
// from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two replicas on one Redis, with a properties file whose property has a
// pms block, pull its roster once per occurrence between them; GetProperty
// shows the block and the last pull without the secret, which no log and
// no Redis key shows either; dropping the block unschedules the pull.
func TestScheduledPullTwoReplicas(t *testing.T) {
	rs := redistest.Start(t)
	op := startSims(t, []sim.Seed{sim.DemoSeed()})[0]
	bd, err := buildiumsim.Start(buildiumsim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bd.Close() })
	t.Setenv(portfolioPasswordEnv, sim.DemoServicePassword)
	t.Setenv(pmsSecretEnv, buildiumsim.DemoClientSecret)
	file := filepath.Join(t.TempDir(), "properties.yaml")
	yaml := fmt.Sprintf(`properties:
  - id: harbor-view
    timezone: America/New_York
    access:
      - system: openpath
        url: %s
        email: %s
        password_env: %s
    pms:
      system: buildium
      url: %s
      client_id: %s
      client_secret_env: %s
      property_ids: [%d]
      every: 5m
`, op.URL, sim.DemoServiceEmail, portfolioPasswordEnv, bd.URL, buildiumsim.DemoClientID, pmsSecretEnv, buildiumsim.DemoHarborViewID)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	var apps []*App
	var stops []func()
	for range 2 {
		app, err := Start(context.Background(), Config{
			GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RedisURL: rs.URL(), PropertiesFile: file, SchedulePoll: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- app.Serve(sctx) }()
		stops = append(stops, sync.OnceFunc(func() { stop(); <-done }))
		t.Cleanup(stops[len(stops)-1])
		apps = append(apps, app)
	}
	ctx := t.Context()
	rdb := rs.Client()
	puller, err := pmspull.New(pmspull.Config{Redis: rdb, Rosters: rosterredis.New(rdb)})
	if err != nil {
		t.Fatal(err)
	}
	const job = "roster-pull:harbor-view"
	idle := func() bool { n, _ := rdb.ZCard(ctx, schedule.KeyLease).Result(); return n == 0 }
	var last time.Time
	for i := range 3 {
		if i > 0 { // the next occurrence falls due now
			if err := rdb.ZAddXX(ctx, schedule.KeyDue, redisZ(time.Now(), job)).Err(); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, fmt.Sprintf("pull %d", i+1), func() bool {
			st, ok, _ := puller.Status(ctx, "harbor-view")
			return ok && st.At.After(last) && idle()
		})
		st, _, _ := puller.Status(ctx, "harbor-view")
		if st.Result != pmspull.ResultOK || st.Full != (i == 0) {
			t.Fatalf("pull %d: %+v", i+1, st)
		}
		last = st.At
		// Every pull reads the rental properties once: two replicas
		// pulling one occurrence would read them twice.
		if n := bd.Calls(buildiumsim.OpGetAllRentals); n != int64(i+1) {
			t.Fatalf("after occurrence %d Buildium was pulled %d times", i+1, n)
		}
	}
	cur, ok, err := rosterredis.New(rdb).Current(ctx, "harbor-view")
	if err != nil || !ok || cur.Source != roster.SourceBuildium || len(cur.People) != 9 {
		t.Fatalf("roster after the pulls: %d people from %q, %v, %v", len(cur.People), cur.Source, ok, err)
	}
	if _, ok, _ := rosterredis.New(rdb).Links(ctx, "harbor-view"); !ok {
		t.Error("the pull did not reconcile")
	}

	// GetProperty's view, on each replica: the block, the last pull, no secret.
	for k, app := range apps {
		waitFor(t, "the last pull shown", func() bool {
			ps := app.registry.Properties()
			return ps[0].PMS != nil && ps[0].PMS.LastPullAt.Equal(last)
		})
		pms := app.registry.Properties()[0].PMS
		if pms.System != property.Buildium || pms.URL != bd.URL || len(pms.PropertyIDs) != 1 || pms.Every != 5*time.Minute ||
			!pms.SecretSet || pms.LastPullResult != pmspull.ResultOK || pms.NextPullAt.IsZero() {
			t.Errorf("replica %d shows %+v", k, pms)
		}
		if s := fmt.Sprintf("%+v", app.registry.Properties()); strings.Contains(s, buildiumsim.DemoClientSecret) {
			t.Errorf("replica %d's property view shows the client secret", k)
		}
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if raw, err := rdb.Dump(ctx, k).Result(); err == nil && strings.Contains(raw, buildiumsim.DemoClientSecret) {
			t.Errorf("Redis key %s holds the client secret in clear", k)
		}
	}

	// Through the admin API: GetProperty shows the block without the
	// secret; an update (which cannot carry a pms block) keeps it.
	plain, _, err := adminkey.NewStore(rdb, cache.DefaultPrefix).CreateScoped(ctx, adminkey.Scope{Portfolio: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(apps[0].Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	admin := pb.NewAdminServiceClient(conn)
	actx := metadata.AppendToOutgoingContext(ctx, "x-auth-scheme", "api-token", "x-auth-apikey", plain)
	got, err := admin.GetProperty(actx, &pb.GetPropertyRequest{PropertyId: "harbor-view"})
	if err != nil {
		t.Fatal(err)
	}
	if pms := got.GetProperty().GetPms(); pms.GetSystem() != "buildium" || !pms.GetSecretSet() || pms.GetLastPullResult() != "ok" ||
		pms.GetEvery().AsDuration() != 5*time.Minute || len(pms.GetPropertyIds()) != 1 {
		t.Errorf("GetProperty's pms block = %v", pms)
	}
	if b, _ := protojson.Marshal(got); strings.Contains(string(b), buildiumsim.DemoClientSecret) {
		t.Errorf("GetProperty shows the client secret: %s", b)
	}
	if _, err := admin.UpdateProperty(actx, &pb.UpdatePropertyRequest{PropertyId: "harbor-view", Property: &pb.PropertyInput{
		Name: "Harbor View Renamed", TimeZone: "America/New_York", Access: []*pb.ConnectionInput{{System: "openpath", Url: op.URL, Email: sim.DemoServiceEmail}},
	}}); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := propertyredis.New(rdb, secrets.Development()).Get(ctx, "harbor-view"); p.Name != "Harbor View Renamed" || p.PMS == nil || p.PMS.ClientSecret != buildiumsim.DemoClientSecret {
		t.Errorf("after an admin update: %q, pms %v", p.Name, p.PMS)
	}

	// The block dropped (as a new properties file would): unscheduled.
	p, _, err := propertyredis.New(rdb, secrets.Development()).Get(ctx, "harbor-view")
	if err != nil {
		t.Fatal(err)
	}
	p.PMS = nil
	if _, err := propertyredis.New(rdb, secrets.Development()).Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pull unscheduled", func() bool {
		_, err := rdb.ZScore(ctx, schedule.KeyDue, job).Result()
		return err != nil
	})
	for _, app := range apps {
		waitFor(t, "the pms block gone from the view", func() bool { return app.registry.Properties()[0].PMS == nil })
	}
	for _, stop := range stops {
		stop()
	}
	if strings.Contains(logs.String(), buildiumsim.DemoClientSecret) {
		t.Error("the logs show the client secret")
	}
	if !strings.Contains(logs.String(), "roster pulled") {
		t.Errorf("no pull logged:\n%s", logs.String())
	}
}

// The embedded demo pulls its properties' leases from its own Buildium
// simulator.
func TestDemoPullsFromEmbeddedBuildium(t *testing.T) {
	app, err := Start(context.Background(), Config{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", SchedulePoll: 20 * time.Millisecond, DemoPMS: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	if app.BuildiumSim == nil {
		t.Fatal("no embedded Buildium simulator")
	}
	store := rosterredis.New(app.Redis)
	for _, id := range []string{demoPropertyID, demoSecondID} {
		waitFor(t, id+"'s roster", func() bool {
			cur, ok, _ := store.Current(t.Context(), id)
			return ok && cur.Source == roster.SourceBuildium
		})
	}
}

func redisZ(at time.Time, member string) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: member}
}
