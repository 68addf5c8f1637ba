package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// Admin API keys are scoped to one property or to the whole portfolio.
// Every admin RPC (each method of AdminService, found from its
// descriptor, so a new one is covered) refuses a key of another property
// or organisation before it reads or changes anything; a key of the
// default property (whose data every admin call serves today), a
// portfolio key, and a key made before properties for the organisation
// served are let through.
func TestAdminKeyScopes(t *testing.T) {
	rs := redistest.Start(t)
	d := newDemoStack(t, rs.URL(), "", 3*time.Second)
	keys := adminkey.NewStore(rs.Client(), cache.DefaultPrefix)
	mk := func(scope adminkey.Scope) string {
		plain, _, err := keys.CreateScoped(context.Background(), scope, "test")
		if err != nil {
			t.Fatal(err)
		}
		return plain
	}
	conn, err := grpc.NewClient(d.app.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	svc := pb.File_cloudkey_v1_admin_proto.Services().ByName("AdminService")
	call := func(key, method string) error {
		m := svc.Methods().ByName(protoreflect.Name(method))
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-auth-scheme", "api-token", "x-auth-apikey", key)
		in, out := dynamicpb.NewMessage(m.Input()), dynamicpb.NewMessage(m.Output())
		return conn.Invoke(ctx, "/cloudkey.v1.AdminService/"+method, in, out)
	}
	tests := []struct {
		name    string
		key     string
		refused bool
	}{
		{"another property", mk(adminkey.Scope{Property: "foundry-lofts"}), true},
		{"a property not served", mk(adminkey.Scope{Property: "elsewhere"}), true},
		{"another organisation", mk(adminkey.Scope{Org: "2"}), true},
		{"the default property", mk(adminkey.Scope{Property: "harbor-view"}), false},
		{"the portfolio", mk(adminkey.Scope{Portfolio: true}), false},
		{"the organisation, before properties", mk(adminkey.Scope{Org: d.app.Org}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range svc.Methods().Len() {
				method := string(svc.Methods().Get(i).Name())
				err := call(tc.key, method)
				code := status.Code(err)
				if tc.refused != (code == codes.PermissionDenied) || code == codes.Unauthenticated || code == codes.Unimplemented {
					t.Errorf("%s: %v (refused: want %v)", method, err, tc.refused)
				}
			}
		})
	}
	if svc.Methods().Len() < 10 {
		t.Fatalf("AdminService has %d methods; the descriptor was not read", svc.Methods().Len())
	}
}
