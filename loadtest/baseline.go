package loadtest

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The baseline service: one unary method taking and returning
// google.protobuf.Empty, declared by hand so no proto generation is needed.
const (
	noopService    = "cloudkey.loadtest.Baseline"
	noopFullMethod = "/" + noopService + "/Noop"
)

// noopServer is the baseline's (empty) implementation.
type noopServer interface{}

var noopServiceDesc = grpc.ServiceDesc{
	ServiceName: noopService,
	HandlerType: (*noopServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Noop",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		},
	}},
	Streams: []grpc.StreamDesc{},
}

// BaselineServer is a bare grpc-go server (default options, no
// interceptors) with one no-op unary method: what gRPC alone costs on
// this machine, the yardstick cloudkey's figures are divided by.
type BaselineServer struct {
	srv *grpc.Server
	lis net.Listener
}

// StartBaseline serves the baseline on addr (loopback only; port 0
// picks a free one).
func StartBaseline(addr string) (*BaselineServer, error) {
	if err := loopbackAddr("--serve-baseline", addr); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadtest: baseline listen on %s: %w", addr, err)
	}
	s := grpc.NewServer()
	s.RegisterService(&noopServiceDesc, struct{}{})
	go s.Serve(lis) //nolint:errcheck // returns when Close stops it
	return &BaselineServer{srv: s, lis: lis}, nil
}

// Addr is the baseline's host:port.
func (b *BaselineServer) Addr() string { return b.lis.Addr().String() }

// Close stops the server at once; calls in flight fail.
func (b *BaselineServer) Close() { b.srv.Stop() }

// ServeBaseline serves the baseline on addr until ctx ends, for peer
// tools (ghz) to be measured against the very server the harness's
// baseline is; loadtest/testdata/baseline.proto describes it to them.
func ServeBaseline(ctx context.Context, addr string, ready func(addr string)) error {
	b, err := StartBaseline(addr)
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
