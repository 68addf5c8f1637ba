package unlock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/unlock"
)

// gatedSystem is secondSystem whose unlocks wait for the gate, telling
// started when one is waiting.
type gatedSystem struct {
	secondSystem
	started chan struct{}
	gate    chan struct{}
}

func (g *gatedSystem) Unlock(ctx context.Context, userID, credID, entryID string) error {
	g.started <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.secondSystem.Unlock(ctx, userID, credID, entryID)
}

func kisiProperty(t *testing.T, id string, sys access.System, engine *unlock.Engine) *unlock.Service {
	t.Helper()
	svc, err := unlock.NewPropertyService([]unlock.Connection{{ID: id + ".kisi", Kind: "kisi", Name: "Kisi", System: sys, Property: id}},
		&fakeCache{views: map[string]cache.View{}}, engine, nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// Properties are added, replaced and removed while the portfolio serves:
// a removed property is unknown to the next call, the default cannot be
// removed, and an unlock in flight on a removed property finishes on the
// service it started with.
func TestPortfolioSetAndRemove(t *testing.T) {
	ctx := context.Background()
	engine := unlock.NewEngine(5*time.Second, &recordingAuditor{})
	hv, _, _ := newPropertyService(t, &secondSystem{}, 5*time.Second)
	gated := &gatedSystem{started: make(chan struct{}), gate: make(chan struct{})}
	p, err := unlock.NewPortfolio("hv", map[string]*unlock.Service{"hv": hv, "fl": kisiProperty(t, "fl", gated, engine)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Remove("hv"); err == nil {
		t.Fatal("the default property was removed")
	}
	if _, err := p.Entries(ctx, "alice@example.com", nil); err != nil {
		t.Fatalf("the default property after a refused removal: %v", err)
	}

	// An unlock on fl in flight while fl is removed.
	type answer struct {
		rs  []unlock.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		rs, err := p.Unlock(ctx, "alice@example.com", []string{"fl"}, []string{"fl.kisi.7"})
		done <- answer{rs, err}
	}()
	<-gated.started
	if err := p.Remove("fl"); err != nil {
		t.Fatal(err)
	}
	var unknown *unlock.UnknownPropertyError
	if _, err := p.Entries(ctx, "alice@example.com", []string{"fl"}); !errors.As(err, &unknown) {
		t.Errorf("a removed property's entries: %v, want UnknownPropertyError", err)
	}
	if _, err := p.Entries(ctx, "alice@example.com", []string{"hv", "fl"}); !errors.As(err, &unknown) {
		t.Errorf("a removed property among others: %v, want UnknownPropertyError", err)
	}
	close(gated.gate)
	a := <-done
	if a.err != nil || len(a.rs) != 1 || a.rs[0].Status != unlock.OK {
		t.Errorf("the unlock in flight: %+v, %v; want OK", a.rs, a.err)
	}
	if p.Has("fl") {
		t.Error("Has(fl) after its removal")
	}

	// Added back, then replaced: the next call is served by the new one.
	if err := p.Set("fl", kisiProperty(t, "fl", &secondSystem{}, engine)); err != nil {
		t.Fatal(err)
	}
	es, err := p.Entries(ctx, "gina@example.com", []string{"fl"})
	if err != nil || len(es) != 1 {
		t.Fatalf("fl added back: %v, %v", entryIDs(es), err)
	}
	other := &secondSystem{hangLookup: true}
	if err := p.Set("fl", kisiProperty(t, "fl", other, engine)); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.Entries(short, "hank@example.com", []string{"fl"}); err == nil {
		t.Error("the replaced property still answered: its replacement hangs every lookup")
	}
	// The default replaced: calls without a properties claim use it.
	if err := p.Set("hv", kisiProperty(t, "hv", &secondSystem{}, engine)); err != nil {
		t.Fatal(err)
	}
	if es, err := p.Entries(ctx, "gina@example.com", nil); err != nil || len(es) != 1 || es[0].ID != "hv.kisi.7" {
		t.Errorf("the replaced default: %v, %v", entryIDs(es), err)
	}
}
