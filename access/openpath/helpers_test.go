package openpath

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/access/sim/spectest"
)

var (
	specOnce sync.Once
	spec     *spectest.Spec
	specErr  error
)

func openpathSpec(t testing.TB) *spectest.Spec {
	t.Helper()
	specOnce.Do(func() { spec, specErr = spectest.Load("../sim/testdata/openpath-subset.swagger.json") })
	if specErr != nil {
		t.Fatal(specErr)
	}
	return spec
}

// env is a client talking over loopback to a simulator. Every request the
// client sends, and every answer, is checked against the Openpath spec.
type env struct {
	sim    *sim.Sim
	client *Client
	url    string
	conns  atomic.Int64 // TCP connections the server accepted
}

func newEnv(t testing.TB, seed sim.Seed) *env {
	t.Helper()
	return newEnvConfig(t, seed, Config{})
}

// newEnvConfig is newEnv with the client configured by cfg (BaseURL is
// the simulator's).
func newEnvConfig(t testing.TB, seed sim.Seed, cfg Config) *env {
	t.Helper()
	s, err := sim.New(seed)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{sim: s}
	srv := httptest.NewUnstartedServer(openpathSpec(t).Handler(t, s.Handler()))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			e.conns.Add(1)
		}
	}
	srv.Start()
	e.url = srv.URL
	t.Cleanup(func() {
		s.Close() // releases hung requests, so that srv.Close does not wait on them
		srv.Close()
	})
	cfg.BaseURL = srv.URL
	e.client = newClient(t, cfg)
	return e
}

// newClient returns a client for cfg with the demo service account filled
// in where cfg leaves it empty.
func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	if cfg.Email == "" {
		cfg.Email, cfg.Password = sim.DemoServiceEmail, sim.DemoServicePassword
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// totalCalls is every request the simulator received.
func totalCalls(s *sim.Sim) int64 {
	var n int64
	for _, op := range sim.Ops() {
		n += s.Calls(op)
	}
	return n
}

// testSeed is the demo org plus users whose emails contain alice's, two
// sharing an email, one with a '+', a mixed-case one, and look-alikes of
// ASCII addresses.
func testSeed() sim.Seed {
	seed := sim.DemoSeed()
	seed.Users = append(seed.Users,
		sim.User{ID: 211, Email: "malice@example.com", FirstName: "Mal", LastName: "Ice"},
		sim.User{ID: 212, Email: "alice@example.com.au", FirstName: "Alice", LastName: "Aus"},
		sim.User{ID: 213, Email: "dup@example.com", FirstName: "Dup", LastName: "One"},
		sim.User{ID: 214, Email: "DUP@example.com", FirstName: "Dup", LastName: "Two"},
		sim.User{ID: 215, Email: "a+b@example.com", FirstName: "Plus", LastName: "Sign"},
		sim.User{ID: 216, Email: "Dana.Mixed@Example.COM", FirstName: "Dana", LastName: "Mixed", Status: "I"},
		// Look-alikes: Unicode case rules would make these kate's and
		// sam's addresses; byte for byte they are not.
		sim.User{ID: 217, Email: "kate@example.com", FirstName: "Kate", LastName: "Ascii"},
		sim.User{ID: 218, Email: "\u212aate@example.com", FirstName: "Kelvin", LastName: "Sign"},
		sim.User{ID: 219, Email: "sam@example.com", FirstName: "Sam", LastName: "Ascii"},
		sim.User{ID: 220, Email: "\u017fam@example.com", FirstName: "Long", LastName: "S"},
		sim.User{ID: 221, Email: "jos\u00e9@example.com", FirstName: "José", LastName: "Accent"},
	)
	return seed
}
