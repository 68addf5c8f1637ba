package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/internal/redisconn"
)

// The baseline service, declared by hand so no proto generation is
// needed (loadtest/testdata/baseline.proto describes it to peer tools).
// Both methods take and return google.protobuf.Empty.
const (
	noopService         = "cloudkey.loadtest.Baseline"
	noopFullMethod      = "/" + noopService + "/Noop"
	noopHTTPFullMethod  = "/" + noopService + "/NoopHTTP"
	noopRedisFullMethod = "/" + noopService + "/NoopRedis"
)

// noopServer is the baseline's (empty) implementation.
type noopServer interface{}

// upstreamBody is what NoopHTTP posts: the size and shape of cloudkey's
// unlock request to the access system.
var upstreamBody = []byte(`{"entryId":101}`)

func noopServiceDesc(upstream *http.Client, upstreamURL string, floor *redisFloor) *grpc.ServiceDesc {
	return &grpc.ServiceDesc{
		ServiceName: noopService,
		HandlerType: (*noopServer)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Noop",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				return in, nil
			},
		}, {
			// NoopHTTP is Noop plus one HTTP/1.1 POST to a no-op handler
			// over loopback, with cloudkey's access client: the least any
			// RPC that calls an access system costs on this machine.
			MethodName: "NoopHTTP",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				if err := postNoop(ctx, upstream, upstreamURL); err != nil {
					return nil, status.Error(codes.Unavailable, err.Error())
				}
				return in, nil
			},
		}, {
			// NoopRedis is Noop plus one pipelined Redis round trip of
			// the shape of the cache's read of a user (cache.Store's
			// getRedis): the least a ListEntries not served from process
			// memory costs on this machine.
			MethodName: "NoopRedis",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := new(emptypb.Empty)
				if err := dec(in); err != nil {
					return nil, err
				}
				if err := floor.read(ctx); err != nil {
					return nil, status.Error(codes.Unavailable, err.Error())
				}
				return in, nil
			},
		}},
		Streams: []grpc.StreamDesc{},
	}
}

func postNoop(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(upstreamBody))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("upstream no-op answered %s", resp.Status)
	}
	return nil
}

// upstreamNoop is the HTTP side of NoopHTTP: it reads the body and
// answers a small JSON document, as an access system's unlock does.
func upstreamNoop(w http.ResponseWriter, r *http.Request) {
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"data":{}}`))
}

// BaselineServer is a bare grpc-go server (default options, no
// interceptors) with two no-op unary methods: Noop, what gRPC alone
// costs on this machine, the yardstick cloudkey's figures are divided
// by; and NoopHTTP, which also makes one loopback HTTP call to a bare
// net/http server, the floor under any call that reaches an access
// system (cloudkey's Unlock).
type BaselineServer struct {
	srv      *grpc.Server
	lis      net.Listener
	upstream *http.Server
	client   *http.Client
	floor    *redisFloor
}

// redisFloor is NoopRedis's Redis side: a user's three keys, written once
// with values of the size of the cache's (a generated user's account and
// five entries, one favourite), read as the cache reads them.
type redisFloor struct {
	rdb                   redis.UniversalClient // nil: NoopRedis fails
	acct, ents, favs      string
	acctVal, entsVal, fav string
}

const floorKeyPrefix = "ck-loadtest:floor:"

func newRedisFloor(ctx context.Context, redisURL string) (*redisFloor, error) {
	f := &redisFloor{
		acct: floorKeyPrefix + "acct:{user0@load.example.com}",
		ents: floorKeyPrefix + "ent:{user0@load.example.com}",
		favs: floorKeyPrefix + "fav:{user0@load.example.com}",
		// The sizes of the cache's encoded account (~80 bytes) and five
		// entries (~170 bytes).
		acctVal: strings.Repeat("a", 80), entsVal: strings.Repeat("e", 170), fav: "100001",
	}
	if redisURL == "" {
		return f, nil
	}
	rdb, err := redisconn.Dial(redisURL)
	if err != nil {
		return nil, fmt.Errorf("loadtest: noop-redis: %w", err)
	}
	pipe := rdb.Pipeline()
	pipe.Set(ctx, f.acct, f.acctVal, 24*time.Hour)
	pipe.Set(ctx, f.ents, f.entsVal, 24*time.Hour)
	pipe.SAdd(ctx, f.favs, f.fav)
	if _, err := pipe.Exec(ctx); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("loadtest: noop-redis: write its keys: %w", err)
	}
	f.rdb = rdb
	return f, nil
}

// read is the cache's read of one user: GET, GET, SMEMBERS, PTTL, PTTL in
// one pipeline, every key present.
func (f *redisFloor) read(ctx context.Context) error {
	if f.rdb == nil {
		return errors.New("noop-redis: no Redis (the baseline was started without one)")
	}
	pipe := f.rdb.Pipeline()
	a := pipe.Get(ctx, f.acct)
	e := pipe.Get(ctx, f.ents)
	pipe.SMembers(ctx, f.favs)
	pipe.PTTL(ctx, f.acct)
	pipe.PTTL(ctx, f.ents)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if len(a.Val()) != len(f.acctVal) || len(e.Val()) != len(f.entsVal) {
		return errors.New("noop-redis: its keys are gone")
	}
	return nil
}

func (f *redisFloor) close() {
	if f.rdb != nil {
		f.rdb.Close()
	}
}

// StartBaseline serves the baseline on addr (loopback only; port 0
// picks a free one). NoopHTTP posts to upstreamURL, or with "" to a
// no-op HTTP server of its own on a free loopback port. NoopRedis reads
// the Redis at redisURL (its keys are written there first), or with ""
// fails.
func StartBaseline(addr, upstreamURL, redisURL string) (*BaselineServer, error) {
	if err := loopbackAddr("--serve-baseline", addr); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadtest: baseline listen on %s: %w", addr, err)
	}
	floor, err := newRedisFloor(context.Background(), redisURL)
	if err != nil {
		lis.Close()
		return nil, err
	}
	b := &BaselineServer{lis: lis, client: openpath.NewHTTPClient(), floor: floor}
	if upstreamURL == "" {
		ulis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			lis.Close()
			floor.close()
			return nil, fmt.Errorf("loadtest: baseline upstream listen: %w", err)
		}
		b.upstream = serveUpstream(ulis)
		upstreamURL = "http://" + ulis.Addr().String() + "/unlock"
	}
	b.srv = grpc.NewServer()
	b.srv.RegisterService(noopServiceDesc(b.client, upstreamURL, floor), struct{}{})
	go b.srv.Serve(lis) //nolint:errcheck // returns when Close stops it
	return b, nil
}

// serveUpstream serves upstreamNoop on lis in the background.
func serveUpstream(lis net.Listener) *http.Server {
	srv := &http.Server{Handler: http.HandlerFunc(upstreamNoop), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lis.Close()
		}
	}()
	return srv
}

// ServeNoopUpstream serves only NoopHTTP's HTTP side on addr until ctx
// ends, so that it can run in a process of its own (on CPUs of its own)
// and be named with --noop-upstream, as the simulator is with
// --access-url.
func ServeNoopUpstream(ctx context.Context, addr string, ready func(url string)) error {
	if err := loopbackAddr("--serve-noop-upstream", addr); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("loadtest: no-op upstream listen on %s: %w", addr, err)
	}
	srv := serveUpstream(lis)
	defer srv.Close()
	if ready != nil {
		ready("http://" + lis.Addr().String() + "/unlock")
	}
	<-ctx.Done()
	return nil
}

// Addr is the baseline's host:port.
func (b *BaselineServer) Addr() string { return b.lis.Addr().String() }

// Close stops the server at once; calls in flight fail.
func (b *BaselineServer) Close() {
	b.srv.Stop()
	b.client.CloseIdleConnections()
	b.floor.close()
	if b.upstream != nil {
		_ = b.upstream.Close()
	}
}

// ServeBaseline serves the baseline on addr until ctx ends, for peer
// tools (ghz) to be measured against the very server the harness's
// baseline is; loadtest/testdata/baseline.proto describes it to them.
func ServeBaseline(ctx context.Context, addr string, ready func(addr string)) error {
	b, err := StartBaseline(addr, "", "")
	if err != nil {
		return err
	}
	defer b.Close()
	if ready != nil {
		ready(b.Addr())
	}
	<-ctx.Done()
	return nil
}
