package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/cloudkey/cloudkey/access/kisi/loginredis"
	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/internal/setup"
)

// demoStack is the embedded demo property (harbor-view on the Openpath
// and the Kisi simulators, over real HTTP) on a redis-server.
type demoStack struct {
	app    *setup.App
	client pb.ResidentServiceClient
	logs   *syncBuffer
}

func newDemoStack(t *testing.T, redisURL, secretsKey string, unlockCap time.Duration) *demoStack {
	return newPropertyStack(t, redisURL, secretsKey, "", unlockCap)
}

// newPropertyStack is newDemoStack serving the properties file at
// propertiesFile instead of the demo, when it is set.
func newPropertyStack(t *testing.T, redisURL, secretsKey, propertiesFile string, unlockCap time.Duration) *demoStack {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := setup.Start(ctx, setup.Config{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", RedisURL: redisURL,
		UnlockTimeout: unlockCap, SecretsKey: secretsKey, EnvoySecret: testEnvoySecret, PropertiesFile: propertiesFile,
		// Without the demo's Envoy: a properties file names harbor-view as this demo stores it.
		DemoWithoutEnvoy: true, Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs), &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient(app.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if app.KisiSim == nil && propertiesFile == "" {
		t.Fatal("the demo has no embedded Kisi simulator")
	}
	return &demoStack{app: app, client: pb.NewResidentServiceClient(conn), logs: logs}
}

func (d *demoStack) as(t *testing.T, email string) context.Context {
	t.Helper()
	tok, err := d.app.Tokens.Sign(email, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
}

// doors lists email's entries by name.
func (d *demoStack) doors(t *testing.T, email string) map[string]*pb.Entry {
	t.Helper()
	r, err := d.client.ListEntries(d.as(t, email), &pb.ListEntriesRequest{})
	if err != nil {
		t.Fatalf("ListEntries(%s): %v", email, err)
	}
	out := map[string]*pb.Entry{}
	for _, e := range r.Entries {
		out[e.Name] = e
	}
	return out
}

func (d *demoStack) unlock(t *testing.T, email string, ids ...string) []*pb.UnlockResult {
	t.Helper()
	r, err := d.client.Unlock(d.as(t, email), &pb.UnlockRequest{EntryIds: ids})
	if err != nil {
		t.Fatalf("Unlock(%s, %v): %v", email, ids, err)
	}
	return r.Results
}

func statuses(rs []*pb.UnlockResult) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = strings.TrimPrefix(r.Status.String(), "UNLOCK_STATUS_")
	}
	return out
}

// The demo property over both simulators: frank's doors span Openpath
// and Kisi, each naming its system, and one unlock opens all three, the
// Kisi doors with frank's own login (never the organisation key); gina
// is on Kisi only; GetMe shows each system's answer; the same door keeps
// its id across calls.
func TestCrossSystemDemo(t *testing.T) {
	d := newDemoStack(t, redistest.Start(t).URL(), "", 3*time.Second)
	doors := d.doors(t, "frank@example.com")
	if len(doors) != 3 || doors["Lobby"].GetId() != "101" || doors["Lobby"].GetSystem() != "openpath" ||
		doors["Pool"].GetSystem() != "kisi" || doors["Package Room"].GetSystem() != "kisi" {
		t.Fatalf("frank's doors = %v", doors)
	}
	ids := []string{doors["Lobby"].Id, doors["Pool"].Id, doors["Package Room"].Id}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 3 {
		t.Fatalf("ids are not unique: %v", ids)
	}
	if got := statuses(d.unlock(t, "frank@example.com", ids...)); !slices.Equal(got, []string{"OK", "OK", "OK"}) {
		t.Fatalf("frank's unlock = %v", got)
	}
	var opened []int
	for _, u := range d.app.KisiSim.Unlocks() {
		if u.ByOrgKey {
			t.Errorf("Kisi unlock of lock %d was sent with the organisation key", u.LockID)
		}
		if u.Email != "frank@example.com" {
			t.Errorf("Kisi unlock of lock %d was by %s", u.LockID, u.Email)
		}
		opened = append(opened, u.LockID)
	}
	if slices.Sort(opened); !slices.Equal(opened, []int{kisisim.DemoPoolID, kisisim.DemoPackageRoomID}) {
		t.Errorf("Kisi opened %v", opened)
	}
	if again := d.doors(t, "frank@example.com"); again["Pool"].Id != doors["Pool"].Id {
		t.Errorf("Pool's id changed: %s then %s", doors["Pool"].Id, again["Pool"].Id)
	}

	gina := d.doors(t, "gina@example.com")
	if len(gina) != 1 || gina["Pool"].GetId() != doors["Pool"].Id {
		t.Fatalf("gina's doors = %v", gina)
	}
	me, err := d.client.GetMe(d.as(t, "gina@example.com"), &pb.GetMeRequest{})
	if err != nil || !me.Connected || len(me.Systems) != 2 || me.Systems[0].Reason != "USER_NOT_FOUND" || !me.Systems[1].Connected {
		t.Fatalf("gina's GetMe = %v, %v", me, err)
	}
	if got := statuses(d.unlock(t, "gina@example.com", gina["Pool"].Id, "101")); !slices.Equal(got, []string{"OK", "DENIED"}) {
		t.Errorf("gina's unlock of Pool and Lobby = %v", got)
	}
	// alice is on Openpath only: her answers are as before.
	if a := d.doors(t, "alice@example.com"); len(a) != 3 || a["Lobby"].GetId() != "101" {
		t.Errorf("alice's doors = %v", a)
	}
	for _, secret := range []string{kisisim.DemoHarborAPIKey, "KISI-LOGIN"} {
		if strings.Contains(d.logs.String(), secret) {
			t.Errorf("the logs show %q", secret)
		}
	}
}

// One system failing fails only its own doors, within the one deadline,
// while the other system's door opens: Kisi hung (TIMEOUT: sent, outcome
// unknown), Kisi refusing (locked down: DENIED with the reason), Kisi
// answering 429 once (retried after Retry-After's default 1 s, within the
// 2 s deadline: OK) or with a Retry-After past the deadline (UNAVAILABLE
// at once).
func TestCrossSystemOneSideFails(t *testing.T) {
	rs := redistest.Start(t)
	d := newDemoStack(t, rs.URL(), "", 2*time.Second)
	doors := d.doors(t, "frank@example.com")
	lobby, pool := doors["Lobby"].Id, doors["Pool"].Id
	tests := []struct {
		name   string
		set    func() error
		want   string
		reason string
	}{
		{"hung", func() error { return d.app.KisiSim.SetFaults(kisisim.Faults{Hang: true}) }, "TIMEOUT", ""},
		{"locked down", func() error { return d.app.KisiSim.SetLockState(kisisim.DemoPoolID, true, true) }, "DENIED", "locked down"},
		{"429 once", func() error {
			return d.app.KisiSim.SetFaults(kisisim.Faults{RateLimitRate: 1, MaxFaults: 1})
		}, "OK", ""},
		{"503 offline", func() error { return d.app.KisiSim.SetLockState(kisisim.DemoPoolID, false, false) }, "UNAVAILABLE", "offline"},
		{"429 always", func() error {
			return d.app.KisiSim.SetFaults(kisisim.Faults{RateLimitRate: 1, RetryAfter: 5 * time.Second})
		}, "UNAVAILABLE", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() {
				d.app.KisiSim.SetFaults(kisisim.Faults{})
				d.app.KisiSim.SetLockState(kisisim.DemoPoolID, false, true)
			})
			d.doors(t, "frank@example.com") // warm (a refusal drops the view): the fault hits the unlock
			if err := tc.set(); err != nil {
				t.Fatal(err)
			}
			before := d.app.Sim.Calls(sim.OpUnlock)
			start := time.Now()
			got := d.unlock(t, "frank@example.com", lobby, pool)
			took := time.Since(start)
			t.Logf("%s: %v %q in %v; Kisi unlock calls %d", tc.name, statuses(got), got[1].Message, took, d.app.KisiSim.Calls(kisisim.OpUnlock))
			if s := statuses(got); s[0] != "OK" || s[1] != tc.want {
				t.Errorf("results = %v (%q), want OK for Lobby and %s for Pool", s, got[1].Message, tc.want)
			}
			if !strings.Contains(got[1].Message, tc.reason) {
				t.Errorf("Pool's message %q does not say %q", got[1].Message, tc.reason)
			}
			if d.app.Sim.Calls(sim.OpUnlock) != before+1 {
				t.Error("the Lobby was not sent to Openpath")
			}
			// Generous: the cap is 2 s; this catches a call that waited for
			// a hung side past its deadline, not a slow machine.
			if took > 4*time.Second {
				t.Errorf("answered after %v; the deadline is 2s", took)
			}
		})
	}
}

// The per-user Kisi logins are encrypted with CLOUDKEY_SECRETS_KEY and
// survive its rotation: after `cloudkey secrets rotate` (loginredis.Rotate)
// to a new key, a server holding the new key alone opens frank's Kisi
// door with the same login, without making another.
func TestCrossSystemSecretsKeyRotation(t *testing.T) {
	rs := redistest.Start(t)
	oldSpec, err := secrets.NewKeySpec("k1")
	if err != nil {
		t.Fatal(err)
	}
	newSpec, err := secrets.NewKeySpec("k2")
	if err != nil {
		t.Fatal(err)
	}
	d := newDemoStack(t, rs.URL(), oldSpec, 3*time.Second)
	pool := d.doors(t, "frank@example.com")["Pool"].Id
	if got := statuses(d.unlock(t, "frank@example.com", pool)); got[0] != "OK" {
		t.Fatalf("unlock with the first key: %v", got)
	}
	if n := d.app.KisiSim.OrgLogins(kisisim.DemoHarborOrgID, "frank@example.com"); n != 1 {
		t.Fatalf("frank has %d Kisi logins, want 1", n)
	}

	both, err := secrets.Parse(newSpec + "," + oldSpec)
	if err != nil {
		t.Fatal(err)
	}
	rotated, total, err := loginredis.Rotate(context.Background(), rs.Client(), both)
	if err != nil || rotated != 1 || total != 1 {
		t.Fatalf("rotate = %d of %d, %v", rotated, total, err)
	}
	// A second server on the same Redis and the same simulators (through
	// a properties file), with the new key alone: it opens frank's Kisi
	// door with the stored login, re-encrypted, and makes no other.
	t.Setenv("CK_TEST_OPENPATH_PASSWORD", sim.DemoServicePassword)
	t.Setenv("CK_TEST_KISI_KEY", kisisim.DemoHarborAPIKey)
	file := filepath.Join(t.TempDir(), "properties.yaml")
	yaml := fmt.Sprintf(`properties:
  - id: harbor-view
    name: Harbor View
    access:
      - {system: openpath, url: %q, email: %q, password_env: CK_TEST_OPENPATH_PASSWORD}
      - {system: kisi, url: %q, api_key_env: CK_TEST_KISI_KEY}
`, d.app.Sim.URL, sim.DemoServiceEmail, d.app.KisiSim.URL)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d2 := newPropertyStack(t, rs.URL(), newSpec, file, 3*time.Second)
	if got := statuses(d2.unlock(t, "frank@example.com", pool)); got[0] != "OK" {
		t.Fatalf("unlock after rotation, with the new key alone: %v", got)
	}
	if n := d.app.KisiSim.OrgLogins(kisisim.DemoHarborOrgID, "frank@example.com"); n != 1 {
		t.Errorf("frank has %d Kisi logins after rotation, want the one rotated", n)
	}
}

// A Kisi lock that opens only at its reader (or only nearby) is listed
// with the reason and its unlock is DENIED with it, never sent to Kisi.
func TestCrossSystemRestrictedLock(t *testing.T) {
	d := newDemoStack(t, redistest.Start(t).URL(), "", 3*time.Second)
	if err := d.app.KisiSim.SetLockRestrictions(kisisim.DemoPackageRoomID, true, false); err != nil {
		t.Fatal(err)
	}
	room := d.doors(t, "frank@example.com")["Package Room"]
	if room.GetRestriction() == "" || room.GetSystem() != "kisi" {
		t.Fatalf("Package Room = %v; want it listed with its restriction", room)
	}
	before := d.app.KisiSim.Calls(kisisim.OpUnlock)
	got := d.unlock(t, "frank@example.com", room.Id)
	if statuses(got)[0] != "DENIED" || got[0].Message != room.Restriction {
		t.Errorf("unlock = %v %q; want DENIED saying %q", statuses(got), got[0].Message, room.Restriction)
	}
	if d.app.KisiSim.Calls(kisisim.OpUnlock) != before {
		t.Error("the restricted lock's unlock was sent to Kisi")
	}
}
