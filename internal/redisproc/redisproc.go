// Package redisproc starts a private redis-server process on a free
// loopback port, for programs (the load-test harness) that need a real
// Redis but must not touch a shared one. Tests use internal/redistest.
package redisproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotInstalled is returned by Start when redis-server is not on PATH.
var ErrNotInstalled = errors.New("redisproc: redis-server is not on PATH")

// Server is a redis-server process owned by the caller: no persistence,
// bound to 127.0.0.1, stopped by Close.
type Server struct {
	// Addr is host:port.
	Addr string
	// Version is what `redis-server --version` printed, e.g. "7.0.15";
	// empty when it could not be read.
	Version string

	cmd       *exec.Cmd
	done      chan error // receives cmd.Wait's result once
	closeOnce sync.Once
	extra     []string // further redis-server arguments (cluster mode), kept for Restart
	conf      string   // a configuration file given first (Sentinel), or ""
	cleanup   func()   // run by Close after the process exits, or nil
}

// Available reports whether redis-server is on PATH.
func Available() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// Start starts redis-server on a free loopback port and waits until it
// answers PING (at most 5 s).
func Start(ctx context.Context) (*Server, error) {
	return startWith(ctx, nil)
}

// startWith starts redis-server with further arguments made for its port.
func startWith(ctx context.Context, extra func(port int) ([]string, error)) (*Server, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	// The probed port may be taken by someone else before redis binds it,
	// so a failed start is retried on a new port.
	for range 5 {
		var port int
		if port, err = freePort(); err != nil {
			continue
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if extra != nil {
			if s.extra, err = extra(port); err != nil {
				continue
			}
		}
		if err = s.start(ctx, path); err == nil {
			s.Version = version(ctx, path)
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("redisproc: start redis-server: %w", err)
}

func (s *Server) start(ctx context.Context, path string) error {
	_, port, _ := net.SplitHostPort(s.Addr)
	// Not exec.CommandContext: the server must outlive a cancelled start
	// context only until Close, which it does because we kill it ourselves.
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "yes", "--loglevel", "warning"}
	if s.conf != "" {
		args = []string{s.conf, "--sentinel", "--loglevel", "warning"}
	}
	s.cmd = exec.Command(path, append(args, s.extra...)...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()

	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case err := <-s.done:
			s.done <- err // keep it for Close
			return fmt.Errorf("redis-server on %s exited: %v", s.Addr, err)
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.Close()
	return fmt.Errorf("redis-server on %s did not answer PING in 5s", s.Addr)
}

// URL is the redis:// URL of the server (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Close kills the server and waits for it to exit. Nothing is persisted,
// so there is nothing to flush. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Kill()
		<-s.done
		if s.cleanup != nil {
			s.cleanup()
		}
	})
}

// Pause stops the server's process (SIGSTOP) with its sockets open:
// clients connect and send, and nothing answers, as with a Redis that
// hangs or a network partition. Resume lets it go on.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// version returns the "v=7.0.15" part of `redis-server --version`.
func version(ctx context.Context, path string) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Restart kills the server and starts it again, empty, on the same
// address, as a Redis that went away and came back. Tests of Redis faults
// use it.
func (s *Server) Restart(ctx context.Context) error {
	s.Close()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return ErrNotInstalled
	}
	for range 50 { // the old socket may linger briefly
		s.closeOnce = sync.Once{}
		if err = s.start(ctx, path); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("redisproc: restart redis-server on %s: %w", s.Addr, err)
}
