package unlock_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/unlock"
)

// system is one simulated Openpath org and a client talking to it over HTTP.
type system struct {
	sim    *sim.Server
	client *openpath.Client
}

func startSystem(t testing.TB) system {
	t.Helper()
	s, err := sim.Start(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := openpath.New(openpath.Config{BaseURL: s.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return system{sim: s, client: c}
}

// erinTarget is erin's side of entry id in sys (erin has a cloud key).
func erinTarget(sys system, name string, entry int) unlock.Target {
	return unlock.Target{
		System: sys.client, SystemName: name,
		UserID:       strconv.Itoa(sim.DemoErinID),
		CredentialID: strconv.Itoa(sim.DemoErinCloudKeyID),
		EntryID:      strconv.Itoa(entry),
	}
}

type recorder struct {
	mu       sync.Mutex
	attempts []unlock.Attempt
}

func (r *recorder) Record(a unlock.Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts = append(r.attempts, a)
}

func TestEngine(t *testing.T) {
	a, b := startSystem(t), startSystem(t)
	targets := map[string][]unlock.Target{
		"lobby":    {erinTarget(a, "door", sim.DemoLobbyID)},
		"both":     {erinTarget(a, "door", sim.DemoLobbyID), erinTarget(b, "elevator", sim.DemoRoofDeckID)},
		"half":     {erinTarget(a, "door", sim.DemoLobbyID), erinTarget(b, "elevator", sim.DemoGymID)}, // erin lacks Gym in b
		"unmapped": nil,
	}
	tests := []struct {
		name        string
		ids         []string
		want        []unlock.Status
		wantRefused bool
		callsA      int64
		callsB      int64
	}{
		{"one entry, one system", []string{"lobby"}, []unlock.Status{unlock.OK}, false, 1, 0},
		{"entry on two systems", []string{"both"}, []unlock.Status{unlock.OK}, false, 1, 1},
		{"one system refuses", []string{"half"}, []unlock.Status{unlock.Denied}, true, 1, 1},
		{"not permitted: no call", []string{"nope"}, []unlock.Status{unlock.Denied}, false, 0, 0},
		{"mapped to nothing: no call", []string{"unmapped"}, []unlock.Status{unlock.Denied}, false, 0, 0},
		{"order kept", []string{"nope", "both", "lobby"}, []unlock.Status{unlock.Denied, unlock.OK, unlock.OK}, false, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.sim.Reset()
			b.sim.Reset()
			rec := &recorder{}
			e := unlock.NewEngine(2*time.Second, rec)
			rs := e.Unlock(context.Background(), unlock.Request{
				Email: "erin@example.com", EntryIDs: tt.ids,
				Targets: func(id string) ([]unlock.Target, bool) { ts, ok := targets[id]; return ts, ok },
			})
			refused := false
			for i, r := range rs {
				if r.EntryID != tt.ids[i] || r.Status != tt.want[i] {
					t.Errorf("result %d = %+v, want %s %v", i, r, tt.ids[i], tt.want[i])
				}
				if r.Status != unlock.OK && r.Message == "" {
					t.Errorf("result %d has no message", i)
				}
				refused = refused || r.Refused
			}
			if refused != tt.wantRefused {
				t.Errorf("refused = %v, want %v", refused, tt.wantRefused)
			}
			if n := a.sim.Calls(sim.OpUnlock); n != tt.callsA {
				t.Errorf("system a unlock calls = %d, want %d", n, tt.callsA)
			}
			if n := b.sim.Calls(sim.OpUnlock); n != tt.callsB {
				t.Errorf("system b unlock calls = %d, want %d", n, tt.callsB)
			}
			if len(rec.attempts) != len(tt.ids) {
				t.Errorf("audited %d attempts, want %d", len(rec.attempts), len(tt.ids))
			}
		})
	}
}

func TestEngineFaults(t *testing.T) {
	sys := startSystem(t)
	tests := []struct {
		name   string
		faults sim.Faults
		cap    time.Duration
		want   unlock.Status
	}{
		{"hang hits the server cap", sim.Faults{Hang: true}, 150 * time.Millisecond, unlock.Timeout},
		{"slow beyond the cap", sim.Faults{Latency: time.Second}, 100 * time.Millisecond, unlock.Timeout},
		{"503", sim.Faults{ErrorRate: 1}, time.Second, unlock.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sys.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			defer sys.sim.SetFaults(sim.Faults{})
			e := unlock.NewEngine(tt.cap, nil)
			rs := e.Unlock(context.Background(), unlock.Request{
				Email: "erin@example.com", EntryIDs: []string{"a", "b"},
				Targets: func(id string) ([]unlock.Target, bool) {
					return []unlock.Target{erinTarget(sys, "door", sim.DemoLobbyID)}, true
				},
			})
			for _, r := range rs {
				if r.Status != tt.want {
					t.Errorf("result %+v, want %v", r, tt.want)
				}
			}
		})
	}
}

func BenchmarkUnlockOne(b *testing.B) {
	sys := startSystem(b)
	e := unlock.NewEngine(time.Second, unlock.Discard{})
	target := []unlock.Target{erinTarget(sys, "door", sim.DemoLobbyID)}
	req := unlock.Request{Email: "erin@example.com", EntryIDs: []string{"lobby"},
		Targets: func(string) ([]unlock.Target, bool) { return target, true }}
	b.ReportAllocs()
	for b.Loop() {
		if r := e.Unlock(context.Background(), req); r[0].Status != unlock.OK {
			b.Fatal(r[0])
		}
	}
}

func BenchmarkUnlockFive(b *testing.B) {
	sys := startSystem(b)
	e := unlock.NewEngine(time.Second, unlock.Discard{})
	target := []unlock.Target{erinTarget(sys, "door", sim.DemoLobbyID)}
	req := unlock.Request{Email: "erin@example.com", EntryIDs: []string{"1", "2", "3", "4", "5"},
		Targets: func(string) ([]unlock.Target, bool) { return target, true }}
	b.ReportAllocs()
	for b.Loop() {
		e.Unlock(context.Background(), req)
	}
}

var _ access.System = (*openpath.Client)(nil)

// TestEngineResilience: against a rate-limiting, failing, hung or
// circuit-broken access system, each entry gets the right result within
// the deadline, and no unlock is ever sent twice.
func TestEngineResilience(t *testing.T) {
	tests := []struct {
		name    string
		faults  sim.Faults
		cap     time.Duration
		tripped bool // open the breaker first
		want    unlock.Status
		sent    int64 // unlock requests per entry
	}{
		{"429", sim.Faults{RateLimitRate: 1, RetryAfter: time.Second}, time.Second, false, unlock.Unavailable, 1},
		{"503", sim.Faults{ErrorRate: 1}, time.Second, false, unlock.Unavailable, 1},
		{"500", sim.Faults{ErrorRate: 1, ErrorStatus: 500}, time.Second, false, unlock.Unavailable, 1},
		{"hang, 300ms deadline", sim.Faults{Hang: true}, 300 * time.Millisecond, false, unlock.Timeout, 1},
		{"slow, 300ms deadline", sim.Faults{Latency: 2 * time.Second}, 300 * time.Millisecond, false, unlock.Timeout, 1},
		{"breaker open", sim.Faults{ErrorRate: 1}, time.Second, true, unlock.Unavailable, 0},
	}
	const entries = 3
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := startSystem(t)
			if err := sys.client.Unlock(context.Background(), strconv.Itoa(sim.DemoErinID), strconv.Itoa(sim.DemoErinCloudKeyID), strconv.Itoa(sim.DemoLobbyID)); err != nil {
				t.Fatal(err) // logged in
			}
			if err := sys.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			if tt.tripped {
				for sys.client.BreakerState() != "open" {
					if sys.sim.Calls(sim.OpUnlock) > 100 {
						t.Fatal("the breaker does not open")
					}
					_ = sys.client.Unlock(context.Background(), strconv.Itoa(sim.DemoErinID), strconv.Itoa(sim.DemoErinCloudKeyID), strconv.Itoa(sim.DemoLobbyID))
				}
			}
			sys.sim.Reset()
			e := unlock.NewEngine(tt.cap, nil)
			start := time.Now()
			rs := e.Unlock(context.Background(), unlock.Request{
				Email: "erin@example.com", EntryIDs: []string{"a", "b", "c"},
				Targets: func(id string) ([]unlock.Target, bool) {
					return []unlock.Target{erinTarget(sys, "door", sim.DemoLobbyID)}, true
				},
			})
			if took := time.Since(start); took > tt.cap+time.Second {
				t.Errorf("answered after %v, cap %v", took, tt.cap)
			}
			for _, r := range rs {
				if r.Status != tt.want {
					t.Errorf("result %+v, want %v", r, tt.want)
				}
			}
			if got := sys.sim.Calls(sim.OpUnlock); got != tt.sent*entries {
				t.Errorf("%d unlock requests for %d entries, want %d each", got, entries, tt.sent)
			}
			if len(sys.sim.Unlocks()) != 0 {
				t.Error("a door opened")
			}
		})
	}
}

// TestEngineBusy: when every in-flight slot to the access system stays
// taken until the deadline, the unlock was never sent, so it is
// UNAVAILABLE (not TIMEOUT: the door certainly did not open).
func TestEngineBusy(t *testing.T) {
	s, err := sim.Start(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := openpath.New(openpath.Config{BaseURL: s.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword, MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	sys := system{sim: s, client: c}
	target := erinTarget(sys, "door", sim.DemoLobbyID)
	if err := c.Unlock(context.Background(), target.UserID, target.CredentialID, target.EntryID); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFaults(sim.Faults{Hang: true}); err != nil {
		t.Fatal(err)
	}
	s.Reset()
	hung, release := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Unlock(hung, target.UserID, target.CredentialID, target.EntryID)
	}()
	for deadline := time.Now().Add(5 * time.Second); s.Calls(sim.OpUnlock) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the hung unlock never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rs := unlock.NewEngine(200*time.Millisecond, nil).Unlock(context.Background(), unlock.Request{
		Email: "erin@example.com", EntryIDs: []string{"a"},
		Targets: func(string) ([]unlock.Target, bool) { return []unlock.Target{target}, true },
	})
	release()
	<-done
	if rs[0].Status != unlock.Unavailable {
		t.Errorf("result %+v, want UNAVAILABLE", rs[0])
	}
	if got := s.Calls(sim.OpUnlock); got != 1 {
		t.Errorf("%d unlock requests, want only the hung one", got)
	}
}
