package cache

import (
	"fmt"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is an in-process Redis-protocol server for running cloudkey
// with no Redis configured, so the very same go-redis code runs. It keeps
// everything in memory and is not for production or for measuring speed.
type Embedded struct {
	m    *miniredis.Miniredis
	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

// embeddedTick is how often the embedded server's clock moves on. Its
// keys expire only when it does (miniredis has no clock of its own), so
// TTLs, and with them the move-out bound, hold to within this much.
const embeddedTick = 100 * time.Millisecond

// StartEmbedded starts the embedded server on a free loopback port.
func StartEmbedded() (*Embedded, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("cache: start embedded redis: %w", err)
	}
	e := &Embedded{m: m, stop: make(chan struct{})}
	e.done.Go(e.tick)
	return e, nil
}

// tick expires keys as real time passes.
func (e *Embedded) tick() {
	t := time.NewTicker(embeddedTick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// URL is the redis:// URL of the embedded server.
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() + "/0" }

// Close stops the server; its data is gone.
func (e *Embedded) Close() {
	e.once.Do(func() {
		close(e.stop)
		e.done.Wait()
		e.m.Close()
	})
}
