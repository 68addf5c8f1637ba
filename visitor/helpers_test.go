package visitor

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/unlock"
)

// The fixtures' location, and the start of every test's clock: the day
// before the fixtures' visits, which are on 2026-11-24.
const loc = "152347"

var t0 = time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)

// clock is a settable clock shared by the service and the simulator.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// audits records guest unlock attempts.
type audits struct {
	mu  sync.Mutex
	all []unlock.Attempt
}

func (a *audits) Record(at unlock.Attempt) { a.mu.Lock(); a.all = append(a.all, at); a.mu.Unlock() }

// list returns the unlock attempts (kinds() the other records).
func (a *audits) list() []unlock.Attempt {
	return a.kinds("")
}

// onCluster makes newHarness use the shared three-master Redis Cluster
// instead of a redis-server of its own (TestOnRedisCluster sets it).
var onCluster bool

// harness is a visitor service over a real redis-server and the Openpath
// simulator over HTTP, with the demo organisation (whose service account,
// the "Envoy Bot", may open Lobby, Garage, Gym and Roof Deck).
type harness struct {
	t      *testing.T
	redis  *redistest.Server // nil on the cluster
	rdb    redis.UniversalClient
	store  Store // the Redis adapter on rdb
	sim    *sim.Server
	access *openpath.Client
	clock  *clock
	notes  *notify.Memory // emails
	sms    *notify.Memory // texts
	audit  *audits
	svc    *Service
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{now: t0}, notes: &notify.Memory{}, sms: &notify.Memory{}, audit: &audits{}}
	if onCluster {
		h.rdb = redistest.SharedCluster(t).Client()
	} else {
		h.redis = redistest.Start(t)
		h.rdb = h.redis.Client()
	}
	h.store = newRedisStore(h.rdb)
	srv, err := sim.Start(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	srv.SetClock(h.clock.Now)
	h.sim = srv
	h.access, err = openpath.New(openpath.Config{BaseURL: srv.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.access.CloseIdleConnections)
	h.svc = h.newService(nil)
	return h
}

// newService is another replica (or a restarted cloudkey) on the same
// Redis and access system.
func (h *harness) newService(n notify.Notifier) *Service {
	h.t.Helper()
	if n == nil {
		n = notify.Router{Email: h.notes, Phone: h.sms}
	}
	svc, err := New(Config{
		Store: h.store, Access: OneSystem(h.access), Notifier: n, BaseURL: "https://ck.example.com/",
		Audit: h.audit, Now: h.clock.Now, SchedulerInterval: 5 * time.Millisecond,
		AccessTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return svc
}

// defaultSettings: invite only; Visitor → Lobby and Roof Deck, Contractor → Lobby and
// Garage, Interview → Lobby; Banned blocked; 15 min advance, 2 h access;
// Protect on, 10 h, alice excluded.
func defaultSettings() Settings {
	return Settings{
		InviteOnly:     true,
		AdvanceAccess:  15 * time.Minute,
		AccessDuration: 2 * time.Hour,
		Entries: []EntryMapping{
			{EntryID: "101", VisitorTypes: []string{"Visitor", "Contractor", "Interview"}},
			{EntryID: "102", VisitorTypes: []string{"Contractor"}},
			{EntryID: "104", VisitorTypes: []string{"visitor"}},
		},
		BlockedVisitorTypes: []string{"Banned"},
		LogoURL:             "https://harbor.example/logo.png",
		Instructions:        "Reception is on the left.",
		TimeZone:            "Europe/Paris",
		Protect: ProtectSettings{
			Enabled: true, EmployeeAccessDuration: 10 * time.Hour, ExcludedEmployees: []string{"Alice@Example.com"},
		},
	}
}

func (h *harness) configure(change func(*Settings)) {
	h.t.Helper()
	st := defaultSettings()
	if change != nil {
		change(&st)
	}
	if res, err := h.svc.UpdateSettings(context.Background(), "", loc, st); err != nil {
		h.t.Fatalf("UpdateSettings: %v (%+v)", err, res)
	}
}

// event builds an event body from a fixture, edited.
func event(t *testing.T, fixture string, edits ...edit) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		e(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type edit func(map[string]any)

func payloadOf(m map[string]any) map[string]any { return m["payload"].(map[string]any) }
func attrs(m map[string]any) map[string]any     { return payloadOf(m)["attributes"].(map[string]any) }
func rels(m map[string]any) map[string]any      { return payloadOf(m)["relationships"].(map[string]any) }

func id(v string) edit { return func(m map[string]any) { payloadOf(m)["id"] = v } }
func attr(k string, v any) edit {
	return func(m map[string]any) { attrs(m)[k] = v }
}
func at(k string, t time.Time) edit { return attr(k, t.UTC().Format(time.RFC3339)) }
func flow(f string) edit            { return attr("flow-name", f) }
func invite(v string) edit {
	return func(m map[string]any) {
		if v == "" {
			delete(rels(m), "invite")
			return
		}
		rels(m)["invite"] = map[string]any{"data": map[string]any{"id": v, "type": "invites"}}
	}
}
func named(event string) edit {
	return func(m map[string]any) { m["meta"].(map[string]any)["event"] = event }
}
func metaJob(job string) edit {
	return func(m map[string]any) {
		meta := m["meta"].(map[string]any)
		meta["job"] = map[string]any{"id": job}
		meta["auth"] = map[string]any{"access_token": "fresh-" + job}
	}
}

func (h *harness) handle(body []byte) Outcome {
	h.t.Helper()
	out, err := h.svc.HandleEvent(context.Background(), body)
	if err != nil {
		h.t.Fatalf("HandleEvent: %v", err)
	}
	return out
}

// tokenOf returns the link token last sent to, from its message.
func (h *harness) tokenOf(to string) string {
	h.t.Helper()
	m, ok := h.notes.Last(to)
	if !ok {
		h.t.Fatalf("no message to %s", to)
	}
	const prefix = "https://ck.example.com/g/"
	if !strings.HasPrefix(m.Link, prefix) {
		h.t.Fatalf("link %q", m.Link)
	}
	return strings.TrimPrefix(m.Link, prefix)
}

func (h *harness) visit(inviteID, entryID string) VisitInfo {
	h.t.Helper()
	v, err := h.svc.Visit(context.Background(), inviteID, entryID)
	if err != nil {
		h.t.Fatalf("Visit(%q, %q): %v", inviteID, entryID, err)
	}
	return v
}

func (h *harness) upstreamCalls() int64 {
	return h.sim.Calls(sim.OpGenerateUnlockToken) + h.sim.Calls(sim.OpUseUnlockToken)
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// newRedisStore is visitorredis.New with the default prefix. The internal
// tests cannot import visitorredis (it imports visitor), so
// redisstore_test.go, in package visitor_test, sets it.
var newRedisStore func(redis.UniversalClient) Store

// key is the Redis key of parts: the names the service has always used,
// in the {vis} hash-tag slot on the cluster.
func (h *harness) key(parts ...string) string {
	prefix := "ck:v1:vis:"
	if onCluster {
		prefix = "ck:v1:{vis}:"
	}
	return prefix + strings.Join(parts, ":")
}
