package server

import (
	"context"
	"fmt"
	"slices"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/hotset"
	"github.com/cloudkey/cloudkey/unlock"
)

// A warm ListEntries answers from the user's view in the cache's process
// memory; building and encoding the same answer on every call cost more
// than the rest of the handler. So the answer is built and encoded once
// per cached view and sent from its encoded bytes: the server keeps each
// user's encoded answer with the version of the view it was built from
// (unlock.Listing.Version, the cache's View.Version), and reuses it while
// the version is the same.

// encodedMessage is an answer encoded once and shared by every call it is
// sent to: the gRPC codec sends wire, which must not be modified. It is a
// proto.Message too, for interceptors and the in-process gateway: only
// the encoded bytes are kept (the message they were encoded from would
// cost three times as much memory per user), and ProtoReflect decodes
// them into a new message each time it is called, which only the REST
// gateway does.
type encodedMessage struct {
	typ  protoreflect.MessageType
	wire mem.Buffer
}

func newEncodedMessage(m proto.Message) (*encodedMessage, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	return &encodedMessage{typ: m.ProtoReflect().Type(), wire: mem.SliceBuffer(b)}, nil
}

// ProtoReflect decodes the answer into a new message of its type.
func (m *encodedMessage) ProtoReflect() protoreflect.Message {
	out := m.typ.New()
	if err := proto.Unmarshal(m.wire.ReadOnlyData(), out.Interface()); err != nil {
		// What proto.Marshal wrote, it reads.
		panic("server: decode an encoded answer: " + err.Error())
	}
	return out
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
	if rs.answers == nil {
		if rs.answerMemory <= 0 {
			rs.answerMemory = DefaultAnswerMemory
		}
		rs.answers = newEncodedAnswers(rs.answerMemory)
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

// listEntries is the caller's entry list, encoded once per cached view.
func (s *residentServer) listEntries(ctx context.Context) (*encodedMessage, error) {
	email := callerEmail(ctx)
	l, err := s.svc.Listing(ctx, email, callerProperties(ctx))
	if err != nil {
		return nil, s.explainNotFound(ctx, err)
	}
	if m := s.answers.get(email, l.Version); m != nil {
		return m, nil
	}
	m, err := encodeListing(l.Entries())
	if err != nil {
		return nil, err
	}
	s.answers.put(email, l.Version, m)
	return m, nil
}

func encodeListing(es []unlock.Entry) (*encodedMessage, error) {
	out := &pb.ListEntriesResponse{Entries: make([]*pb.Entry, len(es))}
	for i, e := range es {
		out.Entries[i] = entryPB(e)
	}
	return newEncodedMessage(out)
}

// DefaultAnswerMemory bounds the encoded answers' memory when
// Config.AnswerMemory is not set (what cloudkey serve's --cache-memory
// gives them is set there).
const DefaultAnswerMemory = 32 << 20

// encodedAnswers keeps one encoded answer per user, with the version of
// the view it was built from; an answer is served only for that version,
// so a changed view (favourite, invalidation, expiry) is never answered
// from an old one. Memory is bounded by a budget in bytes, by an estimate
// of each answer's size (answerSize): users not read lately are dropped
// first (CLOCK, package hotset), as the cache's in-process layer drops
// their views. A nil *encodedAnswers keeps nothing.
type encodedAnswers struct {
	m *hotset.Map[encodedAnswer]
}

type encodedAnswer struct {
	version unlock.ListingVersion
	msg     *encodedMessage
}

func newEncodedAnswers(budget int64) *encodedAnswers {
	return &encodedAnswers{m: hotset.New[encodedAnswer](budget)}
}

// get returns email's answer built from the view of version, or nil.
// The zero version is never kept.
func (a *encodedAnswers) get(email string, version unlock.ListingVersion) *encodedMessage {
	if a == nil || version == (unlock.ListingVersion{}) {
		return nil
	}
	e, ok := a.m.Get(email)
	if !ok || e.version != version {
		return nil
	}
	return e.msg
}

// put keeps m as email's answer for version, unless a newer one is kept
// (versions grow: a newer view of any connection has a greater one).
func (a *encodedAnswers) put(email string, version unlock.ListingVersion, m *encodedMessage) {
	if a == nil || version == (unlock.ListingVersion{}) {
		return
	}
	a.m.Put(email, encodedAnswer{version: version, msg: m}, answerSize(email, m), func(old encodedAnswer, had bool) bool {
		return !had || !newer(old.version, version)
	})
}

var (
	answerSlotBytes = hotset.SlotOverhead[encodedAnswer]() + int64(unsafe.Sizeof(encodedMessage{}))
)

// answerSize estimates what keeping m under email costs: slot, key, the
// encoded bytes and their slice header.
func answerSize(email string, m *encodedMessage) int64 {
	return answerSlotBytes + int64(len(email)) + int64(m.wire.Len()) + 24
}

// newer reports whether a is a later listing than b: no connection's view
// in it is older, and one is newer.
func newer(a, b unlock.ListingVersion) bool {
	later := false
	for i := range a {
		if a[i] < b[i] {
			return false
		}
		later = later || a[i] > b[i]
	}
	return later
}
