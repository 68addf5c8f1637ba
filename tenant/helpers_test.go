package tenant

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redisconn"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// newStore returns a Store on a redis-server of the test's own, or, under
// TestOnEmbeddedRedis, on the embedded Redis `cloudkey serve` runs by
// default.
func newStore(t *testing.T) (*Store, redis.UniversalClient) {
	t.Helper()
	if strings.HasPrefix(t.Name(), "TestOnRedisCluster/") {
		rdb := redistest.SharedCluster(t).Client()
		return NewStore(rdb, "ck:test:"), rdb
	}
	if !strings.HasPrefix(t.Name(), "TestOnEmbeddedRedis/") {
		rdb := redistest.Start(t).Client()
		return NewStore(rdb, "ck:test:"), rdb
	}
	e, err := redisconn.StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	rdb, err := redisconn.Dial(e.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return NewStore(rdb, "ck:test:"), rdb
}

// TestOnEmbeddedRedis runs the tests that reach Redis against the embedded
// default too (Lua, WATCH/MULTI, ZRANGE BYLEX), so a development server
// behaves as production does.
func TestOnEmbeddedRedis(t *testing.T) { runRedisTests(t) }

// TestOnRedisCluster runs them against a real three-master Redis Cluster:
// an organisation's keys share a hash tag, so its scripts, transactions
// and multi-key commands stay in one slot.
func TestOnRedisCluster(t *testing.T) { runRedisTests(t) }

func runRedisTests(t *testing.T) {
	for _, tt := range []struct {
		name string
		test func(*testing.T)
	}{
		{"ImportCSV", TestImportCSV},
		{"IdempotentAndUpdates", TestImportIdempotentAndUpdates},
		{"RemoveMissing", TestImportRemoveMissing},
		{"ConcurrentChange", TestImportConcurrentChange},
		{"Grants", TestGrants},
		{"CrossOrganisation", TestCrossOrganisation},
		{"List", TestList},
		{"Get", TestGet},
	} {
		t.Run(tt.name, tt.test)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustImport(t *testing.T, s *Store, org string, csv []byte, opts ImportOptions) ImportReport {
	t.Helper()
	rep, err := s.Import(context.Background(), org, bytes.NewReader(csv), opts)
	if err != nil {
		t.Fatalf("Import into %s: %v (report %+v)", org, err, rep)
	}
	return rep
}

// all returns org's contacts by email, read through List page by page.
func all(t *testing.T, s *Store, org string) map[string]Contact {
	t.Helper()
	got := map[string]Contact{}
	cursor := ""
	for {
		page, err := s.List(context.Background(), org, cursor, 0)
		if err != nil {
			t.Fatalf("List %s: %v", org, err)
		}
		for _, c := range page.Contacts {
			if _, dup := got[c.Email]; dup {
				t.Fatalf("List %s returned %s twice", org, c.Email)
			}
			got[c.Email] = c
		}
		if cursor = page.Next; cursor == "" {
			return got
		}
	}
}
