package propertyredis

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

const pmsSecret = "buildium-secret-Vb8"

func harborWithPMS() property.Property {
	p := harbor()
	p.PMS = &property.PMS{System: property.Buildium, URL: "https://api.buildium.com", ClientID: "bd-client",
		ClientSecret: pmsSecret, ClientSecretEnv: "HV_BD_SECRET", PropertyIDs: []int32{5001, 5003}, Every: 30 * time.Minute}
	return p
}

// The pms block is stored with its secret sealed, bound to the property
// and "pms": it is in no key in clear, it reads back whole, and a change
// to it is a change of the property.
func TestStorePMS(t *testing.T) {
	ctx := t.Context()
	rdb := redistest.Start(t).Client()
	s := New(rdb, secrets.Development())
	if _, err := s.Put(ctx, harborWithPMS()); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		raw, err := rdb.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{pmsSecret, "Vb8", "HV_BD_SECRET"} {
			if strings.Contains(raw, secret) {
				t.Errorf("key %s shows %q", k, secret)
			}
		}
	}
	got, ok, err := s.Get(ctx, "harbor-view")
	if err != nil || !ok {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if !got.PMS.Equal(harborWithPMS().PMS) || got.PMS.ClientSecretEnv != "" {
		t.Errorf("pms read back = %+v", got.PMS)
	}
	if changed, err := s.Put(ctx, harborWithPMS()); changed || err != nil {
		t.Errorf("the same pms block again = %v, %v; want no change", changed, err)
	}
	for _, tt := range []struct {
		name   string
		change func(*property.PMS)
	}{
		{"secret", func(p *property.PMS) { p.ClientSecret = "rotated" }},
		{"ids", func(p *property.PMS) { p.PropertyIDs = []int32{5001} }},
		{"every", func(p *property.PMS) { p.Every = time.Hour }},
	} {
		p := harborWithPMS()
		tt.change(p.PMS)
		if changed, err := s.Put(ctx, p); !changed || err != nil {
			t.Errorf("pms %s changed: Put = %v, %v; want a change", tt.name, changed, err)
		}
	}
	if changed, err := s.Put(ctx, harbor()); !changed || err != nil {
		t.Errorf("pms block dropped: Put = %v, %v; want a change", changed, err)
	}
	if got, _, _ := s.Get(ctx, "harbor-view"); got.PMS != nil {
		t.Errorf("dropped pms block still stored: %+v", got.PMS)
	}
}

// The pms secret sealed under one property does not open under another,
// nor as a connection's secret (a connection may be named "pms").
func TestStorePMSSecretBound(t *testing.T) {
	ctx := t.Context()
	rdb := redistest.Start(t).Client()
	s := New(rdb, secrets.Development())
	p := harborWithPMS()
	p.Access[1].Name = "pms"
	if _, err := s.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	raw, err := rdb.HGet(ctx, KeyAll, "harbor-view").Result()
	if err != nil {
		t.Fatal(err)
	}
	moved := strings.Replace(raw, `"id":"harbor-view"`, `"id":"elsewhere"`, 1)
	moved = strings.Replace(moved, `"access":[`, `"access":[],"was":[`, 1) // only the pms block left to open
	if err := rdb.HSet(ctx, KeyAll, "elsewhere", moved).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "elsewhere"); !errors.Is(err, secrets.ErrAuth) {
		t.Errorf("a pms secret moved to another property: %v, want ErrAuth", err)
	}
	// The pms secret given to the connection named "pms".
	i := strings.Index(raw, `"pms":{`)
	j := strings.Index(raw[i:], `"secret":"`) + i + len(`"secret":"`)
	pmsSealed := raw[j : j+strings.Index(raw[j:], `"`)]
	k := strings.Index(raw, `"name":"pms"`)
	l := strings.Index(raw[k:], `"secret":"`) + k + len(`"secret":"`)
	connSealed := raw[l : l+strings.Index(raw[l:], `"`)]
	swapped := strings.Replace(raw, connSealed, pmsSealed, 1)
	if err := rdb.HSet(ctx, KeyAll, "harbor-view", swapped).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "harbor-view"); !errors.Is(err, secrets.ErrAuth) {
		t.Errorf("the pms secret as connection pms's: %v, want ErrAuth", err)
	}
}

// Rotate re-seals the pms secret with the primary key.
func TestRotatePMS(t *testing.T) {
	ctx := t.Context()
	rdb := redistest.Start(t).Client()
	spec := func(id string) string {
		s, err := secrets.NewKeySpec(id)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ring := func(s string) *secrets.Keyring {
		r, err := secrets.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	oldSpec := spec("k1")
	old := ring(oldSpec)
	if _, err := New(rdb, old).Put(ctx, harborWithPMS()); err != nil {
		t.Fatal(err)
	}
	raw, _ := rdb.HGet(ctx, KeyAll, "harbor-view").Result()
	i := strings.Index(raw, `"pms":{`)
	if !strings.Contains(raw[i:], `"secret":"v1.k1.`) {
		t.Fatalf("pms secret not sealed with k1: %s", raw[i:])
	}
	both := ring(spec("k2") + "," + oldSpec)
	if rotated, _, err := Rotate(ctx, rdb, both); rotated != 1 || err != nil {
		t.Fatalf("Rotate = %d, %v", rotated, err)
	}
	raw, _ = rdb.HGet(ctx, KeyAll, "harbor-view").Result()
	i = strings.Index(raw, `"pms":{`)
	if !strings.Contains(raw[i:], `"secret":"v1.k2.`) {
		t.Errorf("pms secret not re-sealed with k2: %s", raw[i:])
	}
	got, _, err := New(rdb, both).Get(ctx, "harbor-view")
	if err != nil || got.PMS == nil || got.PMS.ClientSecret != pmsSecret {
		t.Errorf("after rotation: %+v, %v", got.PMS, err)
	}
}
