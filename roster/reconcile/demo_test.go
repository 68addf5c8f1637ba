package reconcile

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/access/kisi/loginredis"
	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/kisisim/kisispec"
	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/buildium"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/roster/buildiumsim/buildiumspec"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

// demo is harbor-view's or foundry-lofts' Buildium roster and access
// systems, each a simulator over loopback serving its demo seed.
type demo struct {
	people []roster.Person
	conns  []Connection
	op     *sim.Server
	kisi   *kisisim.Server
	store  *rosterredis.Store
}

func startDemo(t *testing.T, buildiumID int32, openpathToo bool, kisiKey string) *demo {
	t.Helper()
	ctx := context.Background()
	bsrv, err := buildiumsim.Start(buildiumsim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bsrv.Close() })
	bc, err := buildium.New(buildium.Config{URL: bsrv.URL, ClientID: buildiumsim.DemoClientID, ClientSecret: buildiumsim.DemoClientSecret,
		PropertyIDs: []int32{buildiumID}, HTTPClient: &http.Client{Transport: buildiumspec.Load(t).Transport(t, nil)}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := bc.Pull(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	d := &demo{people: roster.Assemble(rows).People}
	if openpathToo {
		d.op, err = sim.Start(sim.DemoSeed())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.op.Close() })
		oc, err := openpath.New(openpath.Config{BaseURL: d.op.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword, Name: "hv.openpath"})
		if err != nil {
			t.Fatal(err)
		}
		d.conns = append(d.conns, Connection{Name: "hv.openpath", Directory: oc})
	}
	seed := kisisim.DemoSeed()
	seed.RateLimit = &kisisim.RateLimit{}
	d.kisi, err = kisisim.Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.kisi.Close() })
	rdb := redistest.Start(t).Client()
	d.store = rosterredis.New(rdb)
	kc, err := kisi.New(kisi.Config{BaseURL: d.kisi.URL, APIKey: kisiKey, Name: "hv.kisi",
		Logins: loginredis.New(rdb, secrets.Development(), "hv.kisi"), HTTPClient: kisispec.Load(t).Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	d.conns = append(d.conns, Connection{Name: "hv.kisi", Directory: kc})
	return d
}

// TestDemo reconciles the demo residents (buildiumsim's seed) with the
// demo access systems (sim's and kisisim's seeds): each case the seeds
// were written for lands in its category.
func TestDemo(t *testing.T) {
	tests := []struct {
		name     string
		buildium int32
		openpath bool
		kisiKey  string
		want     []string
		totals   Totals
		hints    []string
	}{
		{
			name: "harbor-view", buildium: buildiumsim.DemoHarborViewID, openpath: true, kisiKey: kisisim.DemoHarborAPIKey,
			want: []string{
				"not_in_access_system id:9005 ~hv.kisi:gina@example.com(dots)", // gi.na in the PMS
				"not_in_access_system id:9009",                                 // dana, future
				"no_entries id:9002 @hv.openpath",                              // bob, Bob@Example.com in the PMS
				"active_after_move_out id:9004 @hv.openpath",                   // erin
				"overdue_notice id:9004",
				"shared_email id:9006", "shared_email id:9007", // Ken and Lee Park
				"matched id:9001 @hv.openpath",                             // alice
				"matched id:9003 @hv.openpath",                             // carol, moved out and suspended
				"matched id:9008 @hv.kisi", "matched id:9008 @hv.openpath", // frank
				"not_in_roster user:200 @hv.openpath", // the service account
				"not_in_roster user:7022 @hv.kisi",    // gina as Kisi writes her
			},
			totals: Totals{People: 9, Matched: 3, NotInAccessSystem: 2, WithNearMiss: 1, NoEntries: 1, ActiveAfterMoveOut: 1, OverdueNotice: 1, SharedEmail: 2, NotInRoster: 2},
			hints:  []string{"gi.na@example.com"},
		},
		{
			name: "foundry-lofts", buildium: buildiumsim.DemoFoundryLoftsID, kisiKey: kisisim.DemoFoundryAPIKey,
			want:   []string{"matched id:9011 @hv.kisi", "matched id:9008 @hv.kisi"}, // by unit: 1A, 2B
			totals: Totals{People: 2, Matched: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			d := startDemo(t, tt.buildium, tt.openpath, tt.kisiKey)
			if _, err := Reconcile(ctx, d.store, tt.name, "America/New_York", d.conns, time.Now()); !errors.Is(err, ErrNoRoster) {
				t.Fatalf("Reconcile without a roster = %v, want ErrNoRoster", err)
			}
			if _, err := d.store.Save(ctx, tt.name, rosterredis.Snapshot{Source: roster.SourceBuildium, People: d.people}); err != nil {
				t.Fatal(err)
			}
			// Noon in New York on the day the expectations are for.
			now := time.Date(today.Year, today.Month, today.Day, 17, 0, 0, 0, time.UTC)
			r, err := Reconcile(ctx, d.store, tt.name, "America/New_York", d.conns, now)
			if err != nil {
				t.Fatal(err)
			}
			links, ok, err := d.store.Links(ctx, tt.name)
			if err != nil || !ok || links.RosterVersion != 1 || !slices.Equal(links.Links, r.Links) || len(links.Links) == 0 {
				t.Errorf("stored links = %+v, %v, %v; want those of the report %+v", links, ok, err, r.Links)
			}
			for _, e := range tt.hints {
				if ok, err := d.store.HasNearMiss(ctx, tt.name, e); !ok || err != nil {
					t.Errorf("HasNearMiss(%s) = %v, %v", e, ok, err)
				}
			}
			var got []string
			for _, row := range r.Rows {
				got = append(got, summary(row))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if r.Totals != tt.totals {
				t.Errorf("totals = %+v, want %+v", r.Totals, tt.totals)
			}
			if !slices.Equal(r.NearMissEmails, tt.hints) {
				t.Errorf("near-miss emails = %v, want %v", r.NearMissEmails, tt.hints)
			}
			if d.op != nil && d.op.Calls(sim.OpCreateCredential) != 0 {
				t.Error("reconciling created an Openpath credential")
			}
			if d.kisi.Calls(kisisim.OpCreateLogin) != 0 {
				t.Error("reconciling created a Kisi login")
			}
		})
	}
}
