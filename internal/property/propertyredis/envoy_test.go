package propertyredis

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

const envoySecret = "envoy-client-secret-Hk8"

func withEnvoy() property.Property {
	p := harbor()
	p.Envoy = &property.Envoy{URL: "https://envoy.example", ClientID: "client-7", ClientSecretEnv: "HV_ENVOY", Locations: []string{"152347"}, Secret: envoySecret}
	// A connection named "envoy": its secret must not open as the Envoy
	// client secret, nor the other way round.
	p.Access[1].Name = "envoy"
	return p
}

// The Envoy connection round-trips with its secret sealed under the
// property: not in the record, not opening as another property's nor as a
// connection's, changes seen by Same, re-sealed by Rotate.
func TestEnvoyConnectionSealed(t *testing.T) {
	ctx := t.Context()
	rdb := redistest.Start(t).Client()
	s := New(rdb, secrets.Development())
	p := withEnvoy()
	if _, err := s.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(ctx, p.ID)
	if err != nil || !ok {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if got.Envoy == nil || got.Envoy.Secret != envoySecret || got.Envoy.ClientID != "client-7" || !got.Envoy.Serves("152347") || !Same(got, p) {
		t.Fatalf("Envoy = %+v", got.Envoy)
	}
	raw, err := rdb.HGet(ctx, KeyAll, p.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw, envoySecret) || strings.Contains(raw, "HV_ENVOY") {
		t.Errorf("the record shows the Envoy secret or its variable: %s", raw)
	}
	if changed, err := s.Put(ctx, p); err != nil || changed {
		t.Errorf("the same property again: changed %v, %v", changed, err)
	}

	tests := []struct {
		name   string
		change func(*property.Property)
	}{
		{"secret", func(p *property.Property) { p.Envoy.Secret = "other" }},
		{"client id", func(p *property.Property) { p.Envoy.ClientID = "client-8" }},
		{"locations", func(p *property.Property) { p.Envoy.Locations = []string{"152347", "9"} }},
		{"url", func(p *property.Property) { p.Envoy.URL = "" }},
		{"removed", func(p *property.Property) { p.Envoy = nil }},
	}
	for _, tc := range tests {
		q := withEnvoy()
		tc.change(&q)
		if Same(p, q) {
			t.Errorf("%s changed: Same says equal", tc.name)
		}
	}

	// The Envoy secret swapped with the connection named "envoy": neither opens.
	sealed := func(field string) string {
		i := strings.Index(raw, field)
		j := strings.Index(raw[i:], `"secret":"`) + i + 10
		return raw[j : j+strings.Index(raw[j:], `"`)]
	}
	envoySealed, connSealed := sealed(`"envoy":`), sealed(`"name":"envoy"`)
	swapped := strings.Replace(strings.Replace(raw, envoySealed, "@@", 1), connSealed, envoySealed, 1)
	swapped = strings.Replace(swapped, "@@", connSealed, 1)
	if err := rdb.HSet(ctx, KeyAll, p.ID, swapped).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, p.ID); !errors.Is(err, secrets.ErrAuth) {
		t.Errorf("the Envoy secret swapped with a connection's: %v, want ErrAuth", err)
	}
	if err := rdb.HSet(ctx, KeyAll, "elsewhere", strings.Replace(raw, `"id":"harbor-view"`, `"id":"elsewhere"`, 1)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "elsewhere"); !errors.Is(err, secrets.ErrAuth) {
		t.Errorf("the record moved to another property: %v, want ErrAuth", err)
	}
}

// cloudkey secrets rotate re-seals the Envoy secret too.
func TestRotateEnvoy(t *testing.T) {
	ctx := t.Context()
	rdb := redistest.Start(t).Client()
	spec := func(id string) string {
		t.Helper()
		s, err := secrets.NewKeySpec(id)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ring := func(s string) *secrets.Keyring {
		t.Helper()
		r, err := secrets.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	oldSpec, newSpec := spec("k1"), spec("k2")
	if _, err := New(rdb, ring(oldSpec)).Put(ctx, withEnvoy()); err != nil {
		t.Fatal(err)
	}
	if rotated, total, err := Rotate(ctx, rdb, ring(newSpec+","+oldSpec)); rotated != 1 || total != 1 || err != nil {
		t.Fatalf("Rotate = %d of %d, %v", rotated, total, err)
	}
	got, ok, err := New(rdb, ring(newSpec)).Get(ctx, "harbor-view")
	if err != nil || !ok || got.Envoy == nil || got.Envoy.Secret != envoySecret {
		t.Fatalf("with the new key alone: %+v, %v, %v", got.Envoy, ok, err)
	}
}
