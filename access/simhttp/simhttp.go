// Package simhttp serves an access-system simulator's HTTP handler on a
// TCP address, for the simulators (access/sim: Openpath, access/kisisim:
// Kisi): listening, the server's timeouts, the shutdown that first
// releases hung requests, and running until a context ends.
//
// It imports the standard library only.
package simhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Listener is a simulator's handler listening on a TCP address.
type Listener struct {
	// URL is the base URL clients use, e.g. "http://127.0.0.1:41237".
	URL string

	name     string
	release  func() // releases the simulator's hung requests
	srv      *http.Server
	serveErr chan error // the result of http.Server.Serve, once it returns
}

// Listen serves h on addr (host:port; port 0 picks a free one) in the
// background. name prefixes errors ("sim", "kisisim"); release is called
// first on Close, to release requests a hang fault holds; logger may be
// nil.
func Listen(name string, h http.Handler, release func(), addr string, logger *slog.Logger) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	l := &Listener{
		URL:     "http://" + ln.Addr().String(),
		name:    name,
		release: release,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			// No WriteTimeout: latency and hang faults hold answers back on
			// purpose, for as long as the client waits.
		},
		serveErr: make(chan error, 1),
	}
	if logger != nil {
		l.srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	}
	go func() { l.serveErr <- l.srv.Serve(ln) }()
	return l, nil
}

// Close releases hung requests, stops accepting connections and waits (up
// to 5 s) for the requests in progress to finish.
func (l *Listener) Close() error {
	l.release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		_ = l.srv.Close()
		return fmt.Errorf("%s: shut down: %w", l.name, err)
	}
	return nil
}

// Run serves until ctx is done, then shuts down; it returns early with
// the server's error if serving fails.
func (l *Listener) Run(ctx context.Context, logger *slog.Logger) error {
	select {
	case <-ctx.Done():
	case err := <-l.serveErr:
		l.release()
		return fmt.Errorf("%s: serve: %w", l.name, err)
	}
	logger.Info(l.name + " shutting down")
	if err := l.Close(); err != nil {
		return err
	}
	if err := <-l.serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: serve: %w", l.name, err)
	}
	return nil
}
