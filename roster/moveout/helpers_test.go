package moveout

import (
	"context"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/access/kisi/loginredis"
	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/kisisim/kisispec"
	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/access/sim/spectest"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
	"github.com/cloudkey/cloudkey/unlock"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const (
	prop   = "harbor-view"
	opConn = "harbor-view.openpath"
	kConn  = "harbor-view.kisi"
	nyc    = "America/New_York"
)

// world is one property with an Openpath organisation (the simulator
// behind Openpath's spec) and a Kisi organisation (its simulator, the
// client's requests and answers checked against Kisi's spec), a real
// Redis, and a Runner whose clock the test sets.
type world struct {
	t       *testing.T
	rdb     redis.UniversalClient
	op      *sim.Sim
	kisi    *kisisim.Server
	opc     *openpath.Client
	kc      *kisi.Client
	rosters *rosterredis.Store
	store   *Store
	runner  *Runner
	tz      string

	mu          sync.Mutex
	now         time.Time
	audit       []unlock.Attempt
	invalidated []string
}

// opUser and kisiUser are the users of each system, by email.
type users struct {
	op   []string
	kisi []string
}

var specOnce = sync.OnceValues(func() (*spectest.Spec, error) {
	return spectest.Load("../../access/sim/testdata/openpath-subset.swagger.json")
})

// newWorld starts the systems with u's users, each active with a door.
func newWorld(t *testing.T, u users) *world {
	t.Helper()
	w := &world{t: t, tz: nyc, rdb: redistest.Start(t).Client()}
	seed := sim.DemoSeed()
	seed.Users = seed.Users[:0]
	for _, su := range sim.DemoSeed().Users {
		if su.ID == sim.DemoServiceUserID {
			seed.Users = append(seed.Users, su) // the service account: staff
		}
	}
	for i, e := range u.op {
		seed.Users = append(seed.Users, sim.User{ID: 300 + i, Email: e, FirstName: strings.Split(e, "@")[0], EntryIDs: []int{sim.DemoLobbyID}})
	}
	var err error
	if w.op, err = sim.New(seed); err != nil {
		t.Fatal(err)
	}
	spec, err := specOnce()
	if err != nil {
		t.Fatal(err)
	}
	opSrv := httptest.NewServer(spec.Handler(t, w.op.Handler()))
	t.Cleanup(func() { opSrv.Close(); w.op.Close() })
	if w.opc, err = openpath.New(openpath.Config{BaseURL: opSrv.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword, Name: opConn}); err != nil {
		t.Fatal(err)
	}
	ks := kisisim.DemoSeed()
	ks.RateLimit = &kisisim.RateLimit{}
	ks.Orgs = ks.Orgs[:1]
	ks.Orgs[0].Users = nil
	for i, e := range u.kisi {
		ks.Orgs[0].Users = append(ks.Orgs[0].Users, kisisim.User{ID: 7100 + i, Email: e, Name: strings.Split(e, "@")[0], Access: []kisisim.Access{{LockID: kisisim.DemoPoolID}}})
	}
	if w.kisi, err = kisisim.Start(ks); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.kisi.Close() })
	if w.kc, err = kisi.New(kisi.Config{BaseURL: w.kisi.URL, APIKey: kisisim.DemoHarborAPIKey, Name: kConn,
		Logins: loginredis.New(w.rdb, secrets.Development(), kConn), HTTPClient: kisispec.Load(t).Client(t)}); err != nil {
		t.Fatal(err)
	}
	w.rosters = rosterredis.New(w.rdb)
	w.store = NewStore(w.rdb)
	w.runner, err = New(Config{Store: w.store, Rosters: w.rosters, Now: w.clock, Audit: w,
		Systems: func(p string) (string, []Connection, bool) {
			if p != prop {
				return "", nil, false
			}
			return w.tz, Connections([]reconcile.Connection{{Name: opConn, Directory: w.opc}, {Name: kConn, Directory: w.kc}}), true
		},
		Invalidate: func(_ context.Context, p, email string) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.invalidated = append(w.invalidated, p+"/"+email)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

// at sets the clock to a wall-clock time of the property's zone,
// "2026-12-02 12:00".
func (w *world) at(local string) {
	w.t.Helper()
	loc, err := time.LoadLocation(w.tz)
	if err != nil {
		w.t.Fatal(err)
	}
	tm, err := time.ParseInLocation("2006-01-02 15:04", local, loc)
	if err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.now = tm
	w.mu.Unlock()
}

// Record is the world's audit.
func (w *world) Record(a unlock.Attempt) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.audit = append(w.audit, a)
}

func (w *world) audited() []unlock.Attempt {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]unlock.Attempt(nil), w.audit...)
}

// policy sets the property's policy, auto by default.
func (w *world) policy(p Policy) {
	w.t.Helper()
	if _, _, err := w.store.SetPolicy(context.Background(), prop, p, w.clock()); err != nil {
		w.t.Fatal(err)
	}
}

func auto() Policy { p := DefaultPolicy(); p.Mode = ModeAuto; return p }

// roster stores people as the property's next roster version.
func (w *world) roster(people ...roster.Person) {
	w.t.Helper()
	if _, err := w.rosters.Save(context.Background(), prop, rosterredis.Snapshot{Source: roster.SourceCSV, Origin: "test.csv", People: people}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) run(dryRun bool) Result {
	w.t.Helper()
	r, err := w.runner.Run(context.Background(), prop, dryRun)
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

// suspended lists the users the systems have suspended now, as
// "op:email" and "kisi:email", sorted.
func (w *world) suspended() []string {
	w.t.Helper()
	var out []string
	ctx := context.Background()
	ou, err := w.opc.ListUsers(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, u := range ou {
		if u.Status != access.StatusActive {
			out = append(out, "op:"+u.Email)
		}
	}
	ku, err := w.kc.ListUsers(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, u := range ku {
		if u.Status != access.StatusActive {
			out = append(out, "kisi:"+u.Email)
		}
	}
	sort.Strings(out)
	return out
}

// describe lists changes as "suspend person@conn", in the plan's order.
func describe(cs []Change) []string {
	out := []string{}
	for _, c := range cs {
		sys := "op"
		if c.Connection == kConn {
			sys = "kisi"
		}
		s := string(c.Action) + " " + c.PersonKey + "@" + sys
		if c.Error != "" {
			s += " failed"
		}
		out = append(out, s)
	}
	return out
}

// person is a roster row: id, unit, email, status and move-out
// (YYYY-MM-DD or "").
func person(id, unit, email string, st roster.Status, moveOut string) roster.Person {
	p := roster.Person{Source: roster.SourceCSV, PersonID: id, Unit: unit, FirstName: strings.ToUpper(id[:1]) + id[1:], LastName: "Resident", Status: st, Role: roster.RolePrimary}
	if err := p.SetEmail(email); err != nil {
		panic(err)
	}
	if moveOut != "" {
		d, err := roster.ParseDate(moveOut)
		if err != nil {
			panic(err)
		}
		p.MoveOut = d
	}
	return p
}

// lease sets p's household (lease) id.
func lease(p roster.Person, household string) roster.Person {
	p.HouseholdID = household
	return p
}
