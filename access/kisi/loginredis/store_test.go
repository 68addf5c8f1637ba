package loginredis

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

const conn = "harbor-view.kisi"

// ring returns a keyring of the given ids, each id's key derived from it,
// the first primary.
func ring(t *testing.T, ids ...string) *secrets.Keyring {
	t.Helper()
	var entries []string
	for _, id := range ids {
		k := bytes.Repeat([]byte(id[:1]), secrets.KeySize)
		entries = append(entries, id+":"+base64.StdEncoding.EncodeToString(k))
	}
	r, err := secrets.Parse(strings.Join(entries, ","))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func login(userID int64) kisi.Login {
	return kisi.Login{ID: 1000 + userID, UserID: userID, Secret: "kisi-secret-of-user-" + string(rune('a'+userID%26)) + "-Zq9",
		CreatedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
}

func TestStore(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		keys := ring(t, "k1")
		s := New(rdb, keys, conn)

		if _, ok, err := s.Get(ctx, 7); ok || err != nil {
			t.Fatalf("Get of a missing login = %v, %v", ok, err)
		}
		l := login(7)
		if err := s.Put(ctx, l); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Get(ctx, 7)
		if err != nil || !ok || got != l {
			t.Fatalf("Get = %+v, %v, %v; want %+v", got, ok, err, l)
		}

		// Stored sealed: the raw value does not show the secret, and has
		// no TTL.
		key := "ck:v1:kisi-login:{harbor-view.kisi}:7"
		raw, err := rdb.Get(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(raw, l.Secret) || strings.Contains(raw, "Zq9") || !strings.Contains(raw, `"secret":"v1.k1.`) {
			t.Errorf("stored value %s", raw)
		}
		if ttl := rdb.TTL(ctx, key).Val(); ttl != -1 {
			t.Errorf("TTL %v, want none", ttl)
		}

		// Put replaces.
		l2 := l
		l2.ID, l2.Secret = 2000, "another-secret"
		if err := s.Put(ctx, l2); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := s.Get(ctx, 7); got != l2 {
			t.Errorf("after a second Put: %+v", got)
		}

		// Other connections and users are apart.
		other := New(rdb, keys, "other.kisi")
		if _, ok, err := other.Get(ctx, 7); ok || err != nil {
			t.Errorf("another connection sees the login: %v, %v", ok, err)
		}

		if err := s.Delete(ctx, 7); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.Get(ctx, 7); ok || err != nil {
			t.Errorf("Get after Delete = %v, %v", ok, err)
		}
		if err := s.Delete(ctx, 7); err != nil {
			t.Errorf("Delete of a missing login: %v", err)
		}
		if err := s.Put(ctx, kisi.Login{Secret: "x"}); err == nil {
			t.Error("Put of user 0 accepted")
		}
	})
}

// A record copied to another user's or connection's key does not open
// there, and errors never show the secret.
func TestAADBinding(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		keys := ring(t, "k1")
		s := New(rdb, keys, conn)
		l := login(7)
		if err := s.Put(ctx, l); err != nil {
			t.Fatal(err)
		}
		raw := rdb.Get(ctx, Key(conn, 7)).Val()
		// Same record under user 8: the user_id field says 7.
		copyTo := func(key, val string) {
			if err := rdb.Set(ctx, key, val, 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
		copyTo(Key(conn, 8), raw)
		// The user_id rewritten too: the AAD still binds the secret to 7.
		copyTo(Key(conn, 9), strings.Replace(raw, `"user_id":7`, `"user_id":9`, 1))
		// Another connection's key.
		copyTo(Key("other.kisi", 7), raw)
		for _, tc := range []struct {
			store  *Store
			userID int64
			want   error
		}{
			{s, 8, nil},
			{s, 9, secrets.ErrAuth},
			{New(rdb, keys, "other.kisi"), 7, secrets.ErrAuth},
		} {
			_, ok, err := tc.store.Get(ctx, tc.userID)
			if err == nil || ok {
				t.Errorf("%s user %d: Get = %v, %v; want an error", tc.store.conn, tc.userID, ok, err)
				continue
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("%s user %d: %v, want %v", tc.store.conn, tc.userID, err, tc.want)
			}
			if strings.Contains(err.Error(), l.Secret) {
				t.Errorf("error shows the secret: %v", err)
			}
			t.Logf("%s user %d: %v", tc.store.conn, tc.userID, err)
		}
		copyTo(Key(conn, 10), "not json "+l.Secret)
		if _, _, err := s.Get(ctx, 10); err == nil || strings.Contains(err.Error(), l.Secret) {
			t.Errorf("Get of a non-record: %v", err)
		}
	})
}

// Rotation over two keys: logins sealed with the old key are re-sealed
// with the new primary, on every master of a cluster; they read the same
// before and after, and the old key can then be dropped.
func TestRotate(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		old, both, onlyNew := ring(t, "old"), ring(t, "new", "old"), ring(t, "new")

		const n = 40 // spread over the cluster's slots by the connection
		var want []kisi.Login
		for i := range int64(n) {
			c := conn
			if i%2 == 1 {
				c = "conn-" + string(rune('a'+i%7)) + ".kisi"
			}
			l := login(i + 1)
			if err := New(rdb, old, c).Put(ctx, l); err != nil {
				t.Fatal(err)
			}
			want = append(want, l)
		}
		// One already on the new key.
		if err := New(rdb, both, "fresh.kisi").Put(ctx, login(99)); err != nil {
			t.Fatal(err)
		}

		rotated, total, err := Rotate(ctx, rdb, both)
		if err != nil || rotated != n || total != n+1 {
			t.Fatalf("Rotate = %d of %d, %v; want %d of %d", rotated, total, err, n, n+1)
		}
		// Everything opens with the new key alone, and reads as before.
		for i, l := range want {
			c := conn
			if i%2 == 1 {
				c = "conn-" + string(rune('a'+int64(i)%7)) + ".kisi"
			}
			got, ok, err := New(rdb, onlyNew, c).Get(ctx, l.UserID)
			if err != nil || !ok || got != l {
				t.Errorf("%s %d after rotation: %+v, %v, %v", c, l.UserID, got, ok, err)
			}
		}
		// A second run has nothing to do.
		if rotated, total, err := Rotate(ctx, rdb, both); err != nil || rotated != 0 || total != n+1 {
			t.Errorf("second Rotate = %d of %d, %v", rotated, total, err)
		}
	})
}

// A login sealed with a key the ring lacks is reported, by key, and left
// as it is; the others are still rotated.
func TestRotateUnknownKey(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		if err := New(rdb, ring(t, "lost"), conn).Put(ctx, login(1)); err != nil {
			t.Fatal(err)
		}
		if err := New(rdb, ring(t, "old"), conn).Put(ctx, login(2)); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, Key("x.kisi", 3), "garbage", 0).Err(); err != nil {
			t.Fatal(err)
		}
		before := rdb.Get(ctx, Key(conn, 1)).Val()
		rotated, total, err := Rotate(ctx, rdb, ring(t, "new", "old"))
		if rotated != 1 || total != 3 || err == nil {
			t.Fatalf("Rotate = %d of %d, %v; want 1 of 3 and an error", rotated, total, err)
		}
		for _, w := range []string{"2 of 3 logins", Key(conn, 1), Key("x.kisi", 3), "new, old"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if after := rdb.Get(ctx, Key(conn, 1)).Val(); after != before {
			t.Error("the unreadable login was changed")
		}
		if got, ok, err := New(rdb, ring(t, "new"), conn).Get(ctx, 2); err != nil || !ok || got != login(2) {
			t.Errorf("login 2 after rotation: %+v, %v, %v", got, ok, err)
		}
	})
}

// Rotate never overwrites a login Put meanwhile with its old value: the
// compare-and-set sees the change and re-reads.
func TestRotateConcurrentPut(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		old, both := ring(t, "old"), ring(t, "new", "old")
		const n = 200
		for i := range int64(n) {
			if err := New(rdb, old, conn).Put(ctx, login(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		// While rotating, replace every login with a new secret.
		fresh := func(l kisi.Login) kisi.Login { l.Secret = "replaced-" + l.Secret; return l }
		var wg sync.WaitGroup
		wg.Go(func() {
			s := New(rdb, both, conn)
			for i := int64(n); i >= 1; i-- {
				if err := s.Put(ctx, fresh(login(i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
		_, total, err := Rotate(ctx, rdb, both)
		wg.Wait()
		if err != nil || total != n {
			t.Fatalf("Rotate: %d logins, %v", total, err)
		}
		s := New(rdb, ring(t, "new"), conn)
		for i := int64(1); i <= n; i++ {
			got, ok, err := s.Get(ctx, i)
			if err != nil || !ok || got != fresh(login(i)) {
				t.Fatalf("login %d: %+v, %v, %v; want the one Put during rotation", i, got, ok, err)
			}
		}
	})
}

// A Put between Rotate's read and its write wins: Rotate re-reads, finds
// the new login sealed with the primary and leaves it.
func TestRotateLosesToPut(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		both := ring(t, "new", "old")
		if err := New(rdb, ring(t, "old"), conn).Put(ctx, login(1)); err != nil {
			t.Fatal(err)
		}
		replaced := login(1)
		replaced.Secret = "put-during-rotation"
		calls := 0
		beforeSwap = func(string) {
			calls++
			if err := New(rdb, both, conn).Put(ctx, replaced); err != nil {
				t.Error(err)
			}
		}
		t.Cleanup(func() { beforeSwap = nil })
		rotated, total, err := Rotate(ctx, rdb, both)
		if err != nil || rotated != 0 || total != 1 || calls != 1 {
			t.Fatalf("Rotate = %d of %d, %v (%d swaps tried); want 0 of 1, 1", rotated, total, err, calls)
		}
		if got, _, err := New(rdb, both, conn).Get(ctx, 1); err != nil || got != replaced {
			t.Errorf("login after rotation: %+v, %v; want the one Put", got, err)
		}
	})
}

func TestKeys(t *testing.T) {
	if k := Key("harbor-view.kisi", 42); k != "ck:v1:kisi-login:{harbor-view.kisi}:42" {
		t.Errorf("Key = %q", k)
	}
	for _, k := range []string{Key("a", 1), Key("we}:ird", 7)} {
		c, u, ok := parseKey(k)
		if !ok || Key(c, u) != k {
			t.Errorf("parseKey(%q) = %q, %d, %v", k, c, u, ok)
		}
	}
	for _, k := range []string{"ck:v1:kisi-login:a:1", "ck:v1:kisi-login:{a}:x", "other"} {
		if _, _, ok := parseKey(k); ok {
			t.Errorf("parseKey(%q) accepted", k)
		}
	}
}
