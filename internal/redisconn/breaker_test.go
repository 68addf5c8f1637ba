package redisconn

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

// switchProxy forwards TCP to a Redis, or while hung accepts and reads
// but never answers (a partition, a Redis that stopped).
type switchProxy struct {
	lis      net.Listener
	target   string
	hung     atomic.Bool
	received atomic.Int64 // bytes read from clients
	mu       sync.Mutex
	conns    []net.Conn
}

func startProxy(t *testing.T, target string) *switchProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{lis: lis, target: target}
	t.Cleanup(p.close)
	go p.serve()
	return p
}

func (p *switchProxy) url() string { return "redis://" + p.lis.Addr().String() + "/0" }

func (p *switchProxy) serve() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		go p.handle(c)
	}
}

// counter counts what a client sends.
type counter struct {
	r io.Reader
	n *atomic.Int64
}

func (c counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (p *switchProxy) handle(c net.Conn) {
	in := counter{c, &p.received}
	if p.hung.Load() {
		_, _ = io.Copy(io.Discard, in)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, up)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(c, up); c.Close() }()
	_, _ = io.Copy(up, in)
	up.Close()
}

// hang makes the proxy stop answering: open connections are cut (the
// client redials into the hung proxy) and new ones are never answered.
func (p *switchProxy) hang(on bool) {
	p.hung.Store(on)
	if on {
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
		p.mu.Unlock()
	}
}

func (p *switchProxy) close() {
	p.lis.Close()
	p.hang(true)
}

func guardedClient(t *testing.T, url string) (redis.UniversalClient, *[]string) {
	t.Helper()
	rdb, err := Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	var mu sync.Mutex
	changes := new([]string)
	Guard(rdb, func(from, to string) {
		mu.Lock()
		*changes = append(*changes, from+"->"+to)
		mu.Unlock()
	})
	return rdb, changes
}

func get(rdb redis.UniversalClient, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return rdb.Get(ctx, "k").Err()
}

// A Redis that stops answering: after breakerTrip timeouts in a row,
// commands and pipelines fail at once without being sent; after
// breakerOpen one probe goes out, and once Redis answers again the
// breaker closes.
func TestGuardOpensOnAHungRedisAndRecovers(t *testing.T) {
	rs := redistest.Start(t)
	p := startProxy(t, rs.Addr)
	rdb, changes := guardedClient(t, p.url())
	if err := get(rdb, time.Second); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET through the proxy: %v, want redis.Nil", err)
	}

	p.hang(true)
	// A new connection's own set-up commands count too, so the breaker
	// may open before breakerTrip of ours have timed out.
	opened := false
	for range breakerTrip + 1 {
		err := get(rdb, 50*time.Millisecond)
		if errors.Is(err, ErrRedisUnavailable) {
			opened = true
			break
		}
		if err == nil {
			t.Fatal("a hung Redis answered")
		}
	}
	if !opened {
		t.Fatalf("still sending after %d timeouts in a row", breakerTrip+1)
	}
	sent := p.received.Load()
	if err := get(rdb, time.Second); !errors.Is(err, ErrRedisUnavailable) {
		t.Fatalf("with the breaker open: %v, want ErrRedisUnavailable", err)
	}
	pipe := rdb.Pipeline()
	cmd := pipe.Get(context.Background(), "k")
	if _, err := pipe.Exec(context.Background()); !errors.Is(err, ErrRedisUnavailable) || !errors.Is(cmd.Err(), ErrRedisUnavailable) {
		t.Fatalf("pipeline with the breaker open: %v / %v, want ErrRedisUnavailable", err, cmd.Err())
	}
	if got := p.received.Load(); got != sent {
		t.Errorf("%d bytes reached the hung Redis through an open breaker", got-sent)
	}

	p.hang(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := get(rdb, time.Second)
		if errors.Is(err, redis.Nil) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Redis is back but commands still fail: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if want := []string{"closed->open", "open->half-open", "half-open->closed"}; len(*changes) < 3 ||
		(*changes)[0] != want[0] || (*changes)[len(*changes)-1] != want[2] {
		t.Errorf("state changes %v, want %v", *changes, want)
	}
}

// Redis's own error replies are answers: they never open the breaker;
// and neither do commands whose caller gave up.
func TestGuardCountsOnlyUnansweredCommands(t *testing.T) {
	rs := redistest.Start(t)
	p := startProxy(t, rs.Addr)
	rdb, changes := guardedClient(t, p.url())
	ctx := context.Background()
	if err := rdb.SAdd(ctx, "set", "x").Err(); err != nil {
		t.Fatal(err)
	}
	for range 3 * breakerTrip {
		if err := rdb.Get(ctx, "missing").Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("GET missing: %v", err)
		}
		if err := rdb.Get(ctx, "set").Err(); err == nil || errors.Is(err, ErrRedisUnavailable) {
			t.Fatalf("GET of a set: %v, want WRONGTYPE", err)
		}
	}
	p.hang(true)
	for range breakerTrip + 2 {
		// go-redis waits for the read deadline, then reports a timeout.
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		time.AfterFunc(10*time.Millisecond, cancel)
		if err := rdb.Get(cctx, "k").Err(); err == nil || errors.Is(err, ErrRedisUnavailable) {
			t.Fatalf("cancelled GET: %v, want it sent and failed", err)
		}
		cancel()
	}
	if len(*changes) != 0 {
		t.Errorf("the breaker changed state on answers and cancellations: %v", *changes)
	}
	before := p.received.Load()
	if err := get(rdb, 50*time.Millisecond); errors.Is(err, ErrRedisUnavailable) {
		t.Fatalf("after answers and cancellations only: %v, want the command sent", err)
	}
	if p.received.Load() == before {
		t.Error("the command did not reach Redis")
	}
}
