// Package redistest starts a real redis-server for tests, on a free
// loopback port, owned by the test: never the machine's shared 6379, so a
// test may flush, kill and restart it freely. It is internal/redisproc
// tied to a test's lifetime.
//
// Test support: only tests import it.
package redistest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

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

// Cluster is a three-master Redis Cluster on loopback owned by one test.
type Cluster struct {
	*redisproc.Cluster
	tb testing.TB
}

// StartCluster starts a Redis Cluster of three masters (no replicas) and
// stops it when the test ends. Starting one takes about 2.5 s (a master
// waits 2 s before it serves), so tests share one through Flush.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := redisproc.StartCluster(context.Background(), 3)
	if err != nil {
		tb.Fatalf("start a redis cluster (make test installs redis-server): %v", err)
	}
	tb.Cleanup(c.Close)
	return &Cluster{Cluster: c, tb: tb}
}

// Client returns a go-redis cluster client, closed at test end.
func (c *Cluster) Client() redis.UniversalClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), ContextTimeoutEnabled: true})
	c.tb.Cleanup(func() { cc.Close() })
	return cc
}

// Flush empties the cluster, failing the test on error.
func (c *Cluster) Flush() {
	c.tb.Helper()
	if err := c.Cluster.Flush(context.Background()); err != nil {
		c.tb.Fatal(err)
	}
}

var shared struct {
	sync.Mutex
	c *redisproc.Cluster
}

// SharedCluster returns the test binary's one Redis Cluster, started on
// first use and emptied for each caller; the package's TestMain must call
// CloseShared after m.Run. Tests using it must not run in parallel.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.c == nil {
		c, err := redisproc.StartCluster(context.Background(), 3)
		if err != nil {
			tb.Fatalf("start a redis cluster (make test installs redis-server): %v", err)
		}
		shared.c = c
	}
	c := &Cluster{Cluster: shared.c, tb: tb}
	c.Flush()
	return c
}

// CloseShared stops the shared cluster, if one was started.
func CloseShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.c != nil {
		shared.c.Close()
		shared.c = nil
	}
}

// StartSentinel starts a Redis Sentinel monitoring master as name and
// stops it when the test ends.
func StartSentinel(tb testing.TB, master *Server, name string) *redisproc.Server {
	tb.Helper()
	s, err := redisproc.StartSentinel(context.Background(), master.Server, name)
	if err != nil {
		tb.Fatalf("start redis sentinel: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Main runs a package's tests, stops the shared cluster, then fails the
// run if a goroutine outlived the tests (goleak). Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	CloseShared()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
