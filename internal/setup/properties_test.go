package setup

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startOnce starts cloudkey on file and redisURL, closes it, and returns
// its log.
func startOnce(t *testing.T, redisURL, file string) string {
	t.Helper()
	var logs lockedBuffer
	app, err := Start(context.Background(), Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RedisURL: redisURL, PropertiesFile: file,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	app.Close()
	return logs.String()
}

// The properties file is applied idempotently: what it names is created,
// then left alone while it does not change (the version stays), then
// updated to match it, its secrets included; a property added through
// the API stays.
func TestApplyPropertiesFile(t *testing.T) {
	rs := redistest.Start(t)
	sims := startSims(t, []sim.Seed{sim.GenerateSeed(1, 1), sim.GenerateSeed(1, 1)})
	file := writePortfolio(t, sims)
	store := propertyredis.New(rs.Client(), secrets.Development())
	version := func() int64 {
		v, err := store.Version(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	if logs := startOnce(t, rs.URL(), file); !strings.Contains(logs, "created=\"[p0000 p0001]\"") {
		t.Errorf("first start: the log does not say both were created:\n%s", logs)
	}
	v1 := version()
	api := property.Property{ID: "from-api", Access: []property.Connection{{System: property.Kisi, Name: "kisi", URL: "https://api.kisi.io", Secret: "k"}}}
	if err := store.Create(t.Context(), api); err != nil {
		t.Fatal(err)
	}
	v2 := version()
	if v2 == v1 {
		t.Fatal("Create did not move the version")
	}
	if logs := startOnce(t, rs.URL(), file); !strings.Contains(logs, "created=[] updated=[] unchanged=2") {
		t.Errorf("second start: the log does not say nothing changed:\n%s", logs)
	}
	if v := version(); v != v2 {
		t.Errorf("a second start with the same file moved the version from %d to %d", v2, v)
	}

	// A new password in the environment is a change.
	t.Setenv(portfolioPasswordEnv, "another-password")
	if logs := startOnce(t, rs.URL(), file); !strings.Contains(logs, "updated=\"[p0000 p0001]\"") {
		t.Errorf("third start: the log does not say both were updated:\n%s", logs)
	}
	p, ok, err := store.Get(t.Context(), "p0001")
	if err != nil || !ok || p.Access[0].Secret != "another-password" || p.Default {
		t.Errorf("p0001 after the update: %+v, %v, %v", p, ok, err)
	}
	if p, _, _ := store.Get(t.Context(), "p0000"); !p.Default {
		t.Error("p0000, the file's first, is not the default")
	}
	if _, ok, _ := store.Get(t.Context(), "from-api"); !ok {
		t.Error("the property added through the API is gone")
	}
	_ = os.Remove(file)
}

// A replica follows a change made in Redis by another (here the store
// itself) without a restart, whether or not its PUBLISH arrives: the
// version is polled too.
func TestReplicaFollowsChangesWithoutPubSub(t *testing.T) {
	rs := redistest.Start(t)
	sims := startSims(t, []sim.Seed{sim.GenerateSeed(1, 1), sim.GenerateSeed(1, 1)})
	st := startPortfolio(t, rs.URL(), sims[:1])
	store := propertyredis.New(rs.Client(), secrets.Development())
	added := property.Property{ID: "added", Access: []property.Connection{{System: property.Openpath, Name: "openpath",
		URL: sims[1].URL, Email: sim.DemoServiceEmail, Secret: sim.DemoServicePassword}}}
	// Written as Put does, without its PUBLISH: only the poll sees it.
	raw, err := propertyredis.New(rs.Client(), secrets.Development()).Seal(added)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Client().HSet(t.Context(), propertyredis.KeyAll, "added", raw).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rs.Client().Incr(t.Context(), propertyredis.KeyVersion).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !st.app.registry.portfolio.Has("added") {
		if time.Now().After(deadline) {
			t.Fatal("the property added without a PUBLISH is not served")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := st.app.ServedProperties(); len(got) != 2 || got[1].ID != "added" {
		t.Errorf("ServedProperties = %+v", got)
	}
	if _, err := store.Remove(t.Context(), "added"); err != nil {
		t.Fatal(err)
	}
	for st.app.registry.portfolio.Has("added") {
		if time.Now().After(deadline) {
			t.Fatal("the removed property is still served")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
