package redisconn

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is an in-process Redis-protocol server for running cloudkey
// with no Redis configured, so the very same go-redis code runs. It keeps
// everything in memory and is not for production or for measuring speed.
//
// It listens on loopback, where any local process can connect, so it
// requires a password, random for each start, that only URL gives out:
// a command from a client without it is refused with NOAUTH.
type Embedded struct {
	m        *miniredis.Miniredis
	password string
	stop     chan struct{}
	done     sync.WaitGroup
	once     sync.Once
}

// embeddedTick is how often the embedded server's clock moves on. Its
// keys expire only when it does (miniredis has no clock of its own), so
// TTLs, and with them the move-out bound, hold to within this much.
const embeddedTick = 100 * time.Millisecond

// StartEmbedded starts the embedded server on a free loopback port, with
// a new random password.
func StartEmbedded() (*Embedded, error) {
	m := miniredis.NewMiniRedis()
	password := rand.Text() // 26 base32 characters: 130 bits
	m.RequireAuth(password)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("cache: start embedded redis: %w", err)
	}
	e := &Embedded{m: m, password: password, stop: make(chan struct{})}
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

// URL is the redis:// URL of the embedded server, password included: it
// is for the process's own client, not for logs (see Addr).
func (e *Embedded) URL() string {
	u := url.URL{Scheme: "redis", User: url.UserPassword("", e.password), Host: e.m.Addr(), Path: "/0"}
	return u.String()
}

// Addr is the embedded server's address, for logs.
func (e *Embedded) Addr() string { return e.m.Addr() }

// Close stops the server; its data is gone.
func (e *Embedded) Close() {
	e.once.Do(func() {
		close(e.stop)
		e.done.Wait()
		e.m.Close()
	})
}
