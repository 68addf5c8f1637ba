package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

// rosterWorld is harbor-view stored in a real Redis as serve stores it,
// on the demo Openpath and Kisi simulators, for the roster commands.
type rosterWorld struct {
	redis *redistest.Server
	op    *sim.Server
	kisi  *kisisim.Server
}

func newRosterWorld(t *testing.T) *rosterWorld {
	t.Helper()
	t.Setenv("CLOUDKEY_SECRETS_KEY", "")
	w := &rosterWorld{redis: redistest.Start(t)}
	var err error
	if w.op, err = sim.Start(sim.DemoSeed()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.op.Close() })
	seed := kisisim.DemoSeed()
	seed.RateLimit = &kisisim.RateLimit{}
	if w.kisi, err = kisisim.Start(seed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.kisi.Close() })
	hv := property.Property{ID: "harbor-view", Name: "Harbor View", TimeZone: "America/New_York", Access: []property.Connection{
		{System: property.Openpath, Name: property.Openpath, URL: w.op.URL, Email: sim.DemoServiceEmail, Secret: sim.DemoServicePassword},
		{System: property.Kisi, Name: property.Kisi, URL: w.kisi.URL, Secret: kisisim.DemoHarborAPIKey},
	}}
	if err := propertyredis.New(w.redis.Client(), secrets.Development()).Create(context.Background(), hv); err != nil {
		t.Fatal(err)
	}
	return w
}

// file writes a roster CSV and returns its path.
func (w *rosterWorld) file(t *testing.T, csv string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs `cloudkey roster ARGS --redis-url …` and returns its output.
func (w *rosterWorld) run(args ...string) (string, error) {
	var out bytes.Buffer
	err := rosterCmd(context.Background(), append(args, "--redis-url", w.redis.URL()), &out)
	return out.String(), err
}
