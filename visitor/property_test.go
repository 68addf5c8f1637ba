package visitor

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/unlock"
)

// Each location is one property's, and its passes open doors through that
// property's access system: "harbor" (the default) on the harness's
// simulator, "annex" on a simulator of its own, "foundry" with none.
// Settings saved before properties are the default property's.
func TestLocationsPerProperty(t *testing.T) {
	h := newHarness(t)
	annexSim, err := sim.Start(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { annexSim.Close() })
	annexSim.SetClock(h.clock.Now)
	annex, err := openpath.New(openpath.Config{BaseURL: annexSim.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(annex.CloseIdleConnections)
	systems := map[string]access.GuestSystem{"harbor": h.access, "annex": annex}
	svc, err := New(Config{
		Store: h.store, Notifier: h.notes, BaseURL: "https://ck.example.com/", Audit: h.audit, Now: h.clock.Now,
		AccessTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler), DefaultProperty: "harbor",
		Access: func(p string) (access.GuestSystem, bool) { s, ok := systems[p]; return s, ok },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Settings as the release before properties saved them: no property.
	if err := h.store.PutSettings(ctx, loc, []byte(`{"AccessDuration":7200000000000,"Entries":[{"EntryID":"101","VisitorTypes":["Visitor"]}]}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateSettings(ctx, "annex", "L-annex", defaultSettings()); err != nil {
		t.Fatalf("annex's settings: %v", err)
	}

	settings := []struct {
		name, property, location string
		want                     error // nil: the settings are read
	}{
		{"legacy settings are the default property's", "", loc, nil},
		{"named as the default", "harbor", loc, nil},
		{"another property cannot read them", "annex", loc, ErrOtherProperty},
		{"annex reads its own", "annex", "L-annex", nil},
		{"the default cannot read annex's", "", "L-annex", ErrOtherProperty},
		{"unknown location", "annex", "L-none", ErrNoSettings},
	}
	for _, tc := range settings {
		t.Run(tc.name, func(t *testing.T) {
			st, err := svc.Settings(ctx, tc.property, tc.location)
			if !errors.Is(err, tc.want) || err == nil && st.Property != svc.property(tc.property) {
				t.Errorf("Settings = %+v, %v; want %v", st.Property, err, tc.want)
			}
		})
	}
	updates := []struct {
		name, property, location string
		want                     error
	}{
		{"another property cannot take a location", "annex", loc, ErrOtherProperty},
		{"nor the default annex's", "harbor", "L-annex", ErrOtherProperty},
		{"a property without Openpath", "foundry", "L-foundry", ErrNoGuestAccess},
	}
	for _, tc := range updates {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := svc.UpdateSettings(ctx, tc.property, tc.location, defaultSettings()); !errors.Is(err, tc.want) {
				t.Errorf("UpdateSettings = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := svc.Settings(ctx, "foundry", "L-foundry"); !errors.Is(err, ErrNoSettings) {
		t.Errorf("refused settings were saved: %v", err)
	}
	if _, _, err := svc.Register(ctx, Registration{Property: "annex", Location: loc, FullName: "Eve", Email: "eve@example.com",
		VisitorType: "Visitor", ExpectedArrival: t0.Add(time.Hour), Host: "pat@acme.example"}); !errors.Is(err, ErrOtherProperty) {
		t.Errorf("registering at another property's location: %v", err)
	}

	// A pass at each property opens its door through that property's
	// system only, and its audit names the property.
	passes := []struct {
		property, location, email string
		sys                       *sim.Server
	}{
		{"annex", "L-annex", "ann@example.com", annexSim},
		{"", loc, "hal@example.com", h.sim},
	}
	h.clock.Set(t0.Add(time.Hour))
	for _, p := range passes {
		_, out, err := svc.Register(ctx, Registration{Property: p.property, Location: p.location, FullName: "Guest", Email: p.email,
			VisitorType: "Visitor", ExpectedArrival: t0.Add(time.Hour), Host: "pat@acme.example"})
		if err != nil || out.Action != ActionIssued {
			t.Fatalf("%s: register: %+v, %v", p.location, out, err)
		}
		before := [2]int64{h.sim.Calls(sim.OpUseUnlockToken), annexSim.Calls(sim.OpUseUnlockToken)}
		res := must[Result](t)(svc.GuestUnlock(ctx, h.tokenOf(p.email), "101"))
		if res.Status != unlock.OK {
			t.Fatalf("%s: guest unlock %+v", p.location, res)
		}
		mine, other := p.sys.Calls(sim.OpUseUnlockToken), h.sim.Calls(sim.OpUseUnlockToken)+annexSim.Calls(sim.OpUseUnlockToken)-before[0]-before[1]
		if p.sys == h.sim {
			mine -= before[0]
		} else {
			mine -= before[1]
		}
		if mine != 1 || other != 1 {
			t.Errorf("%s: its system used %d times, both %d; want once, through its own", p.location, mine, other)
		}
		audited := h.audit.list()
		if got := audited[len(audited)-1].Property; got != svc.property(p.property) {
			t.Errorf("%s: audited at property %q, want %q", p.location, got, svc.property(p.property))
		}
	}
}
