package connlimit

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fixture accepts on a capped loopback listener, keeping what it accepts.
type fixture struct {
	l        *Listener
	accepted chan net.Conn
	mu       sync.Mutex
	refused  []Reason
}

func newFixture(t *testing.T, lim Limits) *fixture {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{accepted: make(chan net.Conn, 16)}
	f.l = Listen(inner, lim, func(_ net.Addr, why Reason) {
		f.mu.Lock()
		f.refused = append(f.refused, why)
		f.mu.Unlock()
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := f.l.Accept()
			if err != nil {
				return
			}
			f.accepted <- c
		}
	}()
	t.Cleanup(func() {
		f.l.Close()
		<-done
		close(f.accepted)
		for c := range f.accepted {
			c.Close()
		}
	})
	return f
}

// dial connects from the loopback address from (loopback has all of
// 127/8), and reports whether the server kept the connection: a refused
// one is closed at once, so a read ends with EOF.
func (f *fixture) dial(t *testing.T, from string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", f.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ended := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		ended <- err
	}()
	select {
	case sc := <-f.accepted:
		t.Cleanup(func() { sc.Close() })
		return sc, true
	case err := <-ended:
		if !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("connection neither accepted nor closed: read = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection neither accepted nor closed within 5 s")
	}
	return nil, false
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func (f *fixture) refusals() []Reason {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Reason(nil), f.refused...)
}

func TestPerAddr(t *testing.T) {
	f := newFixture(t, Limits{PerAddr: 2})
	a1, ok1 := f.dial(t, "127.0.0.2")
	_, ok2 := f.dial(t, "127.0.0.2")
	if !ok1 || !ok2 {
		t.Fatal("connections within the per-address cap were refused")
	}
	if _, ok := f.dial(t, "127.0.0.2"); ok {
		t.Fatal("a third connection from 127.0.0.2 was accepted over PerAddr 2")
	}
	if got := f.refusals(); len(got) != 1 || got[0] != OverPerAddr {
		t.Errorf("refusals = %v; want [per_addr]", got)
	}
	if _, ok := f.dial(t, "127.0.0.3"); !ok {
		t.Error("another address was refused")
	}
	// Closing gives the slot back, once however often it is closed.
	a1.Close()
	a1.Close()
	if got := f.l.Open(); got != 2 {
		t.Errorf("Open() = %d after closing one of 3 twice; want 2", got)
	}
	if _, ok := f.dial(t, "127.0.0.2"); !ok {
		t.Error("a connection was refused after one from the same address closed")
	}
	if _, ok := f.dial(t, "127.0.0.2"); ok {
		t.Error("the slot was given back twice")
	}
}

func TestMax(t *testing.T) {
	f := newFixture(t, Limits{Max: 2, PerAddr: 5})
	a, _ := f.dial(t, "127.0.0.2")
	f.dial(t, "127.0.0.3")
	if _, ok := f.dial(t, "127.0.0.4"); ok {
		t.Fatal("a third connection was accepted over Max 2")
	}
	if got := f.refusals(); len(got) != 1 || got[0] != OverMax {
		t.Errorf("refusals = %v; want [max]", got)
	}
	a.Close()
	if _, ok := f.dial(t, "127.0.0.4"); !ok {
		t.Error("a connection was refused after one closed")
	}
}

func TestExempt(t *testing.T) {
	f := newFixture(t, Limits{Max: 3, PerAddr: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.8/30")}})
	for range 2 {
		if _, ok := f.dial(t, "127.0.0.9"); !ok {
			t.Fatal("an exempt address was capped per address")
		}
	}
	if _, ok := f.dial(t, "127.0.0.2"); !ok {
		t.Fatal("refused under both caps")
	}
	if _, ok := f.dial(t, "127.0.0.9"); ok {
		t.Fatal("an exempt address went over Max")
	}
}

func TestNoCaps(t *testing.T) {
	f := newFixture(t, Limits{})
	for range 10 {
		if _, ok := f.dial(t, "127.0.0.2"); !ok {
			t.Fatal("refused with no caps")
		}
	}
}

func TestAddrKey(t *testing.T) {
	for _, tt := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7"), Port: 1}, "192.0.2.7/32"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:3:4:5:6"), Port: 1}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, "invalid Prefix"},
	} {
		if got := addrKey(tt.addr).String(); got != tt.want {
			t.Errorf("addrKey(%v) = %s; want %s", tt.addr, got, tt.want)
		}
	}
}
