package tenantredis

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/tenant"
)

// TestContactStore is tenant.ContactStore's contract, run through
// tenant.Store on every backend: a redis-server, a real three-master Redis
// Cluster (an organisation's keys share a hash tag, so its scripts,
// transactions and multi-key commands stay in one slot) and the embedded
// Redis `cloudkey serve` runs by default (Lua, WATCH/MULTI, ZRANGE BYLEX),
// so a development server behaves as production does.
func TestContactStore(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		for _, tt := range []struct {
			name string
			test func(*testing.T, backends.Dial)
		}{
			{"ImportCSV", testImportCSV},
			{"IdempotentAndUpdates", testImportIdempotentAndUpdates},
			{"RemoveMissing", testImportRemoveMissing},
			{"ConcurrentChange", testImportConcurrentChange},
			{"Grants", testGrants},
			{"CrossOrganisation", testCrossOrganisation},
			{"List", testList},
			{"Get", testGet},
			{"Import10000Rows", testImport10000Rows},
			{"ImportLimits", testImportLimits},
			{"ImportArguments", testImportArguments},
			{"ImportNames", testImportNames},
			{"ImportManyBadRows", testImportManyBadRows},
			{"ImportUndecodable", testImportUndecodable},
			{"ReleaseFormat", testReleaseFormat},
		} {
			t.Run(tt.name, func(t *testing.T) { tt.test(t, dial) })
		}
	})
}

// newStore returns a tenant.Store on a fresh Redis from dial, its adapter
// and the client.
func newStore(t *testing.T, dial backends.Dial, opts ...tenant.Option) (*tenant.Store, *Contacts, redis.UniversalClient) {
	t.Helper()
	rdb := dial(t)
	c := NewContacts(rdb, "ck:test:")
	return tenant.NewStore(c, opts...), c, rdb
}

// clockVar is a clock option reading *now, so a test can change the clock
// after making the Store.
func clockVar(now *func() time.Time) tenant.Option {
	return tenant.WithClock(func() time.Time { return (*now)() })
}

// fixture reads one of tenant's CSV fixtures.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustImport(t *testing.T, s *tenant.Store, org string, csv []byte, opts tenant.ImportOptions) tenant.ImportReport {
	t.Helper()
	rep, err := s.Import(context.Background(), org, bytes.NewReader(csv), opts)
	if err != nil {
		t.Fatalf("Import into %s: %v (report %+v)", org, err, rep)
	}
	return rep
}

// all returns org's contacts by email, read through List page by page.
func all(t *testing.T, s *tenant.Store, org string) map[string]tenant.Contact {
	t.Helper()
	got := map[string]tenant.Contact{}
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
