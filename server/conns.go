package server

import (
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/cloudkey/cloudkey/internal/connlimit"
	"github.com/cloudkey/cloudkey/internal/rapidreset"
	"github.com/cloudkey/cloudkey/internal/telemetry"
)

// Connection lifetimes. A phone opens a connection when the app comes to
// the foreground, taps, and goes away; nothing legitimate keeps one open
// and silent for long, and every open connection holds a descriptor and
// some 100 KiB of buffers.
const (
	// defaultHandshakeTimeout bounds TLS, the HTTP/2 preface and the
	// first SETTINGS on the gRPC port: a client that sends nothing is
	// dropped after it (grpc-go's default is 120 s).
	defaultHandshakeTimeout = 10 * time.Second
	// defaultIdleTimeout closes a connection with no call in flight for
	// that long: gRPC's MaxConnectionIdle (GOAWAY; clients reconnect on
	// their next call) and HTTP's IdleTimeout.
	defaultIdleTimeout = 2 * time.Minute
	// maxConnectionAge ends even busy gRPC connections, so none is held
	// for ever, and clients rebalance across replicas; calls in flight
	// get maxConnectionAgeGrace to finish (an unlock is capped at a few
	// seconds; health watchers re-subscribe).
	maxConnectionAge      = 30 * time.Minute
	maxConnectionAgeGrace = 30 * time.Second
	// keepaliveTime and keepaliveTimeout: a connection silent for
	// keepaliveTime is pinged, and closed when the ping is not answered
	// within keepaliveTimeout (a phone that left the network).
	keepaliveTime    = time.Minute
	keepaliveTimeout = 20 * time.Second
	// minClientPingInterval: clients may ping this often, even with no
	// call in flight (mobile gRPC libraries keep connections warm so the
	// next tap is fast); more often is answered with GOAWAY
	// too_many_pings. Pings do not count as calls: an idle connection is
	// still closed after the idle timeout.
	minClientPingInterval = 20 * time.Second
)

// resetLimit closes a gRPC connection whose client resets more than 1000
// streams within 10 s (see rapidreset). A unary call is never reset by a
// client unless it is cancelled or its deadline passes; a phone makes a
// few calls a minute, and even a proxy carrying many users would need a
// hundred cancellations a second, for ten seconds, on one connection.
// The attack of issue 11 sent 226,000 a second. Passing the limit costs
// the client a reconnection, not an error on a call it cares about.
var resetLimit = rapidreset.Limit{Resets: 1000, Window: 10 * time.Second}

// grpcConnOptions are the gRPC server's connection lifetime options.
func grpcConnOptions(handshake, idle time.Duration) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(handshake),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     idle,
			MaxConnectionAge:      maxConnectionAge,
			MaxConnectionAgeGrace: maxConnectionAgeGrace,
			Time:                  keepaliveTime,
			Timeout:               keepaliveTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             minClientPingInterval,
			PermitWithoutStream: true,
		}),
	}
}

// DefaultConnLimits are the connection caps of the gRPC and HTTP
// listeners for a process that may open nofile descriptors
// (RLIMIT_NOFILE): a quarter (at least 256, at most half) stays in
// reserve for Redis, the access systems, files and the listeners
// themselves; of the rest, gRPC (the apps) gets two thirds and HTTP (the
// REST gateway, guest pages, /healthz) one third. One client address may
// hold an eighth of a listener's connections, at most 1024: enough for a
// building's residents behind one NAT, not enough for one client to
// fill the listener.
func DefaultConnLimits(nofile uint64) (grpcLim, httpLim connlimit.Limits) {
	n := int(min(nofile, 1<<24)) // RLIM_INFINITY is not a count
	reserve := max(n/4, min(256, n/2))
	usable := n - reserve
	grpcLim.Max = usable * 2 / 3
	httpLim.Max = usable - grpcLim.Max
	perAddr := func(total int) int { return max(min(total/8, 1024), 1) }
	grpcLim.PerAddr, httpLim.PerAddr = perAddr(grpcLim.Max), perAddr(httpLim.Max)
	return grpcLim, httpLim
}

// connLimits fills in lim's zero fields from def; negative ones mean no
// cap.
func connLimits(lim, def connlimit.Limits) connlimit.Limits {
	if lim.Max == 0 {
		lim.Max = def.Max
	}
	if lim.PerAddr == 0 {
		lim.PerAddr = def.PerAddr
	}
	return lim
}

// limitConns caps l's connections, logging (throttled by
// telemetry.LogHandler) and counting each refusal.
func limitConns(l net.Listener, name string, lim connlimit.Limits, log *slog.Logger, m *telemetry.Metrics) *connlimit.Listener {
	cl := connlimit.Listen(l, lim, func(remote net.Addr, why connlimit.Reason) {
		if m != nil {
			m.DropConn(name, string(why))
		}
		log.Warn("connection refused: over the connection cap", "listener", name, "cap", string(why),
			"max", lim.Max, "max_per_addr", lim.PerAddr, "remote", remote.String())
	})
	if m != nil {
		m.ObserveOpenConns(name, cl.Open)
	}
	return cl
}
