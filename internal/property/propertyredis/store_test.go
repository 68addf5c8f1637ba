package propertyredis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

const (
	opSecret   = "op-password-Qx7"
	kisiSecret = "kisi-api-key-Wz4"
)

func harbor() property.Property {
	return property.Property{ID: "harbor-view", Name: "Harbor View", TimeZone: "America/New_York", Default: true, Access: []property.Connection{
		{System: property.Openpath, Name: "openpath", URL: "https://api.openpath.com", Org: "1", Email: "bot@example.com", Secret: opSecret, PasswordEnv: "HV_PASSWORD"},
		{System: property.Kisi, Name: "kisi", URL: "https://api.kisi.io", Places: []int64{7, 9}, Secret: kisiSecret},
	}}
}

func foundry() property.Property {
	return property.Property{ID: "foundry-lofts", Name: "Foundry Lofts", Access: []property.Connection{
		{System: property.Kisi, Name: "kisi", URL: "https://api.kisi.io", Secret: "foundry-key-Jm2"},
	}}
}

func TestStoreRoundTrip(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		s := New(rdb, secrets.Development())

		if v, err := s.Version(ctx); v != 0 || err != nil {
			t.Fatalf("Version of an empty store = %d, %v", v, err)
		}
		if _, ok, err := s.Get(ctx, "harbor-view"); ok || err != nil {
			t.Fatalf("Get of a missing property = %v, %v", ok, err)
		}
		changed, err := s.Put(ctx, harbor())
		if err != nil || !changed {
			t.Fatalf("first Put = %v, %v", changed, err)
		}
		if _, err := s.Put(ctx, foundry()); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Get(ctx, "harbor-view")
		if err != nil || !ok || !Same(got, harbor()) || !got.Default {
			t.Fatalf("Get = %+v, %v, %v", got, ok, err)
		}
		if got.Access[0].PasswordEnv != "" {
			t.Errorf("the *_env name is stored: %+v", got.Access[0])
		}
		list, err := s.List(ctx)
		if err != nil || len(list) != 2 || list[0].ID != "harbor-view" || list[1].ID != "foundry-lofts" || list[1].Default {
			t.Fatalf("List = %+v, %v", list, err)
		}
		v1, _ := s.Version(ctx)

		// The same property again (the *_env name aside) writes nothing.
		same := harbor()
		same.Access[0].PasswordEnv = "ANOTHER_VAR"
		if changed, err := s.Put(ctx, same); changed || err != nil {
			t.Errorf("Put of the same property = %v, %v; want no change", changed, err)
		}
		// A false Default does not take the default away.
		notDefault := harbor()
		notDefault.Default = false
		if changed, err := s.Put(ctx, notDefault); changed || err != nil {
			t.Errorf("Put without default = %v, %v; want no change", changed, err)
		}
		if v, _ := s.Version(ctx); v != v1 {
			t.Errorf("version %d after unchanged puts, want %d", v, v1)
		}

		// A changed secret is a change.
		rotated := harbor()
		rotated.Access[1].Secret = "a-new-kisi-key"
		if changed, err := s.Put(ctx, rotated); !changed || err != nil {
			t.Errorf("Put of a new secret = %v, %v", changed, err)
		}
		if got, _, _ := s.Get(ctx, "harbor-view"); got.Access[1].Secret != "a-new-kisi-key" {
			t.Errorf("secret after update: %q", got.Access[1].Secret)
		}
		if v, _ := s.Version(ctx); v != v1+1 {
			t.Errorf("version %d after a change, want %d", v, v1+1)
		}

		// Create, Update and Remove.
		if err := s.Create(ctx, foundry()); !errors.Is(err, ErrExists) {
			t.Errorf("Create of an existing id = %v, want ErrExists", err)
		}
		ghost := foundry()
		ghost.ID = "ghost"
		if _, err := s.Update(ctx, ghost); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update of a missing id = %v, want ErrNotFound", err)
		}
		if removed, err := s.Remove(ctx, "harbor-view"); removed || !errors.Is(err, ErrDefault) {
			t.Errorf("Remove of the default = %v, %v; want ErrDefault", removed, err)
		}
		if removed, err := s.Remove(ctx, "foundry-lofts"); !removed || err != nil {
			t.Errorf("Remove = %v, %v", removed, err)
		}
		if removed, err := s.Remove(ctx, "foundry-lofts"); removed || err != nil {
			t.Errorf("second Remove = %v, %v; want nothing removed", removed, err)
		}
		if _, ok, _ := s.Get(ctx, "foundry-lofts"); ok {
			t.Error("a removed property is still stored")
		}
	})
}

// Secrets are sealed: the raw record shows neither, and a sealed secret
// moved to another property or connection does not open.
func TestStoreSealsSecrets(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		s := New(rdb, secrets.Development())
		if _, err := s.Put(ctx, harbor()); err != nil {
			t.Fatal(err)
		}
		raw, err := rdb.HGet(ctx, KeyAll, "harbor-view").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{opSecret, kisiSecret, "Qx7", "Wz4", "HV_PASSWORD"} {
			if strings.Contains(raw, secret) {
				t.Errorf("the stored record shows %q: %s", secret, raw)
			}
		}
		if !strings.Contains(raw, `"secret":"v1.dev.`) {
			t.Errorf("the stored record has no sealed secret: %s", raw)
		}

		// harbor-view's record stored as another property's: it does not open.
		if err := rdb.HSet(ctx, KeyAll, "elsewhere", strings.Replace(raw, `"id":"harbor-view"`, `"id":"elsewhere"`, 1)).Err(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, "elsewhere"); !errors.Is(err, secrets.ErrAuth) {
			t.Errorf("a secret moved to another property: %v, want ErrAuth", err)
		}
		// The two connections' secrets swapped: neither opens.
		var swapped = raw
		i, j := strings.Index(raw, `"secret":"`), strings.LastIndex(raw, `"secret":"`)
		first := raw[i : i+strings.Index(raw[i+10:], `"`)+11]
		second := raw[j : j+strings.Index(raw[j+10:], `"`)+11]
		swapped = strings.Replace(strings.Replace(swapped, first, "@@", 1), second, first, 1)
		swapped = strings.Replace(swapped, "@@", second, 1)
		if err := rdb.HSet(ctx, KeyAll, "harbor-view", swapped).Err(); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, "harbor-view"); !errors.Is(err, secrets.ErrAuth) {
			t.Errorf("secrets swapped between connections: %v, want ErrAuth", err)
		}
		snap, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range snap.Properties {
			if st.Err == nil {
				t.Errorf("property %s opened", st.Property.ID)
			}
		}

		// Another keyring opens nothing.
		other, err := secrets.NewKeySpec("k2")
		if err != nil {
			t.Fatal(err)
		}
		ring, err := secrets.Parse(other)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(rdb, ring).Put(ctx, foundry()); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Get(ctx, "foundry-lofts"); !errors.Is(err, secrets.ErrUnknownKey) {
			t.Errorf("a secret sealed with another key: %v, want ErrUnknownKey", err)
		}
	})
}

// Every change bumps the version and is published; Load's hash of a
// property moves only when it changes.
func TestStoreVersionAndChanges(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		s := New(rdb, secrets.Development())
		wctx, cancel := context.WithCancel(ctx)
		changes := s.Changes(wctx)
		// The subscription is live once a publish reaches it: publish
		// until one does (Subscribe returns before the server confirms).
		if _, err := s.Put(ctx, harbor()); err != nil {
			t.Fatal(err)
		}
		waitChange := func(what string) {
			t.Helper()
			select {
			case <-changes:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no change published", what)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for got := false; !got; {
			p := foundry()
			p.Name = time.Now().String() // a change each time
			if _, err := s.Put(ctx, p); err != nil {
				t.Fatal(err)
			}
			select {
			case <-changes:
				got = true
			case <-time.After(50 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatal("no change published")
				}
			}
		}
		before, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if before.Default != "harbor-view" || len(before.Properties) != 2 {
			t.Fatalf("Load = %+v", before)
		}
		if _, err := s.Remove(ctx, "foundry-lofts"); err != nil {
			t.Fatal(err)
		}
		waitChange("remove")
		renamed := harbor()
		renamed.Name = "Harbour View"
		if _, err := s.Put(ctx, renamed); err != nil {
			t.Fatal(err)
		}
		waitChange("update")
		after, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after.Version != before.Version+2 {
			t.Errorf("version %d after two changes, want %d", after.Version, before.Version+2)
		}
		if len(after.Properties) != 1 || after.Properties[0].Hash == before.Properties[0].Hash {
			t.Errorf("hash of a changed property did not move: %+v", after.Properties)
		}
		if _, err := s.Put(ctx, renamed); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.Load(ctx); again.Properties[0].Hash != after.Properties[0].Hash || again.Version != after.Version {
			t.Errorf("an unchanged put moved the hash or version")
		}
		cancel()
		for range changes { // closed when ctx ends
		}
	})
}

// Rotate re-seals with the primary key what older keys sealed; the
// secrets still open, with the new key alone.
func TestRotate(t *testing.T) {
	ctx := t.Context()
	rdb := redistest.Start(t).Client()
	spec := func(id string) string {
		s, err := secrets.NewKeySpec(id)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	oldSpec, newSpec := spec("k1"), spec("k2")
	ring := func(s string) *secrets.Keyring {
		r, err := secrets.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if _, err := New(rdb, ring(oldSpec)).Put(ctx, harbor()); err != nil {
		t.Fatal(err)
	}
	if _, err := New(rdb, ring(oldSpec)).Put(ctx, foundry()); err != nil {
		t.Fatal(err)
	}
	both := ring(newSpec + "," + oldSpec)
	if rotated, total, err := Rotate(ctx, rdb, both); rotated != 2 || total != 2 || err != nil {
		t.Fatalf("Rotate = %d of %d, %v", rotated, total, err)
	}
	if rotated, total, err := Rotate(ctx, rdb, both); rotated != 0 || total != 2 || err != nil {
		t.Fatalf("second Rotate = %d of %d, %v", rotated, total, err)
	}
	got, ok, err := New(rdb, ring(newSpec)).Get(ctx, "harbor-view")
	if err != nil || !ok || !Same(got, harbor()) {
		t.Errorf("with the new key alone: %+v, %v, %v", got, ok, err)
	}
	if _, _, err := Rotate(ctx, rdb, ring(spec("k3"))); err == nil {
		t.Error("Rotate with a key that opens nothing: no error")
	}
}
