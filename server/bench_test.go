package server_test

import (
	"context"
	"github.com/cloudkey/cloudkey/access/sim"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/emptypb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/internal/telemetry"
)

// The server benchmarks run the whole stack in one process (client,
// server, simulator, a real redis-server), so compare them with
// BenchmarkBareRPC from the same run, not across machines.

func noopHandler(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(emptypb.Empty)
	if err := dec(in); err != nil {
		return nil, err
	}
	return in, nil
}

var noopDesc = grpc.ServiceDesc{
	ServiceName: "bench.Noop",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Call", Handler: noopHandler}},
}

// BenchmarkBareRPC is the ceiling: a no-op unary RPC on the same machine.
func BenchmarkBareRPC(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	gs.RegisterService(&noopDesc, struct{}{})
	go gs.Serve(lis)
	defer gs.Stop()
	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	b.ReportAllocs()
	b.SetParallelism(16) // enough callers in flight to saturate two cores
	b.RunParallel(func(pb *testing.PB) {
		in, out := new(emptypb.Empty), new(emptypb.Empty)
		for pb.Next() {
			if err := conn.Invoke(context.Background(), "/bench.Noop/Call", in, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkListEntries lists erin's doors in the demo property, which
// has two systems (Openpath and Kisi): her view is read in both.
// BenchmarkListEntriesOneSystem is the same on a property with Openpath
// alone, as every deployment was before there were several systems.
func BenchmarkListEntries(b *testing.B) { benchListEntries(b, stackOpts{}) }

func BenchmarkListEntriesOneSystem(b *testing.B) {
	benchListEntries(b, stackOpts{sim: startSim(b)})
}

func benchListEntries(b *testing.B, o stackOpts) {
	st, ctx := warmStack(b, o)
	b.ReportAllocs()
	b.SetParallelism(16) // enough callers in flight to saturate two cores
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUnlockOne runs with the rate limits on (budgets no benchmark
// reaches), as `cloudkey serve` does, so their Redis round trip is
// measured; BenchmarkUnlockOneNoLimits is the same without them.
func BenchmarkUnlockOne(b *testing.B) {
	huge := ratelimit.Limit{Rate: 1 << 30, Period: time.Second, Burst: 1 << 30}
	benchUnlockOne(b, stackOpts{limits: ratelimit.Config{UnlockUser: huge, UnlockIP: huge}})
}

func BenchmarkUnlockOneNoLimits(b *testing.B) { benchUnlockOne(b, stackOpts{}) }

// BenchmarkUnlockOneOneSystem is BenchmarkUnlockOne on a property with
// Openpath alone.
func BenchmarkUnlockOneOneSystem(b *testing.B) {
	huge := ratelimit.Limit{Rate: 1 << 30, Period: time.Second, Burst: 1 << 30}
	benchUnlockOne(b, stackOpts{sim: startSim(b), limits: ratelimit.Config{UnlockUser: huge, UnlockIP: huge}})
}

// startSim is an Openpath simulator with the demo organisation.
func startSim(b *testing.B) *sim.Server {
	s, err := sim.Start(sim.DemoSeed())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchUnlockOne(b *testing.B, o stackOpts) {
	st, ctx := warmStack(b, o)
	req := &pb.UnlockRequest{EntryIds: []string{"101"}}
	b.ReportAllocs()
	b.SetParallelism(16) // enough callers in flight to saturate two cores
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			r, err := st.client.Unlock(ctx, req)
			if err != nil || r.Results[0].Status != pb.UnlockStatus_UNLOCK_STATUS_OK {
				b.Fatal(r, err)
			}
		}
	})
}

func warmStack(b *testing.B, o stackOpts) (*stack, context.Context) {
	st := newStack(b, o)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.token(b, "erin@example.com"))
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
		b.Fatal(err)
	}
	return st, ctx
}

// BenchmarkListEntriesTraced is BenchmarkListEntries with every call
// traced and exported (to a no-op exporter): the cost of tracing on.
// With tracing off (the other benchmarks) nothing is installed.
func BenchmarkListEntriesTraced(b *testing.B) {
	st := newStack(b, stackOpts{tracing: telemetry.TracingConfig{Exporter: tracetest.NewNoopExporter()}})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+st.token(b, "erin@example.com"))
	if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(p *testing.PB) {
		for p.Next() {
			if _, err := st.client.ListEntries(ctx, &pb.ListEntriesRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
