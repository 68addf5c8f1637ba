package loadtest

import (
	"io"
	"strings"
	"testing"
)

func noEnv(string) string { return "" }

func TestParseFlagsRefusesBadInputNamingTheFlag(t *testing.T) {
	tests := []struct {
		args []string
		flag string // the error must name it
	}{
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--rate", "-5"}, "--rate"},
		{[]string{"--rate", "NaN"}, "--rate"},
		{[]string{"--rate", "abc"}, "-rate"}, // the flag package's own message
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--duration", "-1s"}, "--duration"},
		{[]string{"--requests", "-1"}, "--requests"},
		{[]string{"--rounds", "0"}, "--rounds"},
		{[]string{"--rounds", "200", "--duration", "10s"}, "--rounds"},
		{[]string{"--concurrency", "-2"}, "--concurrency"},
		{[]string{"--conns", "0"}, "--conns"},
		{[]string{"--unlock-entries", "0"}, "--unlock-entries"},
		{[]string{"--unlock-entries", "51"}, "--unlock-entries"},
		{[]string{"--scenario", "unlock-multi", "--unlock-entries", "6", "--entries-per-user", "5"}, "--unlock-entries"},
		{[]string{"--timeout", "0s"}, "--timeout"},
		{[]string{"--warmup", "-1s"}, "--warmup"},
		{[]string{"--max-inflight", "0"}, "--max-inflight"},
		{[]string{"--workers", "-1"}, "--workers"},
		{[]string{"--users", "0"}, "--users"},
		{[]string{"--entries-per-user", "0"}, "--entries-per-user"},
		{[]string{"--users-from", "everyone"}, "--users-from"},
		{[]string{"--scenario", "lst"}, "--scenario"},
		{[]string{"--scenario", "list,bogus"}, "--scenario"},
		{[]string{"--scenario", ","}, "--scenario"},
		{[]string{"--scenario", "list:carrier-pigeon"}, "--scenario"},
		{[]string{"--scenario", "noop:rest"}, "--scenario"},
		{[]string{"--scenario", "noop-http:rest"}, "--scenario"},
		{[]string{"--transport", "quic"}, "--transport"},
		{[]string{"--plot", "chart.gif"}, "--plot"},
		{[]string{"--grpc-addr", "10.1.2.3:9090"}, "--grpc-addr"},
		{[]string{"--grpc-addr", "example.com:9090"}, "--grpc-addr"},
		{[]string{"--grpc-addr", "127.0.0.1"}, "--grpc-addr"},
		{[]string{"--http-addr", "192.168.1.1:8080", "--scenario", "list:rest"}, "--http-addr"},
		{[]string{"--http-addr", "127.0.0.1:8080", "--scenario", "list"}, "--grpc-addr"}, // gRPC scenario, no gRPC address
		{[]string{"--grpc-addr", "127.0.0.1:9090", "--scenario", "list:rest"}, "--http-addr"},
		{[]string{"--self", "--grpc-addr", "127.0.0.1:9090"}, "--self"},
		{[]string{"--redis-url", "redis://10.0.0.7:6379/0"}, "--redis-url"},
		{[]string{"--grpc-addr", "127.0.0.1:9090", "--sim-latency", "20ms"}, "--sim-latency"},
		{[]string{"--grpc-addr", "127.0.0.1:9090", "--access-url", "http://127.0.0.1:8181"}, "--access-url"},
		{[]string{"--access-url", "http://10.0.0.8:8181"}, "--access-url"},
		{[]string{"--access-url", "http://127.0.0.1:8181", "--sim-latency", "20ms"}, "--sim-latency"},
		{[]string{"--token-secret", "short", "--grpc-addr", "127.0.0.1:9090"}, ""}, // checked when the run starts; see below
		{[]string{"--serve-baseline", "0.0.0.0:9099"}, "--serve-baseline"},
		{[]string{"--serve-noop-upstream", "0.0.0.0:9098"}, "--serve-noop-upstream"},
		{[]string{"--noop-upstream", "http://10.0.0.9:9098/unlock"}, "--noop-upstream"},
		{[]string{"--noop-upstream", "http://127.0.0.1:9098/unlock", "--baseline-addr", "127.0.0.1:9099"}, "--noop-upstream"},
		{[]string{"list"}, "unexpected argument"},
		{[]string{"--scenario", "unlock-cross", "--prewarm=false"}, "--prewarm"},
		{[]string{"--scenario", "unlock-multi,unlock-cross:rest", "--prewarm=false"}, "--prewarm"},
		{[]string{"--scenario", "unlock-cross", "--users-from", "demo"}, "--users-from"},
		{[]string{"--scenario", "unlock-cross", "--access-url", "http://127.0.0.1:8181"}, "--access-url"},
		{[]string{"--properties", "0"}, "--properties"},
		{[]string{"--properties", "-3"}, "--properties"},
		{[]string{"--properties", "10001", "--users", "20000"}, "--properties"},
		{[]string{"--properties", "11", "--users", "10"}, "--users"},
		{[]string{"--properties", "2", "--users-from", "demo"}, "--users-from"},
		{[]string{"--properties", "2", "--access-url", "http://127.0.0.1:8181"}, "--access-url"},
		{[]string{"--properties", "2", "--scenario", "list,unlock-cross"}, "unlock-cross"},
		{[]string{"--properties", "2", "--prewarm=false"}, "--prewarm"},
		{[]string{"--properties", "2", "--grpc-addr", "127.0.0.1:9090"}, "--self"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := ParseFlags(tt.args, noEnv, io.Discard)
			if tt.flag == "" {
				return
			}
			if err == nil {
				t.Fatalf("ParseFlags(%q) accepted it", tt.args)
			}
			if !strings.Contains(err.Error(), tt.flag) {
				t.Errorf("ParseFlags(%q) = %q, want it to name %s", tt.args, err, tt.flag)
			}
		})
	}
}

func TestParseFlagsDefaultsAndForms(t *testing.T) {
	c, err := ParseFlags(nil, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Self || c.ClosedLoop() || c.Rate != 1000 || c.Users != 10_000 || c.EntriesPerUser != 5 ||
		c.UnlockEntries != 5 || c.Conns != 4 || len(c.Scenarios) != 1 || c.Scenarios[0] != (Scenario{KindList, GRPC}) {
		t.Errorf("defaults: %+v", c)
	}

	c, err = ParseFlags([]string{"--grpc-addr", "127.0.0.1:9090", "--http-addr", "localhost:8080",
		"--scenario", "list, unlock:rest,me,list:grpc,noop", "--transport", "rest", "--concurrency", "8"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Self {
		t.Error("an address was given, yet --self is on")
	}
	want := []Scenario{{KindList, REST}, {KindUnlock, REST}, {KindMe, REST}, {KindList, GRPC}, {KindNoop, GRPC}}
	if len(c.Scenarios) != len(want) {
		t.Fatalf("scenarios = %v, want %v", c.Scenarios, want)
	}
	for i := range want {
		if c.Scenarios[i] != want[i] {
			t.Errorf("scenario %d = %v, want %v", i, c.Scenarios[i], want[i])
		}
	}
	if !c.ClosedLoop() {
		t.Error("--concurrency 8 is not closed loop")
	}

	env := func(k string) string {
		return map[string]string{"CLOUDKEY_REDIS_URL": "redis://127.0.0.1:6390/0"}[k]
	}
	if c, err = ParseFlags(nil, env, io.Discard); err != nil || c.RedisURL != "redis://127.0.0.1:6390/0" {
		t.Errorf("CLOUDKEY_REDIS_URL: %q, %v", c.RedisURL, err)
	}
	// Noop alone needs no cloudkey, so no address either.
	if _, err := ParseFlags([]string{"--scenario", "noop", "--self=false"}, noEnv, io.Discard); err != nil {
		t.Errorf("noop alone: %v", err)
	}
}

func TestShortTokenSecretFailsBeforeLoad(t *testing.T) {
	cfg, err := ParseFlags([]string{"--token-secret", "short", "--grpc-addr", "127.0.0.1:1", "--prewarm=false"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--token-secret") {
		t.Errorf("Run with a 5-byte secret = %v, want an error naming --token-secret", err)
	}
}

// unlock-cross's rules: it needs the prewarm (it learns the entry ids
// there), the generated users and the in-process simulators.
func TestValidateUnlockCross(t *testing.T) {
	base := Defaults()
	tests := []struct {
		name   string
		change func(*Config)
		want   string // "" accepted; else a part of the error
	}{
		{"defaults", func(*Config) {}, ""},
		{"with unlock-multi of two", func(c *Config) {
			c.Scenarios = append([]Scenario{{KindUnlockMulti, GRPC}}, c.Scenarios...)
			c.UnlockEntries = 2
		}, ""},
		{"over REST", func(c *Config) { c.Scenarios[0].Transport = REST }, ""},
		{"one entry per user", func(c *Config) { c.EntriesPerUser = 1 }, ""},
		{"more unlock entries than entries without unlock-multi", func(c *Config) { c.EntriesPerUser, c.UnlockEntries = 1, 2 }, ""},
		{"an external cloudkey", func(c *Config) { c.Self, c.GRPCAddr = false, "127.0.0.1:9090" }, ""},
		{"no prewarm", func(c *Config) { c.Prewarm = false }, "--prewarm=false"},
		{"no prewarm over REST", func(c *Config) { c.Prewarm, c.Scenarios[0].Transport = false, REST }, "--prewarm=false"},
		{"demo users", func(c *Config) { c.UsersFrom = UsersDemo }, "--users-from demo"},
		{"a simulator apart", func(c *Config) { c.AccessURL = "http://127.0.0.1:8181" }, "--access-url"},
		{"no prewarm without unlock-cross", func(c *Config) { c.Prewarm, c.Scenarios[0].Kind = false, KindUnlockMulti }, ""},
		{"a simulator apart without unlock-cross", func(c *Config) { c.AccessURL, c.Scenarios[0].Kind = "http://127.0.0.1:8181", KindUnlock }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Scenarios = []Scenario{{KindUnlockCross, GRPC}}
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want it accepted", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestParseScenariosUnlockCross(t *testing.T) {
	got, err := ParseScenarios("unlock-multi,unlock-cross,unlock-cross:rest", GRPC)
	if err != nil {
		t.Fatal(err)
	}
	want := []Scenario{{KindUnlockMulti, GRPC}, {KindUnlockCross, GRPC}, {KindUnlockCross, REST}}
	if len(got) != len(want) {
		t.Fatalf("scenarios = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("scenario %d = %v, want %v", i, got[i], want[i])
		}
	}
	var help strings.Builder
	if _, err := ParseFlags([]string{"-h"}, noEnv, &help); err == nil {
		t.Fatal("-h: no error")
	}
	if !strings.Contains(help.String(), "unlock-cross") {
		t.Errorf("the help does not mention unlock-cross:\n%s", help.String())
	}
}
