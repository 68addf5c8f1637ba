package server

import (
	"context"
	"fmt"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/resident"
)

// A warm ListEntries answers from the user's snapshot in process memory;
// building and encoding the same answer on every call cost more than the
// rest of the handler. So the answer is built and encoded once per
// snapshot (resident.Service.Listing keeps it with the snapshot) and sent
// from its encoded bytes.

// encodedMessage is an answer encoded once and shared by every call it is
// sent to. The embedded message is what interceptors and the in-process
// gateway read (as a proto.Message); the gRPC codec sends wire. Neither
// may be modified.
type encodedMessage struct {
	proto.Message
	wire mem.Buffer
}

func newEncodedMessage(m proto.Message) (*encodedMessage, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	return &encodedMessage{Message: m, wire: mem.SliceBuffer(b)}, nil
}

// passThroughCodec is grpc-go's proto codec, except that it sends an
// *encodedMessage's bytes as they are.
type passThroughCodec struct{ encoding.CodecV2 }

func newPassThroughCodec() passThroughCodec {
	return passThroughCodec{encoding.GetCodecV2("proto")}
}

// Marshal returns an *encodedMessage's bytes (a SliceBuffer, which gRPC
// only reads and whose Free does nothing); anything else goes to proto.
func (c passThroughCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*encodedMessage); ok {
		return mem.BufferSlice{m.wire}, nil
	}
	return c.CodecV2.Marshal(v)
}

// residentServiceDesc is the generated ResidentService description with
// ListEntries served by listEntriesHandler: the generated handler returns
// the interface method's *pb.ListEntriesResponse, which cannot carry the
// encoded answer.
func residentServiceDesc(rs *residentServer) *grpc.ServiceDesc {
	sd := pb.ResidentService_ServiceDesc
	sd.Methods = slices.Clone(sd.Methods)
	for i := range sd.Methods {
		if sd.Methods[i].MethodName == "ListEntries" {
			sd.Methods[i].Handler = rs.listEntriesHandler
		}
	}
	rs.listInfo = &grpc.UnaryServerInfo{Server: rs, FullMethod: pb.ResidentService_ListEntries_FullMethodName}
	rs.listNext = func(ctx context.Context, _ any) (any, error) { return rs.listEntries(ctx) }
	return &sd
}

// listEntriesHandler is the generated handler's twin, through the same
// interceptors, answering with an *encodedMessage. The request is empty.
func (s *residentServer) listEntriesHandler(_ any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(pb.ListEntriesRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return s.listEntries(ctx)
	}
	return interceptor(ctx, in, s.listInfo, s.listNext)
}

// listEntries is the caller's entry list, encoded once per snapshot.
func (s *residentServer) listEntries(ctx context.Context) (*encodedMessage, error) {
	v, err := s.svc.Listing(ctx, callerEmail(ctx), encodeListing)
	if err != nil {
		return nil, err
	}
	return v.(*encodedMessage), nil
}

func encodeListing(es []resident.Entry) (any, error) {
	out := &pb.ListEntriesResponse{Entries: make([]*pb.Entry, len(es))}
	for i, e := range es {
		out.Entries[i] = entryPB(e)
	}
	return newEncodedMessage(out)
}
