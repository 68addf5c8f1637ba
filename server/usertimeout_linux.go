package server

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// userTimeoutListener sets TCP_USER_TIMEOUT on each accepted connection:
// a write stuck on a peer that vanished is cut off by the kernel after
// timeout. grpc-go sets it itself only on a bare *net.TCPConn, which the
// connection caps' wrapper hides from it.
type userTimeoutListener struct {
	net.Listener
	ms int
}

func withUserTimeout(l net.Listener, timeout time.Duration) net.Listener {
	return &userTimeoutListener{Listener: l, ms: int(timeout / time.Millisecond)}
}

func (l *userTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			// Best effort, as in grpc-go: the keepalive pings still
			// close a dead peer's connection without it.
			_ = raw.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, l.ms)
			})
		}
	}
	return c, nil
}
