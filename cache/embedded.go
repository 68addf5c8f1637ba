package cache

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// Embedded is an in-process Redis-protocol server for running cloudkey
// with no Redis configured, so the very same go-redis code runs. It keeps
// everything in memory and is not for production or for measuring speed.
type Embedded struct {
	m *miniredis.Miniredis
}

// StartEmbedded starts the embedded server on a free loopback port.
func StartEmbedded() (*Embedded, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("cache: start embedded redis: %w", err)
	}
	return &Embedded{m: m}, nil
}

// URL is the redis:// URL of the embedded server.
func (e *Embedded) URL() string { return "redis://" + e.m.Addr() + "/0" }

// Close stops the server; its data is gone.
func (e *Embedded) Close() { e.m.Close() }
