package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a strings.Builder safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSimKinds serves each kind of simulator for a moment and checks it
// answers its own API.
func TestSimKinds(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		path     string
		auth     string
		wantLogs []string
		header   map[string]string // instead of auth
	}{
		{"openpath default", nil, "/orgs/1/entries", "", []string{"openpath simulator listening", "bot@cloudkey.local"}, nil},
		{"kisi demo", []string{"--kind", "kisi"}, "/locks", "KISI-LOGIN demo-kisi-foundry-key",
			[]string{"kisi simulator listening", "demo-kisi-api-key", "demo-kisi-foundry-key", "rate_limit=5"}, nil},
		{"kisi load", []string{"--kind", "kisi", "--users", "10", "--latency", "1ms"}, "/users?email=user3@load.example.com", "KISI-LOGIN load-kisi-api-key",
			[]string{"kisi simulator listening", "users=10", "rate_limit=0"}, nil},
		{"buildium demo", []string{"--kind", "buildium"}, "/v1/leases?propertyids=5001", "",
			[]string{"buildium simulator listening", "demo-buildium-client-id", "demo-buildium-client-secret", "5001"},
			map[string]string{"x-buildium-client-id": "demo-buildium-client-id", "x-buildium-client-secret": "demo-buildium-client-secret"}},
		{"envoy demo", []string{"--kind", "envoy", "--webhook-url", "http://127.0.0.1:1/webhooks/envoy"}, "/api/v3/locations", "",
			[]string{"envoy simulator listening", "demo-envoy", "152347", "webhooks_to=http://127.0.0.1:1/webhooks/envoy"}, nil},
		{"buildium load", []string{"--kind", "buildium", "--users", "25"}, "/v1/leases/tenants?limit=5", "",
			[]string{"buildium simulator listening", "tenants=25"},
			map[string]string{"x-buildium-client-id": "demo-buildium-client-id", "x-buildium-client-secret": "demo-buildium-client-secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- simulate(ctx, append(tt.args, "--addr", addr), log) }()
			want := 200
			if tt.auth == "" && tt.header == nil {
				want = 401 // Openpath: no token
			}
			got := 0
			for range 200 {
				req, _ := http.NewRequest("GET", "http://"+addr+tt.path, nil)
				if tt.auth != "" {
					req.Header.Set("Authorization", tt.auth)
				}
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
					got = resp.StatusCode
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("simulate: %v", err)
			}
			if got != want {
				t.Errorf("GET %s: %d, want %d", tt.path, got, want)
			}
			for _, w := range tt.wantLogs {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("logs lack %q:\n%s", w, logs.String())
				}
			}
		})
	}
}

func TestSimFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--kind", "nope"}, "--kind must be openpath, kisi, buildium or envoy"},
		{[]string{"--kind", "envoy", "--users", "3"}, "--users is not for --kind envoy"},
		{[]string{"--kind", "envoy", "--webhook-secret", ""}, "--webhook-secret must not be empty"},
		{[]string{"--kind", "buildium", "--seed", "x.json"}, "--seed is not for --kind buildium"},
		{[]string{"--kind", "kisi", "--seed", "x.json"}, "--seed is for --kind openpath"},
		{[]string{"--kind", "kisi", "--token-ttl", "1m"}, "--token-ttl is for --kind openpath"},
		{[]string{"--rate-limit", "3"}, "--rate-limit is for --kind kisi"},
		{[]string{"--kind", "kisi", "--rate-limit", "-1"}, "must not be negative"},
		{[]string{"--kind", "kisi", "--error-rate", "2"}, "error rate"},
		{[]string{"--users", "-1"}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := simulate(t.Context(), append(tt.args, "--addr", "127.0.0.1:0"), slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("simulate = %v, want %q", err, tt.want)
			}
		})
	}
}
