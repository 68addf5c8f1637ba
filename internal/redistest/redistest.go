// Package redistest starts a real redis-server for tests, on a free
// loopback port, owned by the test: never the machine's shared 6379, so a
// test may flush, kill and restart it freely.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process owned by one test.
type Server struct {
	tb       testing.TB
	Addr     string // host:port
	cmd      *exec.Cmd
	waitDone chan error
}

// Start starts redis-server (without persistence) on a free loopback port
// and stops it when the test ends. It fails the test when redis-server is
// not installed; `make test` installs it.
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server is not installed (make test installs it): %v", err)
	}
	s := &Server{tb: tb}
	var err error
	for range 5 { // the free port may be taken between probe and bind
		var port int
		if port, err = freePort(); err != nil {
			continue
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err = s.start(); err == nil {
			tb.Cleanup(s.Kill)
			return s
		}
	}
	tb.Fatalf("start redis-server: %v", err)
	return nil
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command("redis-server",
		"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--protected-mode", "yes", "--loglevel", "warning")
	if err := s.cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("redis-server on %s exited: %v", s.Addr, err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			s.waitDone = done
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	<-done
	return fmt.Errorf("redis-server on %s did not answer PING in 5s", s.Addr)
}

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a go-redis client for the server, closed at test end.
func (s *Server) Client() redis.UniversalClient {
	c := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{s.Addr}, ContextTimeoutEnabled: true})
	s.tb.Cleanup(func() { c.Close() })
	return c
}

// Kill stops the server at once (as a crash would).
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	if s.waitDone != nil {
		<-s.waitDone
		s.waitDone = nil
	}
}

// Restart starts the server again on the same address, empty.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	var err error
	for range 50 { // the old socket may linger briefly
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.tb.Fatalf("restart redis-server on %s: %v", s.Addr, err)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
