package twiliosim

import (
	"context"
	"log/slog"

	"github.com/cloudkey/cloudkey/access/simhttp"
)

// Server is a Sim listening on a TCP address. Its methods include the
// Sim's, so tests can read messages and change faults through it.
type Server struct {
	*Sim
	// URL is the base URL clients use instead of https://api.twilio.com,
	// e.g. "http://127.0.0.1:41237".
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
	return Listen(s, "127.0.0.1:0")
}

// Listen serves s on addr (host:port; port 0 picks a free one) in the
// background.
func Listen(s *Sim, addr string) (*Server, error) {
	return listen(s, addr, nil)
}

func listen(s *Sim, addr string, logger *slog.Logger) (*Server, error) {
	l, err := simhttp.Listen("twiliosim", s.Handler(), s.Close, addr, logger)
	if err != nil {
		return nil, err
	}
	return &Server{Sim: s, URL: l.URL, l: l}, nil
}

// Close stops the simulator (see Sim.Close), stops accepting connections
// and waits (up to 5 s) for the requests in progress to finish.
func (srv *Server) Close() error { return srv.l.Close() }

// Serve runs s on addr until ctx is done, then shuts it down, for a demo
// or a command. logger may be nil.
func Serve(ctx context.Context, addr string, s *Sim, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv, err := listen(s, addr, logger)
	if err != nil {
		return err
	}
	logger.Info("twilio simulator listening", "url", srv.URL, "accounts", len(s.accounts), "step_delay", s.step)
	return srv.l.Run(ctx, logger)
}
