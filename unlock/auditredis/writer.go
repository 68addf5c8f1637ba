package auditredis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/unlock"
)

// StreamAuditor appends attempts to a Redis stream (XADD with an
// approximate MAXLEN) from a background writer that batches them into
// pipelines, so an unlock never waits for Redis.
//
// While Redis is unreachable the writer keeps its batch and retries (with
// backoff up to 2 s) until Redis is back; new attempts wait in a bounded
// queue, and only when that is full is the oldest queued attempt dropped
// (counted in Stats). Delivery is at least once: a command whose reply was
// lost with its connection is sent again, so a record may rarely appear
// twice, never silently vanish. Close drains the queue; what still cannot
// be written when Close's context ends goes to the spool file, written to
// the stream by the next auditor started with it (see Close).
type StreamAuditor struct {
	rdb    redis.UniversalClient
	stream string
	// maxLenArg is the MAXLEN, boxed once for the XADD arguments.
	maxLenArg any
	queue     chan unlock.Attempt
	done      chan struct{}
	// stopped ends when Close gives up on Redis; it also cancels a write
	// in flight.
	stopped context.Context
	giveUp  context.CancelFunc
	closed  sync.Once
	dropped atomic.Int64
	written atomic.Int64
	logged  atomic.Int64
	spool   string
	log     *slog.Logger
}

// DefaultStream is the audit stream's key when none is configured.
const DefaultStream = "ck:v1:audit"

var _ unlock.Auditor = (*StreamAuditor)(nil)

// AuditConfig tunes a StreamAuditor. Zero fields take the defaults.
type AuditConfig struct {
	Stream string // default "ck:v1:audit"
	MaxLen int64  // entries kept, approximately; default 1,000,000
	Queue  int    // attempts buffered while Redis is slow or down; default 65,536
	// Spool is a local file for the attempts Redis could not take by the
	// end of Close; they are written to the stream when an auditor starts
	// with the same file. Empty: they are logged instead (with the log's
	// redaction, so without their full emails).
	Spool  string
	Logger *slog.Logger
}

// NewStreamAuditor starts the background writer.
func NewStreamAuditor(rdb redis.UniversalClient, cfg AuditConfig) *StreamAuditor {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = 1_000_000
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 65_536
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &StreamAuditor{
		rdb: rdb, stream: cfg.Stream, maxLenArg: cfg.MaxLen,
		queue: make(chan unlock.Attempt, cfg.Queue), done: make(chan struct{}),
		log: cfg.Logger, spool: cfg.Spool,
	}
	a.stopped, a.giveUp = context.WithCancel(context.Background())
	go a.run()
	return a
}

// Record queues an attempt without blocking. When the queue is full (Redis
// down for long) the oldest queued attempt is dropped and counted, so the
// queue's memory stays bounded and the newest attempts are kept.
func (a *StreamAuditor) Record(at unlock.Attempt) {
	for {
		select {
		case a.queue <- at:
			return
		default:
		}
		select {
		case <-a.queue:
			if a.dropped.Add(1)%1000 == 1 {
				a.log.Error("audit queue full: dropping the oldest unlock audit records", "dropped", a.dropped.Load())
			}
		default: // the writer just took one: there is room again
		}
	}
}

// Stats reports attempts written to Redis and dropped because the queue
// was full.
func (a *StreamAuditor) Stats() (written, dropped int64) {
	return a.written.Load(), a.dropped.Load()
}

// Logged reports attempts spooled or logged instead of written to Redis
// at Close.
func (a *StreamAuditor) Logged() int64 { return a.logged.Load() }

// Close stops accepting attempts and writes what is queued to Redis,
// retrying while Redis is down, until ctx ends. Then the attempts still
// unwritten go to the spool file (AuditConfig.Spool) or, without one, are
// logged at ERROR level ("audit: record not written to Redis", the record
// as JSON in attribute "record", with the stream's field names) so that
// none is lost silently, and Close returns an error saying how many.
// Record must not be called after Close.
func (a *StreamAuditor) Close(ctx context.Context) error {
	a.closed.Do(func() { close(a.queue) })
	select {
	case <-a.done:
		a.giveUp()
		return nil
	case <-ctx.Done():
	}
	a.giveUp()
	<-a.done // logging what is left does not wait for anything
	return fmt.Errorf("audit: %d records spooled or logged instead of written to Redis: %w", a.logged.Load(), ctx.Err())
}

const auditBatch = 512

// auditLinger is how long the writer lets records gather once it has
// one. Without it, at a few thousand unlocks a second each record was its
// own Redis round trip (a wake-up, two syscalls and Redis's own work, on
// the cores the unlocks need); with it, one wake-up and one round trip
// carry the records of a few milliseconds. Records reach Redis that much
// later.
const auditLinger = 2 * time.Millisecond

// xaddArgs is the length of one record's XADD command.
const xaddArgs = 22

func (a *StreamAuditor) run() {
	defer close(a.done)
	if a.spool != "" {
		a.replaySpool()
	}
	batch := make([]unlock.Attempt, 0, auditBatch)
	for at := range a.queue {
		batch = append(batch[:0], at)
		// Sleep rather than wait on the queue, which would wake the
		// writer for every record.
		time.Sleep(auditLinger)
		open := true
	fill: // take what has gathered, up to a batch
		for len(batch) < auditBatch {
			select {
			case more, ok := <-a.queue:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, more)
			default:
				break fill
			}
		}
		a.write(batch)
		if !open {
			return
		}
	}
}

// write appends batch to the stream, retrying the records not yet
// written until they are or Close gives up, when they are logged.
func (a *StreamAuditor) write(batch []unlock.Attempt) {
	backoff := 100 * time.Millisecond
	for failures := 0; len(batch) > 0; failures++ {
		if a.stopped.Err() != nil {
			a.fallback(batch)
			return
		}
		var err error
		batch, err = a.send(batch)
		if len(batch) == 0 {
			return
		}
		if failures%50 == 0 { // about once in 100 s while Redis is down
			a.log.Error("audit: cannot write to Redis; will retry", "pending", len(batch), "err", err)
		}
		select {
		case <-a.stopped.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// send writes batch in one pipeline and returns the records whose XADD
// failed (reusing batch's array).
func (a *StreamAuditor) send(batch []unlock.Attempt) ([]unlock.Attempt, error) {
	ctx, cancel := context.WithTimeout(a.stopped, 2*time.Second)
	defer cancel()
	pipe := a.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	// One XADD per record, its arguments cut from one slice for the whole
	// batch (the pipeline keeps them until Exec): a record costs the boxing
	// of its own fields only. Built with XAddArgs, the writer's
	// allocations were a tenth of an unlock's.
	args := make([]any, 0, len(batch)*xaddArgs)
	for i, at := range batch {
		start := len(args)
		args = append(args, "xadd", a.stream, "maxlen", "~", a.maxLenArg, "*",
			"at", at.At.UnixMilli(),
			"email", at.Email,
			"entry", at.EntryID,
			"system", at.System,
			"property", at.Property,
			"result", statusValue(at.Status),
			"message", at.Message,
			"latency_us", at.Latency.Microseconds())
		if at.Kind != "" {
			// Only events other than unlocks carry a kind: an unlock's
			// record stays as it was.
			args = append(args, "kind", at.Kind)
		}
		cmds[i] = pipe.Do(ctx, args[start:len(args):len(args)]...)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		a.written.Add(int64(len(batch)))
		return batch[:0], nil
	}
	failed := batch[:0]
	for i, c := range cmds {
		if c.Err() != nil {
			failed = append(failed, batch[i])
		}
	}
	a.written.Add(int64(len(batch) - len(failed)))
	return failed, err
}

// fallback keeps records that cannot reach Redis: in the spool file, or
// when there is none (or it fails) in the log, one ERROR line each.
func (a *StreamAuditor) fallback(batch []unlock.Attempt) {
	if a.spool != "" {
		err := appendSpool(a.spool, batch)
		if err == nil {
			a.log.Error("audit: records not written to Redis are spooled; the next start writes them", "path", a.spool, "records", len(batch))
			a.logged.Add(int64(len(batch)))
			return
		}
		a.log.Error("audit: cannot spool; logging the records instead", "err", err)
	}
	for _, at := range batch {
		rec, _ := json.Marshal(map[string]any{
			"at": at.At.UnixMilli(), "email": at.Email, "entry": at.EntryID, "system": at.System, "property": at.Property, "result": at.Status.String(),
			"message": at.Message, "latency_us": at.Latency.Microseconds(), "kind": at.Kind,
		})
		a.log.Error("audit: record not written to Redis", "stream", a.stream, "record", string(rec))
	}
	a.logged.Add(int64(len(batch)))
}

// statusValues are the statuses' names, boxed once.
var statusValues = func() []any {
	v := make([]any, unlock.Error+1)
	for st := unlock.OK; st <= unlock.Error; st++ {
		v[st] = st.String()
	}
	return v
}()

func statusValue(st unlock.Status) any {
	if st >= unlock.OK && st <= unlock.Error {
		return statusValues[st]
	}
	return st.String()
}
