// Package redistest starts a real redis-server for tests, on a free
// loopback port, owned by the test: never the machine's shared 6379, so a
// test may flush, kill and restart it freely. It is internal/redisproc
// tied to a test's lifetime.
package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redisproc"
)

// Server is a redis-server process owned by one test.
type Server struct {
	*redisproc.Server
	tb testing.TB
}

// Start starts redis-server (without persistence) on a free loopback port
// and stops it when the test ends. It fails the test when redis-server is
// not installed; `make test` installs it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	p, err := redisproc.Start(context.Background())
	if err != nil {
		tb.Fatalf("start redis-server (make test installs it): %v", err)
	}
	tb.Cleanup(p.Close)
	return &Server{Server: p, tb: tb}
}

// Client returns a go-redis client for the server, closed at test end.
func (s *Server) Client() redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{s.Addr}, ContextTimeoutEnabled: true})
	s.tb.Cleanup(func() { c.Close() })
	return c
}

// Kill stops the server at once (as a crash would).
func (s *Server) Kill() { s.Close() }

// Restart starts the server again on the same address, empty.
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.Server.Restart(context.Background()); err != nil {
		s.tb.Fatal(err)
	}
}
