package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/cache"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// replicas are two cloudkeys on one Redis: the demo (replica 1, with the
// simulators) and a second serving the same harbor-view through a
// properties file.
type replicas struct {
	one, two *demoStack
	admin    [2]pb.AdminServiceClient
	keys     *adminkey.Store
	rs       *redistest.Server
}

func startReplicas(t *testing.T) *replicas {
	t.Helper()
	rs := redistest.Start(t)
	one := newDemoStack(t, rs.URL(), "", 3*time.Second)
	t.Setenv("CK_TEST_OPENPATH_PASSWORD", sim.DemoServicePassword)
	t.Setenv("CK_TEST_KISI_KEY", kisisim.DemoHarborAPIKey)
	file := filepath.Join(t.TempDir(), "properties.yaml")
	yaml := fmt.Sprintf(`properties:
  - id: harbor-view
    name: Harbor View
    timezone: America/New_York
    access:
      - {system: openpath, url: %q, org: %q, email: %q, password_env: CK_TEST_OPENPATH_PASSWORD}
      - {system: kisi, url: %q, api_key_env: CK_TEST_KISI_KEY}
`, one.app.Sim.URL, one.app.Org, sim.DemoServiceEmail, one.app.KisiSim.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	v0, err := propertyredis.New(rs.Client(), nil).Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	two := newPropertyStack(t, rs.URL(), "", file, 3*time.Second)
	// The file names harbor-view as the demo stored it: nothing changed.
	if v, _ := propertyredis.New(rs.Client(), nil).Version(t.Context()); v != v0 {
		t.Errorf("a second start with the same harbor-view moved the version from %d to %d", v0, v)
	}
	r := &replicas{one: one, two: two, keys: adminkey.NewStore(rs.Client(), cache.DefaultPrefix), rs: rs}
	for i, d := range []*demoStack{one, two} {
		conn, err := grpc.NewClient(d.app.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		r.admin[i] = pb.NewAdminServiceClient(conn)
	}
	return r
}

func (r *replicas) key(t *testing.T, scope adminkey.Scope) context.Context {
	t.Helper()
	plain, _, err := r.keys.CreateScoped(t.Context(), scope, "test")
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(t.Context(), "x-auth-scheme", "api-token", "x-auth-apikey", plain)
}

// within polls f until it returns nil, for up to 10 s (a change
// reaches every replica within a second; the margin is for a loaded
// machine, not a measure of speed).
func within(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func foundryTwo(url, apiKey string) *pb.PropertyInput {
	return &pb.PropertyInput{PropertyId: "foundry-two", Name: "Foundry Two", Access: []*pb.ConnectionInput{
		{System: "kisi", Url: url, ApiKey: apiKey},
	}}
}

// A property created through the admin API on one replica serves
// residents on the other; its update and its removal reach it too; the
// default property cannot be removed.
func TestPropertyCreatedOnOneReplicaServesOnTheOther(t *testing.T) {
	r := startReplicas(t)
	portfolio := r.key(t, adminkey.Scope{Portfolio: true})
	kisiURL := r.one.app.KisiSim.URL

	created, err := r.admin[0].CreateProperty(portfolio, &pb.CreatePropertyRequest{Property: foundryTwo(kisiURL, kisisim.DemoFoundryAPIKey)})
	if err != nil {
		t.Fatal(err)
	}
	c := created.GetProperty().GetConnections()
	if len(c) != 1 || !c[0].GetSecretSet() || c[0].GetConnectionId() != "foundry-two.kisi" || strings.Contains(created.String(), kisisim.DemoFoundryAPIKey) {
		t.Errorf("created: %v", created)
	}
	raw, err := r.rs.Client().HGet(t.Context(), propertyredis.KeyAll, "foundry-two").Result()
	if err != nil || strings.Contains(raw, kisisim.DemoFoundryAPIKey) {
		t.Errorf("stored: %s, %v; want the key sealed", raw, err)
	}

	// Replica 2 serves hank's doors at foundry-two.
	entries := func() ([]*pb.Entry, error) {
		resp, err := r.two.client.ListEntries(r.two.asFor(t, "hank@example.com", "foundry-two"), &pb.ListEntriesRequest{})
		return resp.GetEntries(), err
	}
	within(t, "replica 2 lists foundry-two", func() error {
		es, err := entries()
		if err == nil && len(es) != 2 {
			err = fmt.Errorf("%d entries, want Front Door and Bike Room", len(es))
		}
		return err
	})

	// Renamed on replica 2 (the API key not resent: the stored one stays),
	// seen on replica 1.
	in := foundryTwo(kisiURL, "")
	in.Name = "Foundry Two Lofts"
	if _, err := r.admin[1].UpdateProperty(portfolio, &pb.UpdatePropertyRequest{PropertyId: "foundry-two", Property: in}); err != nil {
		t.Fatal(err)
	}
	within(t, "replica 1 shows the new name", func() error {
		got, err := r.admin[0].GetProperty(portfolio, &pb.GetPropertyRequest{PropertyId: "foundry-two"})
		if err == nil && got.GetProperty().GetName() != "Foundry Two Lofts" {
			err = fmt.Errorf("name %q", got.GetProperty().GetName())
		}
		return err
	})
	if es, err := entries(); err != nil || len(es) != 2 {
		t.Errorf("after the update, with the stored key: %d entries, %v", len(es), err)
	}

	// The default property is not removed.
	_, err = r.admin[0].DeleteProperty(portfolio, &pb.DeletePropertyRequest{PropertyId: "harbor-view"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "default") {
		t.Errorf("delete of the default: %v, want FailedPrecondition", err)
	}
	if _, err := r.admin[0].GetProperty(portfolio, &pb.GetPropertyRequest{PropertyId: "harbor-view"}); err != nil {
		t.Errorf("harbor-view after a refused delete: %v", err)
	}

	// What hank's use left: his Kisi login made for foundry-two (at Kisi
	// and sealed here) and his cached view of it.
	kisiSim := r.one.app.KisiSim
	if n := kisiSim.OrgDeviceLogins(kisisim.DemoFoundryOrgID); n == 0 {
		t.Fatal("no Kisi login made for hank at foundry-two: the clean-up below would prove nothing")
	}
	leftovers := func() ([]string, error) {
		var keys []string
		for _, pattern := range []string{"ck:v1:kisi-login:{foundry-two.kisi}:*", "*foundry-two.kisi|*"} {
			ks, err := r.rs.Client().Keys(t.Context(), pattern).Result()
			if err != nil {
				return nil, err
			}
			keys = append(keys, ks...)
		}
		return keys, nil
	}
	if ks, err := leftovers(); err != nil || len(ks) < 2 {
		t.Fatalf("before the removal: stored login and cached view %v, %v; want both", ks, err)
	}

	// Removed on replica 1: replica 2 no longer serves it; its Kisi logins
	// are deleted at Kisi and here, its cached data dropped.
	if _, err := r.admin[0].DeleteProperty(portfolio, &pb.DeletePropertyRequest{PropertyId: "foundry-two"}); err != nil {
		t.Fatal(err)
	}
	within(t, "foundry-two's Kisi logins and cached data gone", func() error {
		if n := kisiSim.OrgDeviceLogins(kisisim.DemoFoundryOrgID); n != 0 {
			return fmt.Errorf("%d device logins left at Kisi", n)
		}
		ks, err := leftovers()
		if err == nil && len(ks) > 0 {
			err = fmt.Errorf("left in Redis: %v", ks)
		}
		return err
	})
	within(t, "replica 2 stops serving foundry-two", func() error {
		if _, err := entries(); status.Code(err) != codes.PermissionDenied {
			return fmt.Errorf("ListEntries = %v, want PermissionDenied (a property not served)", err)
		}
		return nil
	})
	if _, err := r.admin[1].GetProperty(portfolio, &pb.GetPropertyRequest{PropertyId: "foundry-two"}); status.Code(err) != codes.NotFound {
		t.Errorf("replica 2 GetProperty of the removed property: %v", err)
	}
	_, err = r.admin[0].DeleteProperty(portfolio, &pb.DeletePropertyRequest{PropertyId: "foundry-two"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("second delete: %v, want NotFound", err)
	}
}

// A property whose connection fails its live check is not saved, and the
// answer names the connection and why; bad input names the field.
func TestCreatePropertyChecksConnections(t *testing.T) {
	r := startReplicas(t)
	portfolio := r.key(t, adminkey.Scope{Portfolio: true})
	kisiURL, opURL := r.one.app.KisiSim.URL, r.one.app.Sim.URL
	openpathProp := func(url, org, password string) *pb.PropertyInput {
		return &pb.PropertyInput{PropertyId: "foundry-two", Access: []*pb.ConnectionInput{
			{System: "kisi", Url: kisiURL, ApiKey: kisisim.DemoFoundryAPIKey},
			{System: "openpath", Url: url, Org: org, Email: sim.DemoServiceEmail, Password: password},
		}}
	}
	tests := []struct {
		name string
		in   *pb.PropertyInput
		code codes.Code
		want []string
	}{
		{"wrong Kisi key", foundryTwo(kisiURL, "not-the-key"), codes.FailedPrecondition, []string{"property.access[0] (kisi " + kisiURL + ")", "bad credentials"}},
		{"wrong Openpath password", openpathProp(opURL, "", "wrong-password"), codes.FailedPrecondition, []string{"property.access[1] (openpath " + opURL + ")", "bad credentials"}},
		{"unreachable", openpathProp("http://127.0.0.1:1", "", sim.DemoServicePassword), codes.FailedPrecondition, []string{"property.access[1] (openpath http://127.0.0.1:1)", "unreachable"}},
		{"unknown organisation", openpathProp(opURL, "424242", sim.DemoServicePassword), codes.FailedPrecondition, []string{"property.access[1]", "unknown organisation"}},
		{"no url", foundryTwo("", "k"), codes.InvalidArgument, []string{"property.access[0].url"}},
		{"no key", foundryTwo(kisiURL, ""), codes.InvalidArgument, []string{"property.access[0].api_key"}},
		{"bad id", &pb.PropertyInput{PropertyId: "Foundry Two", Access: foundryTwo(kisiURL, "k").Access}, codes.InvalidArgument, []string{"property.property_id"}},
		{"no connection", &pb.PropertyInput{PropertyId: "foundry-two"}, codes.InvalidArgument, []string{"property.access"}},
		{"an existing id", &pb.PropertyInput{PropertyId: "foundry-lofts", Access: foundryTwo(kisiURL, kisisim.DemoFoundryAPIKey).Access}, codes.AlreadyExists, []string{"foundry-lofts"}},
	}
	v0, _ := propertyredis.New(r.rs.Client(), nil).Version(t.Context())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.admin[0].CreateProperty(portfolio, &pb.CreatePropertyRequest{Property: tc.in})
			if status.Code(err) != tc.code {
				t.Fatalf("CreateProperty = %v, want %v", err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(status.Convert(err).Message(), w) {
					t.Errorf("answer %q lacks %q", status.Convert(err).Message(), w)
				}
			}
			for _, secret := range []string{"not-the-key", "wrong-password", sim.DemoServicePassword, kisisim.DemoFoundryAPIKey} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("answer shows a secret: %v", err)
				}
			}
		})
	}
	if v, _ := propertyredis.New(r.rs.Client(), nil).Version(t.Context()); v != v0 {
		t.Errorf("refused creations moved the version from %d to %d: something was saved", v0, v)
	}
	if _, err := r.admin[0].GetProperty(portfolio, &pb.GetPropertyRequest{PropertyId: "foundry-two"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetProperty after refused creations: %v", err)
	}
}

// Who may change what: a property key only its own property, never
// create or delete; a key made before properties only the default.
func TestAdminPropertyEditScopes(t *testing.T) {
	r := startReplicas(t)
	kisiURL := r.one.app.KisiSim.URL
	foundry := r.key(t, adminkey.Scope{Property: "foundry-lofts"})
	legacy := r.key(t, adminkey.Scope{Org: r.one.app.Org})
	update := func(id string) *pb.UpdatePropertyRequest {
		return &pb.UpdatePropertyRequest{PropertyId: id, Property: &pb.PropertyInput{Name: "Renamed " + id, Access: []*pb.ConnectionInput{
			{System: "kisi", Url: kisiURL}}}}
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"property key creates", func() error {
			_, err := r.admin[0].CreateProperty(foundry, &pb.CreatePropertyRequest{Property: foundryTwo(kisiURL, kisisim.DemoFoundryAPIKey)})
			return err
		}, codes.PermissionDenied},
		{"property key deletes its own", func() error {
			_, err := r.admin[0].DeleteProperty(foundry, &pb.DeletePropertyRequest{PropertyId: "foundry-lofts"})
			return err
		}, codes.PermissionDenied},
		{"property key updates another", func() error { _, err := r.admin[0].UpdateProperty(foundry, update("harbor-view")); return err }, codes.PermissionDenied},
		{"legacy key updates another", func() error { _, err := r.admin[0].UpdateProperty(legacy, update("foundry-lofts")); return err }, codes.PermissionDenied},
		{"legacy key deletes", func() error {
			_, err := r.admin[0].DeleteProperty(legacy, &pb.DeletePropertyRequest{PropertyId: "foundry-lofts"})
			return err
		}, codes.PermissionDenied},
		{"property key updates its own", func() error { _, err := r.admin[0].UpdateProperty(foundry, update("foundry-lofts")); return err }, codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); status.Code(err) != tc.code {
				t.Errorf("%v, want %v", err, tc.code)
			}
		})
	}
	got, err := r.admin[1].GetProperty(r.key(t, adminkey.Scope{Portfolio: true}), &pb.GetPropertyRequest{PropertyId: "harbor-view"})
	if err != nil || got.GetProperty().GetName() != "Harbor View" {
		t.Errorf("harbor-view after refused updates: %v, %v", got, err)
	}
}

// A connection from the properties file that fails at first use (here a
// wrong password: the file's connections are not checked live) is shown
// by GetProperty and ListProperties with why and when, without its
// secret, and logged once, not per request.
func TestFirstUseFailureIsReported(t *testing.T) {
	rs := redistest.Start(t)
	demo := newDemoStack(t, rs.URL(), "", 3*time.Second)
	t.Setenv("CK_TEST_OPENPATH_PASSWORD", sim.DemoServicePassword)
	t.Setenv("CK_TEST_WRONG_PASSWORD", "not-the-password-Vb8")
	file := filepath.Join(t.TempDir(), "properties.yaml")
	yaml := fmt.Sprintf(`properties:
  - id: harbor-view
    default: true
    access:
      - {system: openpath, url: %[1]q, email: %[2]q, password_env: CK_TEST_OPENPATH_PASSWORD}
  - id: broken
    access:
      - {system: openpath, url: %[1]q, email: %[2]q, password_env: CK_TEST_WRONG_PASSWORD}
`, demo.app.Sim.URL, sim.DemoServiceEmail)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newPropertyStack(t, redistest.Start(t).URL(), "", file, 3*time.Second)
	conn, err := grpc.NewClient(d.app.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	admin := pb.NewAdminServiceClient(conn)
	plain, _, err := adminkey.NewStore(d.app.Redis, cache.DefaultPrefix).CreateScoped(t.Context(), adminkey.Scope{Portfolio: true}, "test")
	if err != nil {
		t.Fatal(err)
	}
	portfolio := metadata.AppendToOutgoingContext(t.Context(), "x-auth-scheme", "api-token", "x-auth-apikey", plain)

	before, err := admin.GetProperty(portfolio, &pb.GetPropertyRequest{PropertyId: "broken"})
	if err != nil || before.GetProperty().GetConnections()[0].GetLastError() != "" {
		t.Fatalf("before first use: %v, %v", before, err)
	}
	for _, email := range []string{"alice@example.com", "erin@example.com", "bob@example.com"} {
		if _, err := d.client.ListEntries(d.asFor(t, email, "broken"), &pb.ListEntriesRequest{}); err == nil {
			t.Fatalf("%s listed at a property whose password is wrong", email)
		}
	}
	got, err := admin.GetProperty(portfolio, &pb.GetPropertyRequest{PropertyId: "broken"})
	if err != nil {
		t.Fatal(err)
	}
	c := got.GetProperty().GetConnections()[0]
	if !strings.Contains(c.GetLastError(), "bad credentials") || c.GetLastErrorAt() == nil || !c.GetSecretSet() {
		t.Errorf("the failing connection: %v", c)
	}
	list, err := admin.ListProperties(portfolio, &pb.ListPropertiesRequest{})
	if err != nil || len(list.GetProperties()) != 2 || list.GetProperties()[0].GetConnections()[0].GetLastError() != "" ||
		list.GetProperties()[1].GetConnections()[0].GetLastError() == "" {
		t.Errorf("ListProperties: %v, %v", list, err)
	}
	if strings.Contains(got.String()+list.String(), "Vb8") || strings.Contains(d.logs.String(), "Vb8") {
		t.Error("the wrong password is shown")
	}
	if n := strings.Count(d.logs.String(), "access-system connection failing"); n != 1 {
		t.Errorf("the failure logged %d times over three requests, want once:\n%s", n, d.logs.String())
	}
}

// An update that drops a connection (here: renames it) cleans up after
// the old one as a removal does: its Kisi logins deleted at Kisi and
// here, its cached data dropped; the new connection makes its own.
func TestUpdateDroppingAConnectionCleansUp(t *testing.T) {
	r := startReplicas(t)
	portfolio := r.key(t, adminkey.Scope{Portfolio: true})
	kisiSim := r.one.app.KisiSim
	if _, err := r.admin[0].CreateProperty(portfolio, &pb.CreatePropertyRequest{Property: foundryTwo(kisiSim.URL, kisisim.DemoFoundryAPIKey)}); err != nil {
		t.Fatal(err)
	}
	list := func() error {
		resp, err := r.one.client.ListEntries(r.one.asFor(t, "hank@example.com", "foundry-two"), &pb.ListEntriesRequest{})
		if err == nil && len(resp.GetEntries()) != 2 {
			err = fmt.Errorf("%d entries, want 2", len(resp.GetEntries()))
		}
		return err
	}
	within(t, "hank lists foundry-two", list)
	stored := func(conn string) int {
		ks, err := r.rs.Client().Keys(t.Context(), "ck:v1:kisi-login:{"+conn+"}:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(ks)
	}
	if n := kisiSim.OrgDeviceLogins(kisisim.DemoFoundryOrgID); n != 1 || stored("foundry-two.kisi") != 1 {
		t.Fatalf("before: %d logins at Kisi, %d stored; want 1, 1", n, stored("foundry-two.kisi"))
	}

	in := foundryTwo(kisiSim.URL, kisisim.DemoFoundryAPIKey)
	in.Access[0].Name = "amenities"
	if _, err := r.admin[0].UpdateProperty(portfolio, &pb.UpdatePropertyRequest{PropertyId: "foundry-two", Property: in}); err != nil {
		t.Fatal(err)
	}
	within(t, "the old connection's login and cached view gone", func() error {
		if n := kisiSim.OrgDeviceLogins(kisisim.DemoFoundryOrgID); n != 0 {
			return fmt.Errorf("%d logins left at Kisi", n)
		}
		if n := stored("foundry-two.kisi"); n != 0 {
			return fmt.Errorf("%d logins left stored", n)
		}
		if ks, _ := r.rs.Client().Keys(t.Context(), "*foundry-two.kisi|*").Result(); len(ks) > 0 {
			return fmt.Errorf("cached: %v", ks)
		}
		return nil
	})
	within(t, "hank lists through the renamed connection", list)
	if n := stored("foundry-two.amenities"); n != 1 {
		t.Errorf("the new connection's stored logins: %d, want 1", n)
	}
}
