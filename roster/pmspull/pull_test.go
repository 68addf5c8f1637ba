package pmspull

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/roster/buildiumsim/buildiumspec"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

var t0 = time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)

// recorder keeps the query of every request the pull sends.
type recorder struct {
	mu      sync.Mutex
	queries []url.Values
	paths   []string
	next    http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.queries = append(r.queries, req.URL.Query())
	r.paths = append(r.paths, req.URL.Path)
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// take returns and forgets the requests recorded.
func (r *recorder) take() ([]string, []url.Values) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, q := r.paths, r.queries
	r.paths, r.queries = nil, nil
	return p, q
}

type fixture struct {
	srv     *buildiumsim.Server
	rec     *recorder
	rosters *rosterredis.Store
	puller  *Puller
	now     time.Time
	after   []string
	dirErr  error
	prop    property.Property
}

// newFixture serves the demo's Buildium account and pulls harbor-view's
// leases three to a page, every request and answer checked against
// Buildium's spec.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv, err := buildiumsim.Start(buildiumsim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	rdb := redistest.Start(t).Client()
	f := &fixture{srv: srv, rosters: rosterredis.New(rdb), now: t0}
	f.rec = &recorder{next: buildiumspec.Load(t).Transport(t, nil)}
	f.puller, err = New(Config{
		Redis: rdb, Rosters: f.rosters, HTTPClient: &http.Client{Transport: f.rec}, PageSize: 3,
		Now: func() time.Time { return f.now },
		Directories: func(ctx context.Context, id string) (string, []reconcile.Connection, error) {
			return "America/New_York", nil, f.dirErr
		},
		AfterRoster: func(ctx context.Context, id string) error { f.after = append(f.after, id); return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.prop = property.Property{ID: "harbor-view", PMS: &property.PMS{System: property.Buildium, URL: srv.URL,
		ClientID: buildiumsim.DemoClientID, ClientSecret: buildiumsim.DemoClientSecret,
		PropertyIDs: []int32{buildiumsim.DemoHarborViewID}, Every: time.Hour}}
	return f
}

func emails(people []roster.Person) map[string]string {
	out := map[string]string{}
	for _, p := range people {
		out[p.Key()] = p.CanonicalEmail + " " + string(p.Status)
	}
	return out
}

// The first pull reads every lease, paged; the next asks with
// lastupdatedfrom (the first's start less the margin), gets only the
// changes and merges them: nobody it does not mention is dropped. A pull
// with no change saves no version but moves the cursor; a failed pull
// keeps it.
func TestPullFullThenIncremental(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()

	st, err := f.puller.Pull(ctx, f.prop)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Version != 1 || st.People != 9 || st.Added != 9 || st.Result != ResultOK || st.Skipped != 1 {
		t.Fatalf("first pull = %+v", st)
	}
	if want := t0.Add(-CursorMargin); !st.Cursor.Equal(want) {
		t.Errorf("cursor %v, want %v", st.Cursor, want)
	}
	paths, queries := f.rec.take()
	leasePages := 0
	for i, p := range paths {
		if queries[i].Has("lastupdatedfrom") {
			t.Errorf("the full pull sent lastupdatedfrom: %s?%s", p, queries[i].Encode())
		}
		if p == "/v1/leases" {
			leasePages++
		}
	}
	if leasePages != 3 { // 8 leases, 3 a page
		t.Errorf("%d pages of leases, want 3", leasePages)
	}
	before, _, _ := f.rosters.Current(ctx, "harbor-view")

	// In Buildium: alice's email changes and frank gives notice.
	f.srv.SetClock(func() time.Time { return t0.Add(30 * time.Minute) })
	if err := f.srv.SetTenantEmail(9001, "alice.anders@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.SetMoveOut(7008, 9008, "2027-01-31", "2026-12-02"); err != nil {
		t.Fatal(err)
	}
	f.now = t0.Add(time.Hour)
	st, err = f.puller.Pull(ctx, f.prop)
	if err != nil {
		t.Fatal(err)
	}
	if st.Full || st.Version != 2 || st.People != 9 || st.Added != 0 || st.Removed != 0 || st.Changed != 2 {
		t.Fatalf("incremental pull = %+v", st)
	}
	paths, queries = f.rec.take()
	for i, p := range paths {
		if strings.HasPrefix(p, "/v1/leases") && !strings.HasPrefix(p, "/v1/leases/tenants/") && queries[i].Get("lastupdatedfrom") != "2026-12-02T13:58:00Z" {
			t.Errorf("%s?%s: want lastupdatedfrom=2026-12-02T13:58:00Z", p, queries[i].Encode())
		}
	}
	after, _, _ := f.rosters.Current(ctx, "harbor-view")
	want := emails(before.People)
	want["id:9001#7001"] = "alice.anders@example.com current"
	want["id:9008#7008"] = "frank@example.com notice"
	if got := emails(after.People); !maps.Equal(got, want) {
		t.Errorf("merged roster:\n got %v\nwant %v", got, want)
	}

	// Nothing changed since: no version, the cursor moves on.
	f.now = t0.Add(2 * time.Hour)
	st, err = f.puller.Pull(ctx, f.prop)
	if err != nil || st.Version != 0 || st.People != 9 || !st.Cursor.Equal(f.now.Add(-CursorMargin)) {
		t.Fatalf("pull with no change = %+v, %v", st, err)
	}
	if vs, _ := f.rosters.Versions(ctx, "harbor-view"); len(vs) != 2 {
		t.Errorf("%d versions after a pull with no change, want 2", len(vs))
	}

	// Buildium refuses the key: the pull fails, says why, keeps the cursor.
	f.srv.SetCredentials("another-id", "another-secret")
	f.now = t0.Add(3 * time.Hour)
	cursor := st.Cursor
	st, err = f.puller.Pull(ctx, f.prop)
	if err == nil || st.Result != ResultFailed || !strings.Contains(st.Error, "401") || !st.Cursor.Equal(cursor) {
		t.Fatalf("pull with a refused key = %+v, %v", st, err)
	}
	if strings.Contains(err.Error(), buildiumsim.DemoClientSecret) {
		t.Errorf("the error shows the secret: %v", err)
	}
	stored, ok, _ := f.puller.Status(ctx, "harbor-view")
	if !ok || stored.Result != ResultFailed || !stored.Cursor.Equal(cursor) || !stored.At.Equal(f.now) {
		t.Errorf("recorded status = %+v", stored)
	}
	f.srv.SetCredentials(buildiumsim.DemoClientID, buildiumsim.DemoClientSecret)
	f.rec.take()
	if _, err := f.puller.Pull(ctx, f.prop); err != nil {
		t.Fatal(err)
	}
	_, queries = f.rec.take()
	if got := queries[len(queries)-1].Get("lastupdatedfrom"); got != cursor.Format(time.RFC3339) {
		t.Errorf("after the failure the pull asked from %q, want the kept cursor %s", got, cursor.Format(time.RFC3339))
	}
	if !slices.Equal(f.after, []string{"harbor-view", "harbor-view", "harbor-view", "harbor-view"}) {
		t.Errorf("AfterRoster ran for %v: want each of the 4 successful pulls", f.after)
	}
}

// Another pms block (other property ids), or a roster last imported
// from a CSV, is pulled in full and replaces the roster.
func TestPullFullWhenTheSourceChanges(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	if _, err := f.puller.Pull(ctx, f.prop); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func()
	}{
		{"property ids", func() { f.prop.PMS.PropertyIDs = []int32{buildiumsim.DemoHarborViewID, buildiumsim.DemoFoundryLoftsID} }},
		{"a CSV import", func() {
			if _, err := f.rosters.Save(ctx, "harbor-view", rosterredis.Snapshot{Source: roster.SourceCSV, People: nil}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, tt := range tests {
		tt.setup()
		f.now = t0.Add(time.Duration(i+1) * time.Hour)
		st, err := f.puller.Pull(ctx, f.prop)
		if err != nil || !st.Full {
			t.Errorf("%s: pull = %+v, %v; want a full pull", tt.name, st, err)
		}
	}
	cur, _, _ := f.rosters.Current(ctx, "harbor-view")
	if len(cur.People) != 11 || cur.Source != roster.SourceBuildium { // 9 in harbor-view, 2 in foundry-lofts
		t.Errorf("roster after the full pulls: %d people from %s", len(cur.People), cur.Source)
	}
}

// A failed reconciliation fails the pull's status but keeps what was
// pulled (the cursor moves); AfterRoster does not run.
func TestPullReconcileFailure(t *testing.T) {
	f := newFixture(t)
	f.dirErr = errors.New("property harbor-view is not served")
	st, err := f.puller.Pull(t.Context(), f.prop)
	if err == nil || st.Result != ResultFailed || !strings.HasPrefix(st.Error, "reconcile: ") || st.Version != 1 || st.Cursor.IsZero() {
		t.Fatalf("pull = %+v, %v", st, err)
	}
	if len(f.after) != 0 {
		t.Errorf("AfterRoster ran after a failed reconciliation")
	}
	statuses, err := f.puller.Statuses(t.Context(), []string{"harbor-view", "nowhere"})
	if err != nil || len(statuses) != 1 || statuses["harbor-view"].Result != ResultFailed {
		t.Errorf("Statuses = %+v, %v", statuses, err)
	}
}
