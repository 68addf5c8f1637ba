package unlock

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Attempt is one audited unlock attempt.
type Attempt struct {
	At      time.Time
	Email   string
	EntryID string
	Status  Status
	Message string
	Latency time.Duration
}

// Auditor records attempts. Record must not block the reply path.
type Auditor interface {
	Record(Attempt)
}

// Discard drops attempts.
type Discard struct{}

// Record does nothing.
func (Discard) Record(Attempt) {}

// StreamAuditor appends attempts to a Redis stream (XADD with an
// approximate MAXLEN) from a background writer that batches them into
// pipelines, so an unlock never waits for Redis. Close drains the queue.
type StreamAuditor struct {
	rdb    redis.UniversalClient
	stream string
	maxLen int64
	// maxLenArg is maxLen boxed once, for the XADD arguments.
	maxLenArg any
	queue     chan Attempt
	done      chan struct{}
	closed    sync.Once
	dropped   atomic.Int64
	written   atomic.Int64
	log       *slog.Logger
}

const defaultAuditStream = "ck:v1:audit"

// AuditConfig tunes a StreamAuditor. Zero fields take the defaults.
type AuditConfig struct {
	Stream string // default "ck:v1:audit"
	MaxLen int64  // entries kept, approximately; default 1,000,000
	Queue  int    // attempts buffered before new ones are dropped; default 65,536
	Logger *slog.Logger
}

// NewStreamAuditor starts the background writer.
func NewStreamAuditor(rdb redis.UniversalClient, cfg AuditConfig) *StreamAuditor {
	if cfg.Stream == "" {
		cfg.Stream = defaultAuditStream
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
		rdb: rdb, stream: cfg.Stream, maxLen: cfg.MaxLen, maxLenArg: cfg.MaxLen,
		queue: make(chan Attempt, cfg.Queue), done: make(chan struct{}), log: cfg.Logger,
	}
	go a.run()
	return a
}

// Record queues an attempt; when the queue is full (Redis down for long)
// the attempt is dropped and counted rather than slowing unlocks.
func (a *StreamAuditor) Record(at Attempt) {
	select {
	case a.queue <- at:
	default:
		if a.dropped.Add(1)%1000 == 1 {
			a.log.Error("audit queue full: dropping unlock audit records", "dropped", a.dropped.Load())
		}
	}
}

// Stats reports attempts written to Redis and dropped.
func (a *StreamAuditor) Stats() (written, dropped int64) {
	return a.written.Load(), a.dropped.Load()
}

// Close stops accepting attempts and writes what is queued, until ctx ends.
// Record must not be called after Close.
func (a *StreamAuditor) Close(ctx context.Context) error {
	a.closed.Do(func() { close(a.queue) })
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
const xaddArgs = 18

func (a *StreamAuditor) run() {
	defer close(a.done)
	batch := make([]Attempt, 0, auditBatch)
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

func (a *StreamAuditor) write(batch []Attempt) {
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		pipe := a.rdb.Pipeline()
		// One XADD per record, its arguments cut from one slice for the
		// whole batch (the pipeline keeps them until Exec): a record costs
		// the boxing of its own fields only. Built with XAddArgs, the
		// writer's allocations were a tenth of an unlock's.
		args := make([]any, 0, len(batch)*xaddArgs)
		for _, at := range batch {
			start := len(args)
			args = append(args, "xadd", a.stream, "maxlen", "~", a.maxLenArg, "*",
				"at", at.At.UnixMilli(),
				"email", at.Email,
				"entry", at.EntryID,
				"result", statusValue(at.Status),
				"message", at.Message,
				"latency_us", at.Latency.Microseconds())
			pipe.Do(ctx, args[start:len(args):len(args)]...)
		}
		_, err := pipe.Exec(ctx)
		cancel()
		if err == nil {
			a.written.Add(int64(len(batch)))
			return
		}
		// Appending the same records twice is worse than a late write but
		// a partial pipeline may have landed; retry a few times only.
		if attempt == 2 {
			a.dropped.Add(int64(len(batch)))
			a.log.Error("audit: cannot write to Redis; records dropped", "n", len(batch), "err", err)
			return
		}
		time.Sleep(time.Duration(100*(attempt+1)) * time.Millisecond)
	}
}

// statusValues are the statuses' names, boxed once.
var statusValues = func() []any {
	v := make([]any, Error+1)
	for st := OK; st <= Error; st++ {
		v[st] = st.String()
	}
	return v
}()

func statusValue(st Status) any {
	if st >= OK && st <= Error {
		return statusValues[st]
	}
	return st.String()
}
