package server

import (
	"context"
	"fmt"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cloudkey/cloudkey/internal/telemetry"
)

// inprocConn is a grpc.ClientConnInterface that calls registered services
// directly, through the same interceptor chain as the gRPC server, so the
// REST gateway gets auth, error mapping and deadlines exactly as gRPC
// callers do, without a loopback network hop.
type inprocConn struct {
	methods     map[string]inprocMethod
	interceptor grpc.UnaryServerInterceptor
}

type inprocMethod struct {
	impl any
	desc grpc.MethodDesc
}

func newInprocConn(interceptor grpc.UnaryServerInterceptor) *inprocConn {
	return &inprocConn{methods: map[string]inprocMethod{}, interceptor: interceptor}
}

// register adds a service's unary methods, as grpc.Server.RegisterService does.
func (c *inprocConn) register(sd *grpc.ServiceDesc, impl any) {
	for _, m := range sd.Methods {
		c.methods["/"+sd.ServiceName+"/"+m.MethodName] = inprocMethod{impl: impl, desc: m}
	}
}

// Invoke runs a unary method in process.
func (c *inprocConn) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	m, ok := c.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "method %s not served in process", method)
	}
	// HTTP metrics and spans are labelled by the gateway's route pattern.
	if pattern, ok := runtime.HTTPPathPattern(ctx); ok {
		telemetry.SetRoute(ctx, pattern)
	}
	// What the gateway sends as outgoing metadata arrives as incoming.
	md, _ := metadata.FromOutgoingContext(ctx)
	ctx = metadata.NewIncomingContext(ctx, md)
	in, ok := args.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "in-process %s: request %T is not a proto message", method, args)
	}
	dec := func(v any) error {
		// The handler asks for a fresh request; hand it the gateway's.
		dst, ok := v.(proto.Message)
		if !ok {
			return fmt.Errorf("in-process %s: %T is not a proto message", method, v)
		}
		proto.Merge(dst, in)
		return nil
	}
	resp, err := m.desc.Handler(m.impl, ctx, dec, c.interceptor)
	if err != nil {
		return err
	}
	out, ok := reply.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "in-process %s: reply %T is not a proto message", method, reply)
	}
	proto.Merge(out, resp.(proto.Message))
	return nil
}

// NewStream is not supported: the gateway serves only unary methods here.
func (c *inprocConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "streaming is not served in process")
}
