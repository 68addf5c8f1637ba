package server_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/server"
)

// countingVerifier refuses every token and counts the calls.
type countingVerifier struct{ calls atomic.Int64 }

func (v *countingVerifier) Verify(string) (identity.Claims, error) {
	v.calls.Add(1)
	return identity.Claims{}, identity.ErrInvalidToken
}

// bareServer is the transport alone on loopback (no Redis, no access
// system): enough for what is refused before any service runs.
type bareServer struct {
	srv    *server.Server
	tokens *countingVerifier
	health healthpb.HealthClient
	http   string
}

func newBareServer(t testing.TB, cfg server.Config) *bareServer {
	t.Helper()
	b := &bareServer{tokens: &countingVerifier{}}
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Tokens = b.tokens
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	b.srv, b.http = srv, "http://"+srv.HTTPAddr()
	b.health = healthpb.NewHealthClient(dialGRPC(t, srv.GRPCAddr()))
	return b
}

func dialGRPC(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// checkHealthy fails t unless a health check on a new connection answers
// SERVING.
func checkHealthy(t testing.TB, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := dialGRPC(t, addr)
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check on a new connection = %v, %v; want SERVING", r, err)
	}
}

// rawH2 is an HTTP/2 client speaking frames, as an attacker's would: no
// client-side limits.
type rawH2 struct {
	conn net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	buf  bytes.Buffer
}

func dialRawH2(t testing.TB, addr string) *rawH2 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawH2{conn: c, fr: http2.NewFramer(c, c)}
	r.enc = hpack.NewEncoder(&r.buf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return r
}

// headers encodes a gRPC request's headers for method plus extra ones
// (name, value pairs).
func (r *rawH2) headers(method string, extra ...string) []byte {
	r.buf.Reset()
	fields := append([]string{":method", "POST", ":scheme", "http", ":path", method, ":authority", "cloudkey",
		"content-type", "application/grpc", "te", "trailers"}, extra...)
	for i := 0; i+1 < len(fields); i += 2 {
		r.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return r.buf.Bytes()
}

// writeHeaders sends block as HEADERS plus CONTINUATION frames of at most
// 16 KiB (the default SETTINGS_MAX_FRAME_SIZE).
func (r *rawH2) writeHeaders(stream uint32, block []byte, endStream bool) error {
	const maxFrame = 16 << 10
	first := block[:min(len(block), maxFrame)]
	block = block[len(first):]
	err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		chunk := block[:min(len(block), maxFrame)]
		block = block[len(chunk):]
		err = r.fr.WriteContinuation(stream, len(block) == 0, chunk)
	}
	return err
}

// grpcStatusOf reads frames until stream's trailers, a reset of the
// stream or of the connection, or the deadline: it returns the
// grpc-status of the answer, or "" and what ended the stream instead.
func (r *rawH2) grpcStatusOf(stream uint32, within time.Duration) (string, error) {
	r.conn.SetReadDeadline(time.Now().Add(within))
	defer r.conn.SetReadDeadline(time.Time{})
	dec := hpack.NewDecoder(4096, nil)
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			return "", err
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			fields, err := dec.DecodeFull(f.HeaderBlockFragment())
			if err != nil {
				return "", err
			}
			for _, hf := range fields {
				if hf.Name == "grpc-status" && f.StreamID == stream {
					return hf.Value, nil
				}
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == stream {
				return "", http2.StreamError{StreamID: stream, Code: f.ErrCode}
			}
		case *http2.GoAwayFrame:
			return "", http2.ConnectionError(f.ErrCode)
		}
	}
}

func TestLargeMetadataRefused(t *testing.T) {
	b := newBareServer(t, server.Config{})
	huge := strings.Repeat("x", 1<<20)

	t.Run("grpc client", func(t *testing.T) {
		// grpc-go honours the SETTINGS_MAX_HEADER_LIST_SIZE the server
		// advertises and refuses to send.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-padding", huge)
		if _, err := b.health.Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
			t.Fatal("health check with 1 MiB of metadata succeeded; want it refused")
		}
	})
	t.Run("raw client", func(t *testing.T) {
		// An attacker's client does not: the server itself refuses.
		r := dialRawH2(t, b.srv.GRPCAddr())
		err := r.writeHeaders(1, r.headers("/grpc.health.v1.Health/Check", "x-padding", huge), false)
		if err == nil {
			// An empty request message, then end of stream.
			r.fr.WriteData(1, true, []byte{0, 0, 0, 0, 0})
		}
		// A connection closed while the headers are sent is refusal too.
		code, err := r.grpcStatusOf(1, 10*time.Second)
		if code != "" {
			t.Fatalf("1 MiB of metadata was answered with grpc-status %s; want the stream or connection refused", code)
		}
		t.Logf("refused with %v", err)
	})
	// The server is unharmed.
	checkHealthy(t, b.srv.GRPCAddr())
	checkHealthy(t, b.srv.GRPCAddr())
}

func TestOversizedTokenNeverReachesVerifier(t *testing.T) {
	b := newBareServer(t, server.Config{})
	resident := pb.NewResidentServiceClient(dialGRPC(t, b.srv.GRPCAddr()))
	long := strings.Repeat("a", identity.MaxTokenLen+1) // under the header limit
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, err := resident.GetMe(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+long), &pb.GetMeRequest{})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(status.Convert(err).Message(), "8192 bytes") {
		t.Errorf("gRPC with a %d-byte token = %v; want Unauthenticated naming the 8192 bytes allowed", len(long), err)
	}
	req, _ := http.NewRequest("GET", b.http+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+long)
	resp, body := sendReq(t, req)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "8192 bytes") {
		t.Errorf("REST with a %d-byte token = %d %s; want 401 naming the 8192 bytes allowed", len(long), resp.StatusCode, body)
	}
	if n := b.tokens.calls.Load(); n != 0 {
		t.Errorf("the verifier was called %d times with oversized tokens; want 0", n)
	}

	// A token at the limit is verified (and refused by the verifier).
	_, err = resident.GetMe(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+long[1:]), &pb.GetMeRequest{})
	if status.Code(err) != codes.Unauthenticated || b.tokens.calls.Load() != 1 {
		t.Errorf("a %d-byte token: %v after %d verifier calls; want Unauthenticated from the verifier", len(long)-1, err, b.tokens.calls.Load())
	}
}

func sendReq(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}
