package visitorredis

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/visitor"
)

// TestStore is visitor.Store's contract, run on every backend; it also
// pins the key names earlier releases wrote.
func TestStore(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		rdb := dial(t)
		s := New(rdb, "")
		prefix := DefaultPrefix
		if _, ok := rdb.(*redis.ClusterClient); ok {
			prefix = ClusterPrefix
		}
		for name, test := range map[string]func(*testing.T, redis.UniversalClient, *Store, string){
			"Simple": testSimple, "Transact": testTransact, "Jobs": testJobs, "Locks": testLocks,
			"EntryIndex": testEntryIndex,
		} {
			t.Run(name, func(t *testing.T) { test(t, rdb, s, prefix) })
		}
	})
}

func exists(t *testing.T, rdb redis.UniversalClient, key string) bool {
	t.Helper()
	n, err := rdb.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func testSimple(t *testing.T, rdb redis.UniversalClient, s *Store, p string) {
	ctx := context.Background()
	if _, ok, err := s.Settings(ctx, "L1"); ok || err != nil {
		t.Fatalf("settings before any: %v %v", ok, err)
	}
	if err := s.PutSettings(ctx, "L1", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if b, ok, err := s.Settings(ctx, "L1"); !ok || err != nil || string(b) != `{"a":1}` || !exists(t, rdb, p+"set:L1") {
		t.Fatalf("settings: %s %v %v", b, ok, err)
	}

	if ok, err := s.MarkEvent(ctx, "d1", []byte("pending"), time.Minute); !ok || err != nil {
		t.Fatalf("first mark: %v %v", ok, err)
	}
	if ok, err := s.MarkEvent(ctx, "d1", []byte("pending"), time.Minute); ok || err != nil {
		t.Fatalf("second mark: %v %v", ok, err)
	}
	if err := s.SetEventMark(ctx, "d1", []byte("done"), time.Hour); err != nil || !exists(t, rdb, p+"evt:d1") {
		t.Fatal(err)
	}
	if b, ok, err := s.EventMark(ctx, "d1"); string(b) != "done" || !ok || err != nil {
		t.Fatalf("mark: %s %v %v", b, ok, err)
	}
	if err := s.DeleteEventMark(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.EventMark(ctx, "d1"); ok || err != nil {
		t.Fatalf("deleted mark: %v %v", ok, err)
	}

	if ok, err := s.HasTombstone(ctx, "e1"); ok || err != nil {
		t.Fatalf("tombstone before: %v %v", ok, err)
	}
	if err := s.PutTombstone(ctx, "e1", time.Hour); err != nil || !exists(t, rdb, p+"emp:e1") {
		t.Fatal(err)
	}
	if ok, err := s.HasTombstone(ctx, "e1"); !ok || err != nil {
		t.Fatalf("tombstone: %v %v", ok, err)
	}

	for i := range 5 {
		if err := s.AppendDecision(ctx, visitor.Decision{Location: "L1", Data: []byte{'0' + byte(i)}, Max: 3, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Decisions(ctx, "L1", 10); err != nil || len(got) != 3 || string(got[0]) != "4" || string(got[2]) != "2" {
		t.Fatalf("decisions: %q %v", got, err)
	}
	if d, _ := rdb.TTL(ctx, p+"log:L1").Result(); d <= 0 {
		t.Errorf("the log has no expiry: %v", d)
	}

	t0 := time.Unix(1_800_000_000, 0)
	for i, id := range []string{"inv-b", "inv-a", "inv-c"} {
		if err := s.AddRegistration(ctx, "L1", "h@x", id, t0.Add(time.Duration(i-1)*time.Hour), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := s.Registrations(ctx, "L1", "h@x", t0, 10); err != nil || !slices.Equal(ids, []string{"inv-a", "inv-c"}) || !exists(t, rdb, p+"host:L1:h@x") {
		t.Fatalf("registrations: %v %v", ids, err)
	}
	if ok, err := s.HasRegistration(ctx, "L1", "h@x", "inv-b"); !ok || err != nil {
		t.Fatalf("has: %v %v", ok, err)
	}
	if ok, err := s.HasRegistration(ctx, "L1", "other@x", "inv-b"); ok || err != nil {
		t.Fatalf("another host's: %v %v", ok, err)
	}
}

func testTransact(t *testing.T, rdb redis.UniversalClient, s *Store, p string) {
	ctx := context.Background()
	write := visitor.VisitWrites{
		Visits:    []visitor.VisitWrite{{Key: "inv:1", Data: []byte(`v1`), TTL: time.Hour}},
		Links:     []visitor.LinkWrite{{EntryID: "e1", VisitKey: "inv:1", TTL: time.Hour}},
		Tokens:    []visitor.TokenWrite{{Hash: "h1", VisitKey: "inv:1", TTL: time.Hour}},
		Decisions: []visitor.Decision{{Location: "L2", Data: []byte("d"), Max: 10, TTL: time.Hour}},
	}
	err := s.Transact(ctx, []string{"inv:1"}, func(tx visitor.VisitTx) error {
		if _, ok, err := tx.Visit("inv:1"); ok || err != nil {
			t.Errorf("visit before: %v %v", ok, err)
		}
		if _, ok, err := tx.Link("e1"); ok || err != nil {
			t.Errorf("link before: %v %v", ok, err)
		}
		return tx.Commit(write)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"visit:inv:1", "link:e1", "tok:h1", "log:L2"} {
		if !exists(t, rdb, p+k) {
			t.Errorf("%s not written", p+k)
		}
	}
	if k, ok, err := s.TokenVisit(ctx, "h1"); k != "inv:1" || !ok || err != nil {
		t.Errorf("token: %q %v %v", k, ok, err)
	}
	if b, ok, err := s.Visit(ctx, "inv:1"); string(b) != "v1" || !ok || err != nil {
		t.Errorf("visit: %q %v %v", b, ok, err)
	}

	// A write to a key the transaction read (here a link it read on the
	// way) between its read and its commit: nothing is written.
	err = s.Transact(ctx, []string{"inv:1"}, func(tx visitor.VisitTx) error {
		if k, _, err := tx.Link("e1"); err != nil || k != "inv:1" {
			t.Errorf("link: %q %v", k, err)
		}
		if err := rdb.Set(ctx, p+"link:e1", "inv:2", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		return tx.Commit(visitor.VisitWrites{
			Visits: []visitor.VisitWrite{{Key: "inv:1", Data: []byte(`v2`), TTL: time.Hour}},
			Tokens: []visitor.TokenWrite{{Hash: "h1"}},
		})
	})
	if !errors.Is(err, visitor.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
	if b, _, _ := s.Visit(ctx, "inv:1"); string(b) != "v1" || !exists(t, rdb, p+"tok:h1") {
		t.Errorf("a conflicting transaction wrote: %q", b)
	}

	// A token write with no visit key deletes it; a read-only transaction
	// over no visit works.
	if err := s.Transact(ctx, nil, func(tx visitor.VisitTx) error {
		return tx.Commit(visitor.VisitWrites{Tokens: []visitor.TokenWrite{{Hash: "h1"}}})
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.TokenVisit(ctx, "h1"); ok || err != nil {
		t.Errorf("deleted token: %v %v", ok, err)
	}
	if exists(t, rdb, p+"txn") {
		t.Error("the txn key was written")
	}
}

func testJobs(t *testing.T, rdb redis.UniversalClient, s *Store, p string) {
	ctx := context.Background()
	t0 := time.Unix(1_800_000_000, 0)
	if err := s.PutJob(ctx, "u1", []byte("j1"), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.PutJob(ctx, "u2", []byte("j2"), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"prot:due", "prot:job"} {
		if !exists(t, rdb, p+k) {
			t.Errorf("%s not written", p+k)
		}
	}
	if all, err := s.Jobs(ctx); err != nil || len(all) != 2 {
		t.Fatalf("jobs: %v %v", all, err)
	}
	claimed, err := s.ClaimJobs(ctx, t0, t0.Add(time.Minute), 10)
	if err != nil || !slices.Equal(claimed, []string{"u1", "j1"}) {
		t.Fatalf("claimed %v, %v", claimed, err)
	}
	if again, _ := s.ClaimJobs(ctx, t0.Add(30*time.Second), t0.Add(2*time.Minute), 10); len(again) != 0 {
		t.Fatalf("claimed under its lease: %v", again)
	}
	// The lease ran out: the job is claimed again.
	claimed, err = s.ClaimJobs(ctx, t0.Add(time.Minute), t0.Add(2*time.Minute), 10)
	if err != nil || !slices.Equal(claimed, []string{"u1", "j1"}) {
		t.Fatalf("taken over: %v, %v", claimed, err)
	}
	// Requeued, then finished.
	if err := s.FinishJob(ctx, "u1", "j1", t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d, ok, err := s.Job(ctx, "u1"); d != "j1" || !ok || err != nil {
		t.Fatalf("requeued job: %q %v %v", d, ok, err)
	}
	claimed, _ = s.ClaimJobs(ctx, t0.Add(3*time.Minute), t0.Add(4*time.Minute), 10)
	if !slices.Equal(claimed, []string{"u1", "j1"}) {
		t.Fatalf("requeued claim: %v", claimed)
	}
	// Rescheduled while claimed: finishing the stale claim keeps the new job.
	if err := s.PutJob(ctx, "u1", []byte("j1b"), t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishJob(ctx, "u1", "j1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := s.Job(ctx, "u1"); d != "j1b" {
		t.Fatalf("a stale finish dropped the new job: %q", d)
	}
	claimed, _ = s.ClaimJobs(ctx, t0.Add(5*time.Minute), t0.Add(6*time.Minute), 10)
	if !slices.Equal(claimed, []string{"u1", "j1b"}) {
		t.Fatalf("claim: %v", claimed)
	}
	if err := s.FinishJob(ctx, "u1", "j1b", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Job(ctx, "u1"); ok || err != nil {
		t.Fatalf("finished job kept: %v %v", ok, err)
	}
	if err := s.CancelJob(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.Jobs(ctx); len(all) != 0 {
		t.Fatalf("jobs left: %v", all)
	}
}

func testLocks(t *testing.T, rdb redis.UniversalClient, s *Store, p string) {
	ctx := context.Background()
	if ok, err := s.TryLock(ctx, "prot:u1", "a", time.Minute); !ok || err != nil {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if !exists(t, rdb, p+"lock:prot:u1") {
		t.Error("lock key not written")
	}
	if ok, _ := s.TryLock(ctx, "prot:u1", "b", time.Minute); ok {
		t.Fatal("a held lock was taken")
	}
	if err := s.Unlock(ctx, "prot:u1", "b"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.TryLock(ctx, "prot:u1", "b", time.Minute); ok {
		t.Fatal("another owner released the lock")
	}
	if err := s.Unlock(ctx, "prot:u1", "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.TryLock(ctx, "prot:u1", "b", time.Minute); !ok || err != nil {
		t.Fatalf("after release: %v %v", ok, err)
	}
}
