package setup

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
)

// A property's envoy block serves its locations only: the visitor
// service finds the connection there (and its state), not at another
// location nor at another property; the client secret is sealed in Redis
// and in no log line.
func TestEnvoyConnectionFromPropertiesFile(t *testing.T) {
	rs := redistest.Start(t)
	sims := startSims(t, []sim.Seed{sim.GenerateSeed(1, 1), sim.GenerateSeed(1, 1)})
	es, err := envoysim.Start(envoysim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	file := writePortfolio(t, sims)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_ENVOY_SECRET", envoysim.DemoClientSecret)
	// The envoy block goes under the first property (p0000), before p0001.
	withEnvoy := strings.Replace(string(b), "  - id: p0001", "    envoy:\n      url: "+es.URL+"\n      client_id: "+envoysim.DemoClientID+
		"\n      client_secret_env: TEST_ENVOY_SECRET\n      locations: [\""+envoysim.DemoLocationID+"\"]\n  - id: p0001", 1)
	path := filepath.Join(t.TempDir(), "with-envoy.yaml")
	if err := os.WriteFile(path, []byte(withEnvoy), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	app, err := Start(context.Background(), Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RedisURL: rs.URL(), PropertiesFile: path,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()

	tests := []struct {
		property, location string
		connected          bool
	}{
		{"p0000", envoysim.DemoLocationID, true},
		{"p0000", "999", false},
		{"p0001", envoysim.DemoLocationID, false},
	}
	for _, tc := range tests {
		st, ok := app.Visitors.EnvoyState(tc.property, tc.location)
		if ok != tc.connected || st.AuthError || st.LastError != "" {
			t.Errorf("%s at %s: state %+v, connected %v; want connected %v", tc.property, tc.location, st, ok, tc.connected)
		}
	}
	raw, err := rs.Client().HGet(t.Context(), propertyredis.KeyAll, "p0000").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(raw, `"envoy":{`) || strings.Contains(raw, envoysim.DemoClientSecret) {
		t.Errorf("stored record: %s", raw)
	}
	if strings.Contains(logs.String(), envoysim.DemoClientSecret) {
		t.Error("the log shows the Envoy client secret")
	}
}
