package kisisim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server is a Sim listening on a TCP address. Its methods include the
// Sim's, so tests can read counters and change state through it.
type Server struct {
	*Sim
	// URL is the base URL clients use, e.g. "http://127.0.0.1:41237".
	URL string

	srv      *http.Server
	serveErr chan error // the result of http.Server.Serve, once it returns
}

// Start builds a simulator from seed and serves it on a free loopback port.
// Close the server when done.
func Start(seed Seed) (*Server, error) {
	s, err := New(seed)
	if err != nil {
		return nil, err
	}
	return Listen(s, "127.0.0.1:0")
}

// Listen serves s on addr (host:port; port 0 picks a free one) in the
// background.
func Listen(s *Sim, addr string) (*Server, error) {
	return listen(s, addr, nil)
}

func listen(s *Sim, addr string, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kisisim: listen on %s: %w", addr, err)
	}
	srv := &Server{
		Sim: s,
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			// No WriteTimeout: latency and hang faults hold answers back on
			// purpose, for as long as the client waits.
		},
		serveErr: make(chan error, 1),
	}
	if logger != nil {
		srv.srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	}
	go func() { srv.serveErr <- srv.srv.Serve(ln) }()
	return srv, nil
}

// Close releases hung requests, stops accepting connections and waits (up
// to 5 s) for the requests in progress to finish.
func (srv *Server) Close() error {
	srv.Sim.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.srv.Shutdown(ctx); err != nil {
		_ = srv.srv.Close()
		return fmt.Errorf("kisisim: shut down: %w", err)
	}
	return nil
}

// Serve runs s on addr until ctx is done, then shuts it down. It is the
// body of `cloudkey sim --kind kisi`: build s with New (from DemoSeed or
// GenerateSeed), then SetFaults and SetRateLimit from the flags. logger
// may be nil.
func Serve(ctx context.Context, addr string, s *Sim, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv, err := listen(s, addr, logger)
	if err != nil {
		return err
	}
	f := s.Faults()
	rate, burst := s.RateLimit()
	locks, users := 0, 0
	for _, o := range s.orgs {
		locks += len(o.locks)
		users += len(o.users)
	}
	logger.Info("kisi simulator listening",
		"url", srv.URL,
		"orgs", len(s.orgs),
		"users", users,
		"locks", locks,
		"rate_limit", rate, "rate_burst", burst,
		"latency", f.Latency, "jitter", f.Jitter, "error_rate", f.ErrorRate, "error_status", f.ErrorStatus,
		"rate_limit_rate", f.RateLimitRate, "retry_after", f.RetryAfter, "hang", f.Hang)
	select {
	case <-ctx.Done():
	case err := <-srv.serveErr:
		s.Close()
		return fmt.Errorf("kisisim: serve: %w", err)
	}
	logger.Info("kisi simulator shutting down")
	if err := srv.Close(); err != nil {
		return err
	}
	if err := <-srv.serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kisisim: serve: %w", err)
	}
	return nil
}
