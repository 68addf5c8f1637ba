package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/server"
)

// waitClosed fails t unless the server closes c within d; it returns
// the frames' types read before. Pings are answered, as a client's
// HTTP/2 stack would.
func waitClosed(t *testing.T, c net.Conn, d time.Duration) []http2.FrameType {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	fr := http2.NewFramer(c, c)
	var seen []http2.FrameType
	for {
		f, err := fr.ReadFrame()
		if err == nil {
			seen = append(seen, f.Header().Type)
			if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
				fr.WritePing(true, p.Data)
			}
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection still open after %v (frames read: %v)", d, seen)
		}
		return seen
	}
}

func TestSilentConnectionDropped(t *testing.T) {
	b := newBareServer(t, server.Config{HandshakeTimeout: 300 * time.Millisecond})
	for name, send := range map[string]string{"nothing": "", "part of the preface": http2.ClientPreface[:10]} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", b.srv.GRPCAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, send)
			waitClosed(t, c, 5*time.Second)
		})
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	b := newBareServer(t, server.Config{IdleTimeout: 500 * time.Millisecond})
	r := dialRawH2(t, b.srv.GRPCAddr()) // preface and SETTINGS, then nothing
	seen := waitClosed(t, r.conn, 5*time.Second)
	if len(seen) == 0 || seen[len(seen)-1] != http2.FrameGoAway { // the second, final GOAWAY
		t.Errorf("frames before the close: %v; want a GOAWAY last", seen)
	}
	checkHealthy(t, b.srv.GRPCAddr())
}

// childEnv, when set, makes the test binary a capped server (serveChild).
const childEnv = "CLOUDKEY_TEST_CHILD_SERVER"

// childNofile is the descriptor limit the child serves under.
const childNofile = 4096

// serveChild serves with RLIMIT_NOFILE lowered to childNofile and the
// default connection caps, prints its addresses and serves until stdin
// closes. Lowering the limit in the test process would starve the other
// tests.
func serveChild() int {
	lim := unix.Rlimit{Cur: childNofile, Max: childNofile}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, server.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Tokens: &countingVerifier{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: telemetry.NewMetrics(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("%s %s\n", srv.GRPCAddr(), srv.HTTPAddr())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// On 4,096 descriptors, thousands of idle connections neither take the
// descriptors Redis and the access systems need, nor stop /healthz or
// other clients' gRPC calls.
func TestIdleConnectionsUnderLowDescriptorLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(exe, "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=1")
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- child.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("child server: %v", err)
			}
		case <-time.After(15 * time.Second):
			child.Process.Kill()
			<-done
			t.Error("child server did not stop")
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child server: %v", err)
	}
	var grpcAddr, httpAddr string
	fmt.Sscan(line, &grpcAddr, &httpAddr)
	grpcDef, _ := server.DefaultConnLimits(childNofile)

	// The attack of issue 11: connections that send the HTTP/2 preface
	// and SETTINGS, then nothing.
	idle := func(t *testing.T, n int, sources []string) (closeAll func()) {
		conns := make([]net.Conn, n)
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for i := w; i < n; i += 32 {
					d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(sources[i%len(sources)])}, Timeout: 2 * time.Second}
					c, err := d.Dial("tcp", grpcAddr)
					if err != nil {
						continue // the backlog is full: not what this test is about
					}
					conns[i] = c
					io.WriteString(c, http2.ClientPreface)
					http2.NewFramer(c, nil).WriteSettings()
				}
			})
		}
		wg.Wait()
		return func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}
	}
	healthz := func(t *testing.T) {
		t.Helper()
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get("http://" + httpAddr + "/healthz")
		if err != nil {
			t.Fatalf("/healthz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/healthz: %s", resp.Status)
		}
		c.CloseIdleConnections()
	}
	// settled waits until the server has seen every connection: each is
	// open or was refused.
	counts := func(t *testing.T) (open, refused int) {
		m := scrape(t, httpAddr)
		return int(m[`cloudkey_connections_open{listener="grpc"}`]),
			int(m[`cloudkey_connections_dropped_total{listener="grpc",reason="max"}`] + m[`cloudkey_connections_dropped_total{listener="grpc",reason="per_addr"}`])
	}
	settled := func(t *testing.T, n, refusedBefore int) (open, refused int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			open, refused = counts(t)
			if refused -= refusedBefore; open+refused >= n || time.Now().After(deadline) {
				return open, refused
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", child.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	checkReserve := func(t *testing.T) {
		t.Helper()
		if used := fds(); used > childNofile-512 {
			t.Errorf("the server holds %d of its %d descriptors; want at least 512 in reserve", used, childNofile)
		}
	}

	t.Run("one address", func(t *testing.T) {
		const n = 4500 // more than the descriptors
		_, before := counts(t)
		closeAll := idle(t, n, []string{"127.0.0.2"})
		defer closeAll()
		open, refused := settled(t, n, before)
		t.Logf("%d idle connections from one address: %d open, %d refused, %d descriptors in use", n, open, refused, fds())
		if open > grpcDef.PerAddr {
			t.Errorf("%d connections open from one address; want at most %d", open, grpcDef.PerAddr)
		}
		checkReserve(t)
		healthz(t)
		checkHealthy(t, grpcAddr) // from 127.0.0.1
	})
	t.Run("many addresses", func(t *testing.T) {
		var sources []string
		for i := range 40 {
			sources = append(sources, fmt.Sprintf("127.0.1.%d", i+1))
		}
		const n = 3000 // more than the cap
		_, before := counts(t)
		closeAll := idle(t, n, sources)
		open, refused := settled(t, n, before)
		t.Logf("%d idle connections from %d addresses: %d open, %d refused, %d descriptors in use", n, len(sources), open, refused, fds())
		if open > grpcDef.Max {
			t.Errorf("%d connections open; want at most %d", open, grpcDef.Max)
		}
		checkReserve(t)
		healthz(t)
		// The gRPC port is full: a new client is refused at once, not
		// left hanging, and gets in once the idle connections go.
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
			t.Error("a health check got through a full gRPC port")
		}
		closeAll()
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Errorf("health check after the idle connections closed: %v", err)
		}
	})
}

// scrape reads the server's metrics as name{labels} → value.
func scrape(t *testing.T, httpAddr string) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// A client resetting streams as fast as it opens them (rapid reset) has
// its connection closed; other clients are served throughout.
func TestRapidResetClosesConnection(t *testing.T) {
	b := newBareServer(t, server.Config{})
	r := dialRawH2(t, b.srv.GRPCAddr())
	block := r.headers("/grpc.health.v1.Health/Check")
	const pairs = 20_000 // 20 times the limit
	sent := 0
	// Bounded: a server that keeps the connection may stop reading when
	// its answers are not read.
	r.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for id := uint32(1); sent < pairs; id += 2 {
		if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
			break
		}
		if err := r.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			break
		}
		sent++
	}
	seen := waitClosed(t, r.conn, 10*time.Second)
	t.Logf("closed after %d HEADERS+RST_STREAM pairs sent; frames read: %v", sent, seen)
	if sent == pairs {
		// Every write went through: the connection must at least be
		// closed now, with a GOAWAY.
		if len(seen) == 0 || seen[len(seen)-1] != http2.FrameGoAway {
			t.Errorf("last frames %v; want a GOAWAY", seen[max(0, len(seen)-3):])
		}
	}
	checkHealthy(t, b.srv.GRPCAddr())
}
