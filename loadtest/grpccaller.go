package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// Requests without fields are shared by every call: gRPC only reads them.
var (
	getMeReq = &pb.GetMeRequest{}
	listReq  = &pb.ListEntriesRequest{}
	noopReq  = &emptypb.Empty{}
)

// dialConns opens n connections to addr and waits (up to 5 s) until they
// are ready, so that connection setup is not measured. Several
// connections spread the load over several HTTP/2 transports and their
// writer goroutines, which one connection would serialise.
func dialConns(ctx context.Context, addr string, n int) ([]*grpc.ClientConn, error) {
	conns := make([]*grpc.ClientConn, 0, n)
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for range n {
		// passthrough: the address is a literal, no resolver round trip.
		c, err := grpc.NewClient("passthrough:///"+addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(8<<20)))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("loadtest: dial %s: %w", addr, err)
		}
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, c := range conns {
		c.Connect()
		for s := c.GetState(); s != connectivity.Ready; s = c.GetState() {
			if !c.WaitForStateChange(ctx, s) {
				closeAll()
				return nil, fmt.Errorf("loadtest: gRPC connection to %s not ready in 5s (state %v)", addr, s)
			}
		}
	}
	return conns, nil
}

// grpcCaller sends a scenario's requests over gRPC. Worker w uses
// connection w mod len(conns): a fixed round robin needing no shared
// counter. Responses are pooled; requests are prebuilt per user.
type grpcCaller struct {
	kind  Kind
	conns []*grpc.ClientConn
	users *users
	// noopMethod is the baseline's full method name.
	noopMethod string

	meResp, listResp, unlockResp, emptyResp sync.Pool
}

func newGRPCCaller(kind Kind, conns []*grpc.ClientConn, u *users) *grpcCaller {
	return &grpcCaller{
		kind: kind, conns: conns, users: u, noopMethod: noopFullMethod,
		meResp:     sync.Pool{New: func() any { return new(pb.GetMeResponse) }},
		listResp:   sync.Pool{New: func() any { return new(pb.ListEntriesResponse) }},
		unlockResp: sync.Pool{New: func() any { return new(pb.UnlockResponse) }},
		emptyResp:  sync.Pool{New: func() any { return new(emptypb.Empty) }},
	}
}

// Call implements Caller for a user drawn uniformly.
func (g *grpcCaller) Call(ctx context.Context, worker int) Outcome {
	if g.kind.baseline() {
		return g.callUser(ctx, worker, nil)
	}
	u, err := g.users.pick()
	if err != nil {
		return Outcome{Method: MethodGetMe, Err: errHarness}
	}
	return g.callUser(ctx, worker, u)
}

func (g *grpcCaller) callUser(ctx context.Context, worker int, u *user) Outcome {
	conn := g.conns[worker%len(g.conns)]
	switch g.kind {
	case KindNoop:
		// The bare RPC: no metadata, as peer tools send it by default.
		// Carrying the token is part of what cloudkey's calls cost.
		return g.invoke(ctx, conn, MethodNoop, g.noopMethod, noopReq, &g.emptyResp)
	case KindNoopHTTP:
		return g.invoke(ctx, conn, MethodNoopHTTP, noopHTTPFullMethod, noopReq, &g.emptyResp)
	case KindNoopRedis:
		return g.invoke(ctx, conn, MethodNoopRedis, noopRedisFullMethod, noopReq, &g.emptyResp)
	}
	ctx = metadata.NewOutgoingContext(ctx, u.md)
	switch kind := pickKind(g.kind); kind {
	case KindMe:
		return g.invoke(ctx, conn, MethodGetMe, pb.ResidentService_GetMe_FullMethodName, getMeReq, &g.meResp)
	case KindList:
		return g.invoke(ctx, conn, MethodListEntries, pb.ResidentService_ListEntries_FullMethodName, listReq, &g.listResp)
	case KindUnlock, KindUnlockMulti, KindUnlockCross:
		req := u.unlock1
		switch kind {
		case KindUnlockMulti:
			req = u.unlockN
		case KindUnlockCross:
			c := u.cross.Load()
			if c == nil {
				return Outcome{Method: MethodUnlock, Err: errNoCross}
			}
			req = c.req
		}
		resp := g.unlockResp.Get().(*pb.UnlockResponse)
		o := Outcome{Method: MethodUnlock}
		if err := conn.Invoke(ctx, pb.ResidentService_Unlock_FullMethodName, req, resp); err != nil {
			o.Err = codeName(status.Code(err))
		} else {
			o = unlockOutcome(o, resp.GetResults())
		}
		resp.Reset()
		g.unlockResp.Put(resp)
		return o
	}
	return Outcome{Method: string(g.kind), Err: errHarness} // not reached: kinds are validated
}

func (g *grpcCaller) invoke(ctx context.Context, conn *grpc.ClientConn, method, fullMethod string, req proto.Message, pool *sync.Pool) Outcome {
	resp := pool.Get().(proto.Message)
	err := conn.Invoke(ctx, fullMethod, req, resp)
	proto.Reset(resp)
	pool.Put(resp)
	if err != nil {
		return Outcome{Method: method, Err: codeName(status.Code(err))}
	}
	return Outcome{Method: method}
}

// unlockOutcome counts an Unlock response's results.
func unlockOutcome(o Outcome, results []*pb.UnlockResult) Outcome {
	for _, r := range results {
		o.addUnlockResult(r.GetStatus())
	}
	if len(results) == 0 {
		o.Err = errEmptyUnlock
	}
	return o
}

// addUnlockResult counts one Unlock result; a response with a result that
// is not OK counts as an error, labelled by the first such status.
func (o *Outcome) addUnlockResult(s pb.UnlockStatus) {
	if s == pb.UnlockStatus_UNLOCK_STATUS_OK {
		o.UnlockOK++
		return
	}
	o.UnlockNotOK++
	if o.Err == "" {
		o.Err = unlockErrLabel(s)
	}
}

// Error labels the harness itself produces.
const (
	errHarness     = "harness error"
	errEmptyUnlock = "unlock with no results"
)

var unlockErrLabels = func() map[pb.UnlockStatus]string {
	m := map[pb.UnlockStatus]string{}
	for v, name := range pb.UnlockStatus_name {
		m[pb.UnlockStatus(v)] = "unlock result " + name
	}
	return m
}()

func unlockErrLabel(s pb.UnlockStatus) string {
	if l, ok := unlockErrLabels[s]; ok {
		return l
	}
	return "unlock result " + s.String()
}

// codeName is the gRPC code's name (codes.Code.String returns constants
// for the defined codes).
func codeName(c codes.Code) string { return c.String() }

// pickKind resolves the mix into one of its parts: 70% list, 25% unlock,
// 5% me; other kinds are returned as they are.
func pickKind(k Kind) Kind {
	if k != KindMix {
		return k
	}
	switch r := rand.IntN(100); {
	case r < 70:
		return KindList
	case r < 95:
		return KindUnlock
	default:
		return KindMe
	}
}
