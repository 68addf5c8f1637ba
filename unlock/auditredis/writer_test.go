package auditredis_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/unlock/auditredis"
)

func record(a *auditredis.StreamAuditor, from, to int) {
	for i := from; i < to; i++ {
		a.Record(unlock.Attempt{At: time.Now(), Email: "erin@example.com", EntryID: strconv.Itoa(i), Status: unlock.OK})
	}
}

// streamEntries returns the entry ids in the stream, in order.
func streamEntries(t *testing.T, rdb redis.UniversalClient, stream string) []string {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.Values["entry"].(string)
	}
	return ids
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a log sink safe for the writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Records made while Redis is down are written when it is back, none
// dropped while the queue has room.
func TestStreamAuditorRetriesUntilRedisIsBack(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	a := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{Stream: "audit-test", Logger: slog.New(slog.DiscardHandler)})
	record(a, 0, 10)
	eventually(t, "first records written", func() bool { w, _ := a.Stats(); return w == 10 })
	srv.Kill()
	record(a, 10, 60)
	time.Sleep(500 * time.Millisecond) // several failed attempts
	srv.Restart()                      // empty: only what is written from now on is there
	eventually(t, "queued records written after the restart", func() bool { w, _ := a.Stats(); return w == 60 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ids := streamEntries(t, rdb, "audit-test")
	if len(ids) != 50 || ids[0] != "10" || ids[49] != "59" {
		t.Errorf("stream after restart holds %d records %v, want 10..59 once each", len(ids), ids)
	}
	if _, d := a.Stats(); d != 0 {
		t.Errorf("dropped %d", d)
	}
}

// A full queue drops its oldest records, counted; the newest are kept.
func TestStreamAuditorDropsOldestWhenFull(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	a := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{Stream: "audit-test", Queue: 10, Logger: slog.New(slog.DiscardHandler)})
	srv.Kill()
	record(a, 0, 100)
	srv.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	ids := streamEntries(t, rdb, "audit-test")
	written, dropped := a.Stats()
	if dropped == 0 || written+dropped != 100 || int64(len(ids)) != written {
		t.Fatalf("written %d, dropped %d, stream %d: want some dropped and every record accounted for", written, dropped, len(ids))
	}
	if len(ids) > 10+512 || ids[len(ids)-1] != "99" || ids[len(ids)-10] != "90" {
		t.Errorf("stream %v: want the 10 newest records (90..99) kept", ids)
	}
}

// When Close's deadline passes with Redis down, what is left is logged,
// one ERROR line per record, and Close says so.
func TestStreamAuditorLogsWhatRedisCannotTakeAtClose(t *testing.T) {
	srv := redistest.Start(t)
	var logs syncBuffer
	a := auditredis.NewStreamAuditor(srv.Client(), auditredis.AuditConfig{Stream: "audit-test",
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	srv.Kill()
	record(a, 0, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := a.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "7 records spooled or logged") {
		t.Fatalf("Close = %v, want an error counting 7 logged records", err)
	}
	if a.Logged() != 7 {
		t.Errorf("Logged = %d, want 7", a.Logged())
	}
	out := logs.String()
	for i := range 7 {
		if !strings.Contains(out, `\"entry\":\"`+strconv.Itoa(i)+`\"`) {
			t.Errorf("record %d is not in the log:\n%s", i, out)
		}
	}
	if n := strings.Count(out, `"level":"ERROR","msg":"audit: record not written to Redis"`); n != 7 {
		t.Errorf("%d fallback lines, want 7:\n%s", n, out)
	}
}

// With a spool, what Redis cannot take at Close is kept whole in a local
// file (emails included, which the log would redact), and the next
// auditor started with the same spool writes it to the stream first.
func TestStreamAuditorSpoolsAtCloseAndReplaysAtStart(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.Client()
	spool := filepath.Join(t.TempDir(), "state", "audit.spool")
	var logs syncBuffer
	a := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{Stream: "audit-test", Spool: spool,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	srv.Kill()
	record(a, 0, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := a.Close(ctx); err == nil {
		t.Fatal("Close with Redis down = nil, want an error counting the spooled records")
	}
	if a.Logged() != 7 || strings.Contains(logs.String(), "record not written") {
		t.Fatalf("spooled %d, want 7, none in the log:\n%s", a.Logged(), logs.String())
	}
	b, err := os.ReadFile(spool)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 7 || !strings.Contains(string(b), `"email":"`) {
		t.Fatalf("spool has %d lines, want 7 whole records:\n%s", n, b)
	}

	srv.Restart()
	b2 := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{Stream: "audit-test", Spool: spool, Logger: slog.New(slog.DiscardHandler)})
	record(b2, 7, 10) // queued behind the replay
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	if err := b2.Close(ctx2); err != nil {
		t.Fatal(err)
	}
	ids := streamEntries(t, rdb, "audit-test")
	if want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}; !slices.Equal(ids, want) {
		t.Errorf("stream entries %v, want %v (the spool first, then the new records)", ids, want)
	}
	if _, err := os.Stat(spool); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("spool after replay: %v, want it gone", err)
	}
	if _, err := os.Stat(spool + ".replay"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("replay file after replay: %v, want it gone", err)
	}
}

func testStreamAuditorDrainsOnClose(t *testing.T, rdb redis.UniversalClient) {
	a := auditredis.NewStreamAuditor(rdb, auditredis.AuditConfig{Stream: "audit-test", MaxLen: 100_000})
	for i := range 5000 {
		a.Record(unlock.Attempt{At: time.Now(), Email: "erin@example.com", EntryID: strconv.Itoa(i), Status: unlock.OK})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, "audit-test").Val(); n != 5000 {
		t.Errorf("stream has %d records after Close, want 5000", n)
	}
	if w, d := a.Stats(); w != 5000 || d != 0 {
		t.Errorf("stats written=%d dropped=%d", w, d)
	}
}
