package loadtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// A portfolio run (--properties N, N > 1) spreads the generated users
// over N properties, p0000 ... : user i is at property i mod N. Each
// property has one Openpath connection, to an in-process simulator of its
// own that knows only that property's users (and every simulator has the
// same doors, as properties built alike do). The harness starts the
// simulators and writes the properties file (README, "Access systems");
// the in-process cloudkey serves it (TargetConfig.PropertiesFile). Each
// user's token names the user's property, and the user's door ids are
// learnt from the prewarm's ListEntries: the default property's (p0000,
// the file's first) are the system's own, the others' are namespaced,
// and the harness, a client of the public API, does not build them.

// maxProperties bounds --properties: each is a simulator with a listener
// and a few connections in this process.
const maxProperties = 10_000

// portfolioPasswordEnv names the environment variable the properties
// file's connections read the simulators' service-account password from
// (password_env): secrets are never inline in a properties file. The
// harness sets it in its own process, to the simulators' one password.
const portfolioPasswordEnv = "CLOUDKEY_LOADTEST_OPENPATH_PASSWORD"

// portfolioProperty is the id of property k of a portfolio run.
func portfolioProperty(k int) string { return fmt.Sprintf("p%04d", k) }

// portfolioIndex is the property (0 ... n-1) of generated user su: its
// number (sim.LoadUserEmail) mod n.
func portfolioIndex(su sim.User, n int) int {
	i := su.ID - sim.LoadUserIDBase
	return ((i % n) + n) % n
}

// splitSeed splits a generated organisation into n, one per property:
// seed k has the users i with i mod n = k (their ids, emails and doors
// unchanged) and every door, credential type and the service account.
func splitSeed(seed sim.Seed, n int) []sim.Seed {
	out := make([]sim.Seed, n)
	for k := range out {
		out[k] = sim.Seed{Org: seed.Org, ServiceAccount: seed.ServiceAccount,
			CredentialTypes: seed.CredentialTypes, Entries: seed.Entries,
			Users: make([]sim.User, 0, len(seed.Users)/n+1)}
	}
	for _, u := range seed.Users {
		k := portfolioIndex(u, n)
		out[k].Users = append(out[k].Users, u)
	}
	return out
}

// portfolio is a portfolio run's simulators and properties file.
type portfolio struct {
	// sims[k] serves property k's organisation.
	sims []*sim.Server
	// file is the properties file naming them; dir holds it.
	file, dir string
}

// startPortfolio starts one Openpath simulator per property, each with
// its share of seed's users, and writes the properties file naming them.
// Close it when done (after the cloudkey that calls them).
func startPortfolio(seed sim.Seed, n int) (pf *portfolio, err error) {
	pf = &portfolio{sims: make([]*sim.Server, n)}
	defer func() {
		if err != nil {
			pf.close()
		}
	}()
	seeds := splitSeed(seed, n)
	// Started side by side: sim.New indexes each organisation's emails.
	var wg sync.WaitGroup
	errs := make([]error, n)
	sem := make(chan struct{}, 16)
	for k := range seeds {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pf.sims[k], errs[k] = sim.Start(seeds[k])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return pf, fmt.Errorf("loadtest: --properties: start the simulators: %w", err)
	}
	if err := os.Setenv(portfolioPasswordEnv, seed.ServiceAccount.Password); err != nil {
		return pf, err
	}
	if pf.dir, err = os.MkdirTemp("", "cloudkey-loadtest-properties-"); err != nil {
		return pf, err
	}
	pf.file = filepath.Join(pf.dir, "properties.yaml")
	var b strings.Builder
	b.WriteString("# Written by cloudkey loadtest --properties; removed when it ends.\nproperties:\n")
	for k, s := range pf.sims {
		fmt.Fprintf(&b, "  - id: %s\n    access:\n      - system: openpath\n        url: %s\n        email: %s\n        password_env: %s\n",
			portfolioProperty(k), s.URL, seed.ServiceAccount.Email, portfolioPasswordEnv)
	}
	if err := os.WriteFile(pf.file, []byte(b.String()), 0o600); err != nil {
		return pf, err
	}
	return pf, nil
}

// close stops the simulators (side by side: each waits for its requests
// in progress) and removes the properties file.
func (pf *portfolio) close() {
	var wg sync.WaitGroup
	for _, s := range pf.sims {
		if s != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.Close() }()
		}
	}
	wg.Wait()
	if pf.dir != "" {
		os.RemoveAll(pf.dir)
	}
}

// checkProperties refuses what --properties cannot run with.
func (c Config) checkProperties() error {
	switch {
	case c.Properties < 1 || c.Properties > maxProperties:
		return fmt.Errorf("--properties must be between 1 and %d, got %d", maxProperties, c.Properties)
	case c.Properties == 1:
		return nil
	case c.UsersFrom != UsersSimGenerated:
		return fmt.Errorf("--properties %d spreads the generated users (--users-from %s) over the properties, not --users-from %s", c.Properties, UsersSimGenerated, c.UsersFrom)
	case c.Properties > c.Users:
		return fmt.Errorf("--properties (%d) must not exceed --users (%d): each property needs a user", c.Properties, c.Users)
	case c.needsCloudkey() && !c.Self:
		return errors.New("--properties starts the properties' simulators and the cloudkey that serves them in process: it needs --self, not --grpc-addr/--http-addr")
	case c.AccessURL != "":
		return errors.New("--properties starts a simulator per property in process; --access-url (one simulator apart) is not supported with it")
	case c.measures(KindUnlockCross):
		return errors.New("--properties: unlock-cross (an Openpath and a Kisi door of one property) is not supported over several properties")
	case !c.Prewarm && c.needsCloudkey():
		return errors.New("--prewarm=false: --properties learns each user's door ids from the prewarm's ListEntries; keep --prewarm on")
	}
	return nil
}

// upstreamCalls reads the call counters of the target's simulators: the
// Openpath ones summed (every property's), and Kisi's.
func (t *target) upstreamCalls() map[string]int64 {
	m := upstreamCalls(t.sim, t.kisi)
	for _, s := range t.extraSims {
		for _, op := range sim.Ops() {
			m[op.String()] += s.Calls(op)
		}
	}
	return m
}

// learnEntries lists user i's entries, over gRPC when the runner has gRPC
// connections, else over REST, and makes the user's unlock requests of
// the ids ListEntries gives (opaque to clients: a property other than the
// default one namespaces them). It is the prewarm's ListEntries of a
// portfolio run; it replaces the user (whose requests are read-only once
// shared) with one holding the learnt requests.
func (r *runner) learnEntries(ctx context.Context, worker, i int, u *user) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var entries []*pb.Entry
	if r.conns != nil {
		resp := new(pb.ListEntriesResponse)
		cctx := metadata.NewOutgoingContext(ctx, u.md)
		if err := r.conns[worker%len(r.conns)].Invoke(cctx, pb.ResidentService_ListEntries_FullMethodName, listReq, resp); err != nil {
			return fmt.Errorf("%s", codeName(status.Code(err)))
		}
		entries = resp.GetEntries()
	} else {
		var err error
		if entries, err = r.listREST(ctx, u); err != nil {
			return err
		}
	}
	if len(entries) == 0 {
		return errors.New("ListEntries gave no entry")
	}
	ids := make([]string, len(entries))
	for j, e := range entries {
		ids[j] = e.GetId()
	}
	nu := &user{md: u.md, getHeader: u.getHeader, postHeader: u.postHeader}
	if err := nu.setUnlocks(ids, r.users.unlockN); err != nil {
		return err
	}
	r.users.slots[i].Store(nu)
	return nil
}
