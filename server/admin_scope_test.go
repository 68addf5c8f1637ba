package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/cache"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// portfolioMethods answer every key with what it may see, instead of
// refusing keys of other properties.
var portfolioMethods = map[string]bool{"ListProperties": true, "GetProperty": true}

// portfolioOnly refuse every key but a portfolio key when called with an
// empty request: creating and deleting properties is the portfolio's,
// and an update names no property a narrower key may change
// (TestAdminPropertyEditScopes covers them with properties named).
var portfolioOnly = map[string]bool{"CreateProperty": true, "DeleteProperty": true, "UpdateProperty": true}

// Admin API keys are scoped to one property or to the whole portfolio.
// Every admin RPC (each method of AdminService, found from its
// descriptor, so a new one is covered) refuses a key of a property not
// served or of another organisation before it reads or changes anything;
// a key of any property served (acting on its own), a portfolio key, and
// a key made before properties for the organisation served are let
// through. Every such method has a property field: a property key naming
// another property is refused whether that one exists or not (the two
// answers alike), a portfolio key naming one not served is NOT_FOUND.
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
	call := func(key, method, property string) error {
		m := svc.Methods().ByName(protoreflect.Name(method))
		ctx := metadata.AppendToOutgoingContext(context.Background(), "x-auth-scheme", "api-token", "x-auth-apikey", key)
		in, out := dynamicpb.NewMessage(m.Input()), dynamicpb.NewMessage(m.Output())
		if property != "" {
			f := m.Input().Fields().ByName("property")
			if f == nil {
				t.Fatalf("%s has no property field", method)
			}
			in.Set(f, protoreflect.ValueOfString(property))
		}
		return conn.Invoke(ctx, "/cloudkey.v1.AdminService/"+method, in, out)
	}
	foundry, portfolio, legacy := mk(adminkey.Scope{Property: "foundry-lofts"}), mk(adminkey.Scope{Portfolio: true}), mk(adminkey.Scope{Org: d.app.Org})
	tests := []struct {
		name     string
		key      string
		property string // the request's
		want     codes.Code
		refused  bool // want is the answer (else: anything but a refusal)
	}{
		{"another property's key, on its own", foundry, "", 0, false},
		{"another property's key, naming its own", foundry, "foundry-lofts", 0, false},
		{"a property not served", mk(adminkey.Scope{Property: "elsewhere"}), "", codes.PermissionDenied, true},
		{"another organisation", mk(adminkey.Scope{Org: "2"}), "", codes.PermissionDenied, true},
		{"the default property", mk(adminkey.Scope{Property: "harbor-view"}), "", 0, false},
		{"the portfolio", portfolio, "", 0, false},
		{"the portfolio, naming a property", portfolio, "foundry-lofts", 0, false},
		{"the organisation, before properties", legacy, "", 0, false},
		{"a property key naming another property", foundry, "harbor-view", codes.PermissionDenied, true},
		{"a property key naming one not served", foundry, "nowhere", codes.PermissionDenied, true},
		{"a key made before properties naming another property", legacy, "foundry-lofts", codes.PermissionDenied, true},
		{"the portfolio naming one not served", portfolio, "nowhere", codes.NotFound, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := range svc.Methods().Len() {
				method := string(svc.Methods().Get(i).Name())
				if portfolioMethods[method] {
					continue // each key sees its own properties there (TestAdminProperties)
				}
				if portfolioOnly[method] {
					if tc.property != "" {
						continue // their property field is the property itself
					}
					err := call(tc.key, method, "")
					code := status.Code(err)
					if (tc.key != portfolio) != (code == codes.PermissionDenied) || code == codes.Unauthenticated || code == codes.Unimplemented {
						t.Errorf("%s: %v (refused: want %v)", method, err, tc.key != portfolio)
					}
					continue
				}
				err := call(tc.key, method, tc.property)
				code := status.Code(err)
				refused := code == codes.PermissionDenied || code == codes.NotFound && strings.Contains(status.Convert(err).Message(), "property")
				if code == codes.Unauthenticated || code == codes.Unimplemented ||
					tc.refused && code != tc.want || !tc.refused && refused {
					t.Errorf("%s: %v (want refused %v: %v)", method, err, tc.refused, tc.want)
				}
			}
		})
	}
	// Naming another property and naming one not served answer alike.
	other, none := call(foundry, "ListContacts", "harbor-view"), call(foundry, "ListContacts", "nowhere")
	if strings.ReplaceAll(status.Convert(other).Message(), "harbor-view", "X") != strings.ReplaceAll(status.Convert(none).Message(), "nowhere", "X") {
		t.Errorf("another property: %v; one not served: %v", other, none)
	}
	if svc.Methods().Len() < 10 {
		t.Fatalf("AdminService has %d methods; the descriptor was not read", svc.Methods().Len())
	}
}

// The properties served, as each key may see them: a portfolio key every
// property, a property key its own (another property is NOT_FOUND, as
// one that does not exist), a key made before properties the default
// property; no secret is ever in an answer.
func TestAdminProperties(t *testing.T) {
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
	get := func(key, path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+d.app.Server.HTTPAddr()+path, nil)
		req.Header.Set("x-auth-scheme", "api-token")
		req.Header.Set("x-auth-apikey", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	portfolio, harbor, foundry := mk(adminkey.Scope{Portfolio: true}), mk(adminkey.Scope{Property: "harbor-view"}), mk(adminkey.Scope{Property: "foundry-lofts"})
	legacy := mk(adminkey.Scope{Org: d.app.Org})
	tests := []struct {
		name, key, path string
		code            int
		want, wantNot   []string
	}{
		{"portfolio lists both", portfolio, "/v1/admin/properties", 200,
			[]string{`"propertyId":"harbor-view"`, `"propertyId":"foundry-lofts"`, `"connectionId":"harbor-view.kisi"`, `"breakerState":"closed"`}, nil},
		{"harbor sees its own", harbor, "/v1/admin/properties", 200, []string{`"propertyId":"harbor-view"`}, []string{"foundry-lofts"}},
		{"foundry sees its own", foundry, "/v1/admin/properties", 200, []string{`"propertyId":"foundry-lofts"`}, []string{"harbor-view"}},
		{"legacy key: the default", legacy, "/v1/admin/properties", 200, []string{`"propertyId":"harbor-view"`, `"default":true`}, []string{"foundry-lofts"}},
		{"get own", foundry, "/v1/admin/properties/foundry-lofts", 200, []string{`"system":"kisi"`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.key, tc.path)
			if code != tc.code {
				t.Fatalf("%d %s", code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("answer lacks %s: %s", w, body)
				}
			}
			for _, w := range append(tc.wantNot, kisisim.DemoHarborAPIKey, kisisim.DemoFoundryAPIKey, sim.DemoServicePassword) {
				if strings.Contains(body, w) {
					t.Errorf("answer shows %q: %s", w, body)
				}
			}
		})
	}
	otherCode, other := get(harbor, "/v1/admin/properties/foundry-lofts")
	noneCode, none := get(harbor, "/v1/admin/properties/nowhere")
	if otherCode != 404 || noneCode != 404 || strings.ReplaceAll(other, "foundry-lofts", "X") != strings.ReplaceAll(none, "nowhere", "X") {
		t.Errorf("another property: %d %s; one that does not exist: %d %s", otherCode, other, noneCode, none)
	}
}
