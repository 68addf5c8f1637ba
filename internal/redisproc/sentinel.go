package redisproc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// StartSentinel starts a Redis Sentinel on a free loopback port that
// monitors master under name (quorum 1), for tests of Sentinel clients.
// Close stops it and removes its configuration.
func StartSentinel(ctx context.Context, master *Server, name string) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	host, mport, err := net.SplitHostPort(master.Addr)
	if err != nil {
		return nil, fmt.Errorf("redisproc: sentinel: master address %q: %w", master.Addr, err)
	}
	dir, err := os.MkdirTemp("", "redisproc-sentinel-")
	if err != nil {
		return nil, fmt.Errorf("redisproc: sentinel directory: %w", err)
	}
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			continue
		}
		// Sentinel rewrites its configuration file, so it must be its own.
		conf := filepath.Join(dir, "sentinel-"+strconv.Itoa(port)+".conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\n", port, dir, name, host, mport)
		if err = os.WriteFile(conf, []byte(body), 0o600); err != nil {
			break
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), conf: conf, cleanup: func() { os.RemoveAll(dir) }}
		if err = s.start(ctx, path); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redisproc: start sentinel: %w", err)
}
