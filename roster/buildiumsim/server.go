package buildiumsim

import (
	"context"
	"log/slog"

	"github.com/cloudkey/cloudkey/access/simhttp"
)

// Server is a Sim listening on a TCP address. Its methods include the
// Sim's, so tests can read counters and change data through it.
type Server struct {
	*Sim
	// URL is the base URL clients use, e.g. "http://127.0.0.1:41237";
	// paths start with /v1.
	URL string

	l *simhttp.Listener
}

// Start builds a simulator from seed and serves it on a free loopback
// port. Close the server when done.
func Start(seed Seed) (*Server, error) {
	s, err := New(seed)
	if err != nil {
		return nil, err
	}
	return Listen(s, "127.0.0.1:0", nil)
}

// Listen serves s on addr (host:port; port 0 picks a free one) in the
// background; logger may be nil.
func Listen(s *Sim, addr string, logger *slog.Logger) (*Server, error) {
	l, err := simhttp.Listen("buildiumsim", s.Handler(), s.Close, addr, logger)
	if err != nil {
		return nil, err
	}
	return &Server{Sim: s, URL: l.URL, l: l}, nil
}

// Close releases hung requests, stops accepting connections and waits (up
// to 5 s) for the requests in progress to finish.
func (srv *Server) Close() error { return srv.l.Close() }

// Serve runs s on addr until ctx is done, then shuts it down; logger may
// be nil.
func Serve(ctx context.Context, addr string, s *Sim, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv, err := Listen(s, addr, logger)
	if err != nil {
		return err
	}
	s.mu.RLock()
	leases, tenants := len(s.leases), len(s.tenants)
	s.mu.RUnlock()
	logger.Info("buildium simulator listening", "url", srv.URL, "leases", leases, "tenants", tenants)
	return srv.l.Run(ctx, logger)
}
