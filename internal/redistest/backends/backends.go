// Package backends runs a store's contract suite against each Redis
// cloudkey supports: a real redis-server, a real three-master Redis
// Cluster (the test binary's shared one, flushed for each caller) and the
// embedded Redis `cloudkey serve` runs when none is configured. It is for
// tests only and must not be imported by production code.
package backends

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// Dial returns a client to a fresh, empty Redis of one kind, closed (and
// the server stopped) when the test ends.
type Dial func(t *testing.T) redis.UniversalClient

// All is every backend by name. A package using the cluster must call
// redistest.Main (or CloseShared) from its TestMain.
func All() map[string]Dial {
	return map[string]Dial{
		"redis-server": func(t *testing.T) redis.UniversalClient { return redistest.Start(t).Client() },
		"redis-cluster": func(t *testing.T) redis.UniversalClient {
			c, err := redisconn.Dial(redistest.SharedCluster(t).URL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		},
		"embedded": func(t *testing.T) redis.UniversalClient {
			e, err := redisconn.StartEmbedded()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(e.Close)
			c, err := redisconn.Dial(e.URL())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		},
	}
}

// Run runs test once per backend, as a subtest named after it. The
// shared cluster makes the subtests sequential: they must not call
// t.Parallel.
func Run(t *testing.T, test func(t *testing.T, dial Dial)) {
	for name, dial := range All() {
		t.Run(name, func(t *testing.T) { test(t, dial) })
	}
}
