package loadtest

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// TestNoopHTTPReachesItsUpstream checks that NoopHTTP fails when its
// HTTP call does: the floor it measures includes a real exchange.
func TestNoopHTTPReachesItsUpstream(t *testing.T) {
	b, noopHTTP := startBaseline(t, "")
	if err := noopHTTP(); err != nil {
		t.Fatalf("NoopHTTP: %v", err)
	}
	_ = b.upstream.Close() // the upstream goes away
	b.client.CloseIdleConnections()
	if err := noopHTTP(); status.Code(err) != codes.Unavailable {
		t.Fatalf("NoopHTTP without its upstream: %v, want Unavailable", err)
	}
}

// startBaseline starts a baseline whose NoopHTTP posts to upstreamURL
// ("": its own), and returns a function calling NoopHTTP once.
func startBaseline(t *testing.T, upstreamURL string) (*BaselineServer, func() error) {
	t.Helper()
	b, err := StartBaseline("127.0.0.1:0", upstreamURL, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	conns, err := dialConns(t.Context(), b.Addr(), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeConns(conns))
	return b, func() error {
		return conns[0].Invoke(t.Context(), noopHTTPFullMethod, noopReq, new(emptypb.Empty))
	}
}

// TestNoopHTTPUpstreamApart: noop-http's HTTP side served on its own
// (--serve-noop-upstream) and named with --noop-upstream.
func TestNoopHTTPUpstreamApart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	urls, served := make(chan string, 1), make(chan error, 1)
	go func() { served <- ServeNoopUpstream(ctx, "127.0.0.1:0", func(u string) { urls <- u }) }()
	var url string
	select {
	case url = <-urls:
	case err := <-served:
		t.Fatal(err)
	}
	b, noopHTTP := startBaseline(t, url)
	if b.upstream != nil {
		t.Error("the baseline started an upstream of its own although one was named")
	}
	if err := noopHTTP(); err != nil {
		t.Fatalf("NoopHTTP through %s: %v", url, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	b.client.CloseIdleConnections()
	if err := noopHTTP(); status.Code(err) != codes.Unavailable {
		t.Fatalf("NoopHTTP after its upstream stopped: %v, want Unavailable", err)
	}
}

// TestNoopRedis: NoopRedis reads its keys from the Redis it was given in
// one pipelined round trip, and fails without a Redis or when Redis goes.
func TestNoopRedis(t *testing.T) {
	srv := redistest.Start(t)
	tests := []struct {
		name     string
		redisURL string
		kill     bool
		want     codes.Code
	}{
		{"reads its keys", srv.URL(), false, codes.OK},
		{"no Redis", "", false, codes.Unavailable},
		{"Redis gone", srv.URL(), true, codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := StartBaseline("127.0.0.1:0", "", tt.redisURL)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			conns, err := dialConns(t.Context(), b.Addr(), 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(closeConns(conns))
			if tt.kill {
				srv.Kill()
			}
			err = conns[0].Invoke(t.Context(), noopRedisFullMethod, noopReq, new(emptypb.Empty))
			if status.Code(err) != tt.want {
				t.Fatalf("NoopRedis: %v, want %v", err, tt.want)
			}
		})
	}
}
