package setup

import (
	"flag"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/ratelimit"
)

// parse runs Flags on args with env as the environment.
func parse(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config := Flags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return config()
}

func TestFlagsDefaults(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:9090" || c.HTTPAddr != "127.0.0.1:8080" || c.RedisURL != "" {
		t.Errorf("addresses %q %q %q", c.GRPCAddr, c.HTTPAddr, c.RedisURL)
	}
	if c.UnlockTimeout != 3*time.Second || c.AccountTTL != 30*time.Second || c.EntriesTTL != time.Minute ||
		c.LocalTTL != 30*time.Second || c.AccessBreakerOpen != 5*time.Second || c.AccessMaxInFlight != 256 {
		t.Errorf("durations %+v", c)
	}
	if c.CacheMemory != 64<<20 {
		t.Errorf("cache memory %d, want 64MiB", c.CacheMemory)
	}
	if c.RateLimits != ratelimit.Defaults() {
		t.Errorf("rate limits %+v, want %+v", c.RateLimits, ratelimit.Defaults())
	}
	if c.SMTP.From != "cloudkey <noreply@localhost>" || c.AuditSpool != "" || c.TrustedProxies != nil || c.CORSOrigins != nil {
		t.Errorf("%+v", c)
	}
	if c.GRPCConns.Max != 0 || c.HTTPConns.PerAddr != 0 {
		t.Errorf("conns %+v %+v, want 0: derived", c.GRPCConns, c.HTTPConns)
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"64MiB", 64 << 20, true},
		{"512MB", 512e6, true},
		{" 1 GiB ", 1 << 30, true},
		{"2KB", 2000, true},
		{"4096", 4096, true},
		{"100B", 100, true},
		{"", 0, false},
		{"64M", 0, false},
		{"-1MiB", 0, false},
		{"lots", 0, false},
		{"9999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestFlagsCacheMemory(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want int64
		err  string
	}{
		{"env", map[string]string{"CLOUDKEY_CACHE_MEMORY": "128MiB"}, nil, 128 << 20, ""},
		{"flag over env", map[string]string{"CLOUDKEY_CACHE_MEMORY": "128MiB"}, []string{"--cache-memory", "1GiB"}, 1 << 30, ""},
		{"too small", nil, []string{"--cache-memory", "1000"}, 0, "--cache-memory: want at least 1MiB"},
		{"not a size", nil, []string{"--cache-memory", "big"}, 0, "--cache-memory: want a size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parse(t, tt.env, tt.args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || c.CacheMemory != tt.want {
				t.Fatalf("CacheMemory = %d, %v; want %d", c.CacheMemory, err, tt.want)
			}
		})
	}
}

func TestFlagsEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"CLOUDKEY_GRPC_ADDR": "127.0.0.1:1", "CLOUDKEY_RATE_LIMIT_IP": "off", "CLOUDKEY_GRPC_MAX_CONNS": "7",
		"CLOUDKEY_REDIS_URL": "redis://127.0.0.1:6379", "CLOUDKEY_CORS_ORIGINS": "https://a.example, https://b.example",
		"CLOUDKEY_OTLP_ENDPOINT": "http://localhost:4317",
	}
	c, err := parse(t, env, "--grpc-addr", "127.0.0.1:2", "--trusted-proxies", "10.0.0.0/8,192.168.1.1")
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:2" {
		t.Errorf("the flag does not win over the env: %q", c.GRPCAddr)
	}
	if c.RateLimits.UnlockIP != (ratelimit.Limit{}) || c.RateLimits.UnlockUser != ratelimit.Defaults().UnlockUser {
		t.Errorf("rate limits %+v", c.RateLimits)
	}
	if c.GRPCConns.Max != 7 || c.Tracing.Endpoint != "http://localhost:4317" {
		t.Errorf("%+v", c)
	}
	if strings.Join(c.CORSOrigins, " ") != "https://a.example https://b.example" {
		t.Errorf("cors %q", c.CORSOrigins)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "192.168.1.1/32" {
		t.Errorf("proxies %v", c.TrustedProxies)
	}
	if filepath.Base(c.AuditSpool) != "audit.spool" {
		t.Errorf("spool %q, want the user cache dir's with an external Redis", c.AuditSpool)
	}
}

func TestFlagsErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--unlock-timeout", "0"}, "--unlock-timeout must be positive, got 0s"},
		{[]string{"--entries-ttl", "-1s"}, "--entries-ttl must be positive, got -1s"},
		{[]string{"--rate-limit-guest-ip", "x"}, "--rate-limit-guest-ip: "},
		{[]string{"--trusted-proxies", "nope"}, `--trusted-proxies: "nope" is not a CIDR or an address`},
		{[]string{"--http-max-conns-per-ip", "many"}, `--http-max-conns-per-ip: want a number of connections, got "many"`},
	} {
		_, err := parse(t, nil, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}

// Every setting has one field, and Env only on string settings.
func TestSettingsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings() {
		n := 0
		for _, set := range []bool{s.Str != nil, s.Dur != nil, s.Int != nil, s.Parse != nil} {
			if set {
				n++
			}
		}
		if n != 1 || seen[s.name()] || (s.Positive && s.Dur == nil) || (s.Flag == "" && s.Env == "") ||
			(s.Secret && s.Str == nil && s.Parse == nil) {
			t.Errorf("%s: %d fields, seen %v, positive %v, secret %v", s.name(), n, seen[s.name()], s.Positive, s.Secret)
		}
		seen[s.name()] = true
	}
}

// Secret settings take their environment value without showing it in the
// help; CLOUDKEY_SECRETS_KEY has no flag at all.
func TestFlagsSecrets(t *testing.T) {
	env := map[string]string{
		"CLOUDKEY_SECRETS_KEY": "k1:c2VjcmV0cy1rZXktbWF0ZXJpYWwtMzItYnl0ZXMhISE=", "CLOUDKEY_TOKEN_SECRET": "token-secret-value",
		"CLOUDKEY_ACCESS_PASSWORD": "access-password-value", "CLOUDKEY_SMTP_PASSWORD": "smtp-password-value",
		"CLOUDKEY_ENVOY_SECRET": "envoy-secret-value",
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var help strings.Builder
	fs.SetOutput(&help)
	config := Flags(fs, func(k string) string { return env[k] })
	if err := fs.Parse([]string{"--envoy-secret", "from-the-flag"}); err != nil {
		t.Fatal(err)
	}
	c, err := config()
	if err != nil {
		t.Fatal(err)
	}
	if c.SecretsKey != env["CLOUDKEY_SECRETS_KEY"] || c.TokenSecret != "token-secret-value" ||
		c.AccessPassword != "access-password-value" || c.SMTP.Password != "smtp-password-value" {
		t.Errorf("secrets from the environment: %q %q %q %q", c.SecretsKey, c.TokenSecret, c.AccessPassword, c.SMTP.Password)
	}
	if c.EnvoySecret != "from-the-flag" {
		t.Errorf("the flag does not win over the env: %q", c.EnvoySecret)
	}
	fs.Usage()
	out := help.String()
	for _, v := range env {
		if strings.Contains(out, v) || strings.Contains(out, "-value") || strings.Contains(out, "c2Vj") {
			t.Errorf("the help shows %q:\n%s", v, out)
		}
	}
	if !strings.Contains(out, "Environment only:\n  CLOUDKEY_SECRETS_KEY\n") || !strings.Contains(out, "-token-secret") {
		t.Errorf("help:\n%s", out)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if strings.Contains(f.Name, "secrets") {
			t.Errorf("flag %s: CLOUDKEY_SECRETS_KEY is environment only", f.Name)
		}
	})
}

func TestSecretsKeyring(t *testing.T) {
	const key = "c2VjcmV0cy1rZXktbWF0ZXJpYWwtMzItYnl0ZXMhISE=" // 32 bytes
	for _, tt := range []struct {
		spec, primary, warn, err string
	}{
		{"", "dev", "CLOUDKEY_SECRETS_KEY is not set: secrets are encrypted with the development key; set it in production", ""},
		{"k2:" + key + ",dev:Y2xvdWRrZXktZGV2ZWxvcG1lbnQtc2VjcmV0cy1rZXk=", "k2", "", ""},
		{"dev:Y2xvdWRrZXktZGV2ZWxvcG1lbnQtc2VjcmV0cy1rZXk=", "dev", "the public development key", ""},
		{"k1:" + key[:20], "", "", `CLOUDKEY_SECRETS_KEY: secrets: entry 1 (id "k1"): the key is`},
	} {
		var logs strings.Builder
		log := slog.New(slog.NewTextHandler(&logs, nil))
		keys, err := secretsKeyring(Config{SecretsKey: tt.spec}, log)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), key[:20]) {
				t.Errorf("%q: %v, want %q", tt.spec, err, tt.err)
			}
			continue
		case err != nil:
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		if keys.Primary() != tt.primary || (tt.warn == "") != (logs.Len() == 0) || !strings.Contains(logs.String(), tt.warn) {
			t.Errorf("%q: primary %q, logged %q; want %q, %q", tt.spec, keys.Primary(), logs.String(), tt.primary, tt.warn)
		}
		if strings.Contains(logs.String(), key[:10]) {
			t.Errorf("the log shows the key: %s", logs.String())
		}
	}
}
