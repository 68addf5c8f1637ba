package auditredis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/unlock"
)

// AuditLog reads the audit stream the StreamAuditor writes: it is
// unlock.AuditReader in Redis.
type AuditLog struct {
	rdb    redis.UniversalClient
	stream string
}

// NewAuditLog reads stream ("" means the StreamAuditor's default).
func NewAuditLog(rdb redis.UniversalClient, stream string) *AuditLog {
	if stream == "" {
		stream = DefaultStream
	}
	return &AuditLog{rdb: rdb, stream: stream}
}

// maxScan bounds how many records one page may look through, so a filter
// that matches little cannot make one request read the whole stream.
// Filters, the property's included, are applied here as the stream is
// read: the stream is one for every property (one XADD per attempt on the
// hot path), so a page of a property that has few of the newest records
// reads up to maxScan records (about 20,000 × ~200 bytes: 4 MB from Redis,
// some tens of milliseconds) and may come back short with a cursor to go
// on from.
const maxScan = 20_000

// List returns up to limit records matching f, newest first, starting
// after the cursor (the ID of the last record of the previous page; ""
// for the newest). next is "" when nothing older remains, else the cursor
// of the next page (which may come back empty when maxScan ran out).
func (l *AuditLog) List(ctx context.Context, f unlock.AuditFilter, limit int, cursor string) (recs []unlock.AuditRecord, next string, err error) {
	hi := "+"
	if !f.Until.IsZero() {
		hi = strconv.FormatInt(f.Until.UnixMilli(), 10)
	}
	if cursor != "" {
		if !validID(cursor) {
			return nil, "", fmt.Errorf("%w: %q", unlock.ErrBadCursor, cursor)
		}
		hi = "(" + cursor
	}
	lo := "-"
	if !f.Since.IsZero() {
		lo = strconv.FormatInt(f.Since.UnixMilli(), 10)
	}
	scanned := 0
	for scanned < maxScan {
		batch := min(max(4*limit, 256), maxScan-scanned)
		msgs, err := l.rdb.XRevRangeN(ctx, l.stream, hi, lo, int64(batch)).Result()
		if err != nil {
			return nil, "", fmt.Errorf("audit: read %s: %w", l.stream, err)
		}
		for _, m := range msgs {
			scanned++
			r := record(m)
			if f.Match(r) {
				recs = append(recs, r)
				if len(recs) == limit {
					return recs, r.ID, nil
				}
			}
			hi = "(" + m.ID
		}
		if len(msgs) < batch {
			return recs, "", nil // reached the oldest
		}
	}
	return recs, strings.TrimPrefix(hi, "("), nil
}

func validID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		return false
	}
	_, e1 := strconv.ParseUint(ms, 10, 64)
	_, e2 := strconv.ParseUint(seq, 10, 64)
	return e1 == nil && e2 == nil
}

func record(m redis.XMessage) unlock.AuditRecord {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	r := unlock.AuditRecord{ID: m.ID, Kind: str("kind"), User: str("email"), EntryID: str("entry"), System: str("system"), Property: str("property"), Result: str("result"), Message: str("message")}
	if r.Kind == "" {
		r.Kind = unlock.KindUnlock // unlocks, and every record written before kinds
	}
	if ms, err := strconv.ParseInt(str("at"), 10, 64); err == nil {
		r.At = time.UnixMilli(ms)
	}
	if us, err := strconv.ParseInt(str("latency_us"), 10, 64); err == nil {
		r.Latency = time.Duration(us) * time.Microsecond
	}
	return r
}
