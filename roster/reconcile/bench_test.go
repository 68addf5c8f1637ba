package reconcile

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/access/kisi/loginredis"
	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/roster"
)

// BenchmarkReconcile10k reconciles 10,000 residents against both
// simulators holding them (Openpath: every user active with one entry;
// Kisi: the same emails, capped by Kisi's largest offset), one report per
// iteration, and reports the upstream calls per report. Every 50th
// resident's email has a dot more in the roster than in the access
// systems, every 97th is absent from both: near misses and misses to find.
func BenchmarkReconcile10k(b *testing.B) {
	const n = 10_000
	op, err := sim.Start(sim.GenerateSeed(n, 1))
	if err != nil {
		b.Fatal(err)
	}
	defer op.Close()
	ks, err := kisisim.Start(kisisim.GenerateSeed(n, 1))
	if err != nil {
		b.Fatal(err)
	}
	defer ks.Close()
	oc, err := openpath.New(openpath.Config{BaseURL: op.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword, Name: "load.openpath"})
	if err != nil {
		b.Fatal(err)
	}
	kc, err := kisi.New(kisi.Config{BaseURL: ks.URL, APIKey: kisisim.LoadAPIKey, Name: "load.kisi", HTTPClient: &http.Client{},
		Logins: loginredis.New(redistest.Start(b).Client(), secrets.Development(), "load.kisi"), OrgRate: 1000})
	if err != nil {
		b.Fatal(err)
	}
	people := make([]roster.Person, 0, n)
	for i := range n {
		email := sim.LoadUserEmail(i)
		switch {
		case i%97 == 0:
			email = fmt.Sprintf("absent%d@load.example.com", i)
		case i%50 == 0:
			email = "u." + email[1:]
		}
		p := roster.Person{Source: roster.SourceCSV, PersonID: fmt.Sprint(i), Unit: fmt.Sprint(i), Status: roster.StatusCurrent}
		if err := p.SetEmail(email); err != nil {
			b.Fatal(err)
		}
		people = append(people, p)
	}
	conns := []Connection{{Name: "load.openpath", Directory: oc}, {Name: "load.kisi", Directory: kc}}
	in := Input{Property: "load", Version: 1, People: people, Today: today}
	b.ReportAllocs()
	b.ResetTimer()
	var r *Report
	for range b.N {
		if r, err = Run(context.Background(), in, conns); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	opCalls := op.Calls(sim.OpListUsers) + op.Calls(sim.OpListUserEntries)
	kisiCalls := ks.Calls(kisisim.OpFetchUsers) + ks.Calls(kisisim.OpFetchRoleAssignments) + ks.Calls(kisisim.OpFetchGroupLocks) + ks.Calls(kisisim.OpFetchPlaces)
	b.ReportMetric(float64(opCalls)/float64(b.N), "openpath-calls/op")
	b.ReportMetric(float64(kisiCalls)/float64(b.N), "kisi-calls/op")
	b.Logf("totals: %+v", r.Totals)
	if r.Totals.WithNearMiss == 0 || r.Totals.NotInAccessSystem == 0 {
		b.Fatalf("the misses were not found: %+v", r.Totals)
	}
}
