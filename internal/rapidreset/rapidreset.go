// Package rapidreset closes HTTP/2 connections whose client resets
// streams faster than any real client does: the "rapid reset" attack
// (CVE-2023-44487), where a client opens streams and resets them at
// once, over and over, so the server starts a handler per stream while
// the client never has more than a few open and pays next to nothing.
//
// grpc-go (as of v1.85) has no such check: its only defence is
// MaxConcurrentStreams, which bounds the handlers running at once, not
// the rate they are started at. Go's own HTTP/2 server (net/http over
// TLS) does have one: it closes a connection with ENHANCE_YOUR_CALM
// ("too_many_early_resets") when more than four times
// MaxConcurrentStreams handlers are queued.
//
// Credentials wraps a server's transport credentials so that every
// connection, after its (TLS) handshake, is a Conn: it reads the frame
// headers of what the client sends, counts RST_STREAM frames, and past
// the Limit sends GOAWAY(ENHANCE_YOUR_CALM) and closes the connection.
// Reads and writes cost a scan of the 9-byte frame headers; nothing is
// allocated or copied.
//
// It imports grpc's credentials only; server installs it, and nothing in
// the domain imports it.
package rapidreset

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// Limit is the reset rate that closes a connection: more than Resets
// RST_STREAM frames within Window.
type Limit struct {
	Resets int
	Window time.Duration
}

// ErrTooManyResets is what reading a closed Conn returns.
var ErrTooManyResets = errors.New("rapidreset: the client reset streams too fast")

// Credentials returns creds whose server connections are Conns enforcing
// lim; onTrip, when set, is called with each connection closed.
func Credentials(creds credentials.TransportCredentials, lim Limit, onTrip func(remote net.Addr)) credentials.TransportCredentials {
	return &guarded{TransportCredentials: creds, lim: lim, onTrip: onTrip}
}

type guarded struct {
	credentials.TransportCredentials
	lim    Limit
	onTrip func(net.Addr)
}

func (g *guarded) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := g.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return c, info, err
	}
	return NewConn(c, g.lim, g.onTrip), info, nil
}

func (g *guarded) Clone() credentials.TransportCredentials {
	return &guarded{TransportCredentials: g.TransportCredentials.Clone(), lim: g.lim, onTrip: g.onTrip}
}

// HTTP/2 framing (RFC 9113 §3.4, §4.1, §6).
const (
	clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	headerLen     = 9
	frameHeaders  = 0x1
	frameRST      = 0x3
	frameGoAway   = 0x7
	// errEnhanceYourCalm is GOAWAY's error code for a peer "exhibiting a
	// behavior that might be generating excessive load".
	errEnhanceYourCalm = 0xb
)

// Conn is the server side of an HTTP/2 connection, after the TLS
// handshake, watched for resets. Read must not be called concurrently
// with itself (grpc-go has one reader per connection); Write may be.
type Conn struct {
	net.Conn
	lim    Limit
	onTrip func(net.Addr)

	// Inbound, owned by the reader.
	preface   int // preface bytes still to skip
	hdr       [headerLen]byte
	hdrN      int // bytes of hdr read so far
	skip      int // payload bytes of the current frame still to skip
	resets    int // in the window
	since     time.Time
	maxStream uint32 // highest stream the client opened
	tripped   bool

	// Outbound: where the frame boundaries are, so a GOAWAY is never
	// written into the middle of another frame.
	wmu   sync.Mutex
	whdrN int // bytes of the current frame's header written
	wlen  int // its payload length, as far as known
	wskip int // payload bytes still to be written
	wshut bool
}

// NewConn watches c, a server connection whose next inbound bytes are the
// client preface.
func NewConn(c net.Conn, lim Limit, onTrip func(net.Addr)) *Conn {
	return &Conn{Conn: c, lim: lim, onTrip: onTrip, preface: len(clientPreface)}
}

// Read reads, and closes the connection when what was read takes the
// client past the limit.
func (c *Conn) Read(p []byte) (int, error) {
	if c.tripped {
		return 0, ErrTooManyResets
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.scan(p[:n]) {
		c.trip()
		return 0, ErrTooManyResets
	}
	return n, err
}

// scan walks the frame headers in p and reports whether the limit was
// passed.
func (c *Conn) scan(p []byte) bool {
	if c.preface > 0 {
		k := min(c.preface, len(p))
		c.preface -= k
		p = p[k:]
	}
	over := false
	for len(p) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(p))
			c.skip -= k
			p = p[k:]
			continue
		}
		if c.hdrN == 0 && len(p) >= headerLen { // the whole header at hand
			over = c.frame(p[:headerLen]) || over
			p = p[headerLen:]
			continue
		}
		k := copy(c.hdr[c.hdrN:], p)
		c.hdrN += k
		p = p[k:]
		if c.hdrN == headerLen {
			c.hdrN = 0
			over = c.frame(c.hdr[:]) || over
		}
	}
	return over
}

// frame notes one inbound frame header; it reports whether the limit was
// passed. The clock is read twice per Limit.Resets resets, not per frame.
func (c *Conn) frame(h []byte) bool {
	c.skip = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	switch h[3] {
	case frameHeaders:
		if id := binary.BigEndian.Uint32(h[5:]) & (1<<31 - 1); id > c.maxStream {
			c.maxStream = id
		}
	case frameRST:
		c.resets++
		switch {
		case c.resets == 1:
			c.since = time.Now()
		case c.resets > c.lim.Resets:
			now := time.Now()
			if now.Sub(c.since) <= c.lim.Window {
				return true
			}
			c.resets, c.since = 1, now
		}
	}
	return false
}

// trip sends GOAWAY(ENHANCE_YOUR_CALM), when no other frame is half
// written, and closes the connection.
func (c *Conn) trip() {
	c.tripped = true
	// A writer blocked on a client that does not read holds the lock:
	// then the connection is closed without a GOAWAY.
	if c.wmu.TryLock() {
		if c.whdrN == 0 && c.wskip == 0 {
			const debug = "too_many_resets"
			var f [headerLen + 8 + len(debug)]byte
			f[2] = byte(8 + len(debug))
			f[3] = frameGoAway
			binary.BigEndian.PutUint32(f[9:], c.maxStream)
			binary.BigEndian.PutUint32(f[13:], errEnhanceYourCalm)
			copy(f[17:], debug)
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			c.Conn.Write(f[:])
		}
		c.wshut = true
		c.wmu.Unlock()
	}
	c.Conn.Close()
	if c.onTrip != nil {
		c.onTrip(c.RemoteAddr())
	}
}

// Write writes p, keeping track of the frame boundaries in it.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wshut {
		return 0, ErrTooManyResets
	}
	n, err := c.Conn.Write(p)
	for q := p[:n]; len(q) > 0; {
		if c.wskip > 0 {
			k := min(c.wskip, len(q))
			c.wskip -= k
			q = q[k:]
			continue
		}
		// A header byte: the first three are the payload length.
		if c.whdrN < 3 {
			c.wlen = c.wlen<<8 | int(q[0])
		}
		c.whdrN++
		q = q[1:]
		if c.whdrN == headerLen {
			c.whdrN, c.wskip, c.wlen = 0, c.wlen, 0
		}
	}
	return n, err
}
