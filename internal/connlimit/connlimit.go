// Package connlimit caps the connections a listener holds open, overall
// and per client address, so that idle connections cannot take every
// file descriptor of the process (after which nothing, not even a health
// check or a Redis dial, can open one).
//
// It works at the listener, below TLS: wrap the TCP listener, then hand
// it to grpc.Server.Serve or http.Server.Serve(TLS). A connection over a
// cap is accepted and closed at once, so it neither waits in the kernel's
// backlog nor holds a descriptor, and its client fails fast instead of
// hanging.
//
// (golang.org/x/net/netutil.LimitListener caps the total by not calling
// Accept while full, which leaves new connections, including those of
// well-behaved clients, waiting unseen in the backlog; it cannot say a
// connection was refused, nor cap per address.)
//
// It imports only the standard library; the transport (server) wraps its
// listeners with it.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Limits are one listener's caps; zero or negative means no cap.
type Limits struct {
	// Max is the most connections open at once.
	Max int
	// PerAddr is the most connections open at once from one client
	// address: an IPv4 address, or an IPv6 /64 (one subscriber's
	// allocation, so an attacker cannot take a new address per
	// connection). Clients behind carrier or building NAT share one.
	PerAddr int
	// Exempt are client addresses PerAddr does not apply to: proxies,
	// which carry many clients' connections. Max still counts them.
	Exempt []netip.Prefix
}

// Reason says which cap refused a connection.
type Reason string

const (
	OverMax     Reason = "max"      // Limits.Max
	OverPerAddr Reason = "per_addr" // Limits.PerAddr
)

// Listener is a net.Listener enforcing Limits.
type Listener struct {
	net.Listener
	lim      Limits
	onRefuse func(remote net.Addr, why Reason)

	mu     sync.Mutex
	open   int
	byAddr map[netip.Prefix]int
}

// Listen wraps l. onRefuse, when set, is called (on the accepting
// goroutine) with each connection refused; it should be cheap, e.g. a
// counter and a throttled log line.
func Listen(l net.Listener, lim Limits, onRefuse func(remote net.Addr, why Reason)) *Listener {
	return &Listener{Listener: l, lim: lim, onRefuse: onRefuse, byAddr: make(map[netip.Prefix]int)}
}

// Accept returns the next connection within the caps; those over a cap
// are closed as they come.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := l.addrKey(c.RemoteAddr())
		why := l.take(key)
		if why == "" {
			return &conn{Conn: c, l: l, key: key}, nil
		}
		if l.onRefuse != nil {
			l.onRefuse(c.RemoteAddr(), why)
		}
		c.Close()
	}
}

// Open is the number of connections open (accepted and not yet closed).
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// take counts a connection from key in, or says which cap refuses it.
func (l *Listener) take(key netip.Prefix) Reason {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Max > 0 && l.open >= l.lim.Max {
		return OverMax
	}
	if key.IsValid() {
		if l.lim.PerAddr > 0 && l.byAddr[key] >= l.lim.PerAddr {
			return OverPerAddr
		}
		l.byAddr[key]++
	}
	l.open++
	return ""
}

func (l *Listener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key.IsValid() {
		if n := l.byAddr[key] - 1; n > 0 {
			l.byAddr[key] = n
		} else {
			delete(l.byAddr, key)
		}
	}
}

// addrKey is the address a PerAddr cap counts by; the zero Prefix (no
// per-address cap) for exempt addresses and those that are not IP.
func (l *Listener) addrKey(a net.Addr) netip.Prefix {
	k := addrKey(a)
	for _, p := range l.lim.Exempt {
		if k.IsValid() && p.Contains(k.Addr()) {
			return netip.Prefix{}
		}
	}
	return k
}

func addrKey(a net.Addr) netip.Prefix {
	var ip netip.Addr
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.Prefix{}
}

// conn gives its slot back when closed, once however often Close is
// called.
type conn struct {
	net.Conn
	l      *Listener
	key    netip.Prefix
	closed atomic.Bool
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.key)
	}
	return c.Conn.Close()
}

// DescriptorLimit is the process's limit on open files (RLIMIT_NOFILE,
// the soft limit, which the Go runtime raises to the hard one at start).
func DescriptorLimit() (uint64, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return r.Cur, nil
}
