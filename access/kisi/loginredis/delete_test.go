package loginredis

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/kisisim/kisispec"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

// List returns a connection's logins, and only its, without secrets; an
// unreadable record is named in the error and the others still listed.
func TestList(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		rdb := dial(t)
		keys := ring(t, "k1")
		s := New(rdb, keys, conn)
		if got, err := s.List(ctx); err != nil || len(got) != 0 {
			t.Fatalf("List of none = %v, %v", got, err)
		}
		for _, uid := range []int64{3, 1, 2} {
			if err := s.Put(ctx, login(uid)); err != nil {
				t.Fatal(err)
			}
		}
		// Other connections, one whose id the pattern would match unescaped.
		for _, other := range []string{"other.kisi", "harbor-view.kisi2", "h*"} {
			if err := New(rdb, keys, other).Put(ctx, login(9)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(got, func(a, b kisi.Login) int { return int(a.UserID - b.UserID) })
		var want []kisi.Login
		for _, uid := range []int64{1, 2, 3} {
			l := login(uid)
			l.Secret = ""
			want = append(want, l)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("List = %+v, want %+v", got, want)
		}
		// A glob character in the connection's own id matches itself only.
		if got, err := New(rdb, keys, "h*").List(ctx); err != nil || len(got) != 1 || got[0].UserID != 9 {
			t.Errorf("List of h* = %+v, %v", got, err)
		}

		if err := rdb.Set(ctx, Key(conn, 4), "not a record", 0).Err(); err != nil {
			t.Fatal(err)
		}
		got, err = s.List(ctx)
		if err == nil || !strings.Contains(err.Error(), Key(conn, 4)) || len(got) != 3 {
			t.Errorf("List with a bad record = %d logins, %v", len(got), err)
		}
	})
}

const ivyEmail = "ivy@example.com"

// kisiEnv is a Kisi simulator and a client per demo organisation, each
// connection's logins in Redis.
type kisiEnv struct {
	srv               *kisisim.Server
	rdb               redis.UniversalClient
	keys              *secrets.Keyring
	harbor, foundry   *kisi.Client
	harborS, foundryS *Store
	hc                *http.Client
}

func newKisiEnv(t *testing.T, rdb redis.UniversalClient) *kisiEnv {
	t.Helper()
	seed := kisisim.DemoSeed()
	seed.RateLimit = &kisisim.RateLimit{} // off: the client's own limit is what is tested
	// A third Harbor View resident, with the Pool.
	seed.Orgs[0].Users = append(seed.Orgs[0].Users, kisisim.User{ID: 7029, Email: ivyEmail, Name: "Ivy",
		Access: []kisisim.Access{{LockID: kisisim.DemoPoolID}}})
	srv, err := kisisim.Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() {
		_ = srv.Close()
		tr.CloseIdleConnections()
	})
	hc := &http.Client{Transport: kisispec.Load(t).Transport(t, tr)}
	e := &kisiEnv{srv: srv, rdb: rdb, keys: ring(t, "k1"), hc: hc}
	e.harbor, e.harborS = e.client(t, kisisim.DemoHarborAPIKey, "harbor-view.kisi", 0)
	e.foundry, e.foundryS = e.client(t, kisisim.DemoFoundryAPIKey, "foundry-lofts.kisi", 0)
	return e
}

// client is a client of the organisation apiKey whose logins are conn's,
// its key paced at orgRate requests per second (0: the default).
func (e *kisiEnv) client(t *testing.T, apiKey, conn string, orgRate float64) (*kisi.Client, *Store) {
	t.Helper()
	st := New(e.rdb, e.keys, conn)
	c, err := kisi.New(kisi.Config{BaseURL: e.srv.URL, APIKey: apiKey, Logins: st, HTTPClient: e.hc, Name: conn, OrgRate: orgRate})
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

// openDoor opens lockID for email through c, as a resident's tap does; it
// returns the login id the client made.
func openDoor(t *testing.T, c *kisi.Client, email string, lockID int) string {
	t.Helper()
	ctx := context.Background()
	u, err := c.FindUserByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := c.EnsureCloudKey(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unlock(ctx, u.ID, cred, strconv.Itoa(lockID)); err != nil {
		t.Fatal(err)
	}
	return cred
}

// keysOf is every login key of conn in Redis.
func keysOf(t *testing.T, rdb redis.UniversalClient, conn string) []string {
	t.Helper()
	keys, err := scanMatch(t.Context(), rdb, keyPrefix+"{"+globEscape(conn)+"}:*")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// After frank and gina open doors through the Harbor View connection,
// DeleteLogins leaves no login of it at Kisi nor in Redis; Foundry Lofts'
// connection keeps frank's login there.
func TestDeleteLogins(t *testing.T) {
	backends.Run(t, func(t *testing.T, dial backends.Dial) {
		ctx := t.Context()
		e := newKisiEnv(t, dial(t))
		openDoor(t, e.harbor, kisisim.DemoFrankEmail, kisisim.DemoPoolID)
		openDoor(t, e.harbor, kisisim.DemoGinaEmail, kisisim.DemoPoolID)
		openDoor(t, e.foundry, kisisim.DemoFrankEmail, kisisim.DemoFrontDoorID)
		if h, f := e.srv.OrgDeviceLogins(kisisim.DemoHarborOrgID), e.srv.OrgDeviceLogins(kisisim.DemoFoundryOrgID); h != 2 || f != 1 {
			t.Fatalf("before: %d and %d logins at Kisi", h, f)
		}
		if n := len(keysOf(t, e.rdb, "harbor-view.kisi")); n != 2 {
			t.Fatalf("before: %d logins in Redis", n)
		}

		n, err := e.harbor.DeleteLogins(ctx)
		if err != nil || n != 2 {
			t.Fatalf("DeleteLogins = %d, %v; want 2", n, err)
		}
		if h := e.srv.OrgDeviceLogins(kisisim.DemoHarborOrgID); h != 0 {
			t.Errorf("%d logins left at Kisi", h)
		}
		if k := keysOf(t, e.rdb, "harbor-view.kisi"); len(k) != 0 {
			t.Errorf("left in Redis: %v", k)
		}
		if f := e.srv.OrgDeviceLogins(kisisim.DemoFoundryOrgID); f != 1 || len(keysOf(t, e.rdb, "foundry-lofts.kisi")) != 1 {
			t.Errorf("the other connection lost its login: %d at Kisi", f)
		}
		// Nothing left: a second run deletes nothing.
		if n, err := e.harbor.DeleteLogins(ctx); err != nil || n != 0 {
			t.Errorf("second DeleteLogins = %d, %v", n, err)
		}
	})
}

// A login Kisi fails to delete stays in Redis, named (never its secret)
// in the error, and the next run deletes it; one Kisi no longer has
// (404) counts as deleted.
func TestDeleteLoginsRetry(t *testing.T) {
	ctx := t.Context()
	e := newKisiEnv(t, redistest.Start(t).Client())
	frank := openDoor(t, e.harbor, kisisim.DemoFrankEmail, kisisim.DemoPoolID)
	gina := openDoor(t, e.harbor, kisisim.DemoGinaEmail, kisisim.DemoPoolID)
	stored, ok, err := e.harborS.Get(ctx, kisisim.DemoHarborFrankID)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}

	// Gina's login is revoked at Kisi already (an admin did it); the
	// first delete, frank's (logins go in user order), fails with a 500.
	revoke(t, e.srv, gina)
	if err := e.srv.SetFaults(kisisim.Faults{ErrorRate: 1, ErrorStatus: 500, MaxFaults: 1}); err != nil {
		t.Fatal(err)
	}
	n, err := e.harbor.DeleteLogins(ctx)
	if n != 1 || err == nil {
		t.Fatalf("DeleteLogins = %d, %v; want 1 and frank's failure", n, err)
	}
	msg := err.Error()
	t.Log(msg)
	for _, w := range []string{"login " + frank + " of user " + strconv.Itoa(kisisim.DemoHarborFrankID), "HTTP 500", "1 of 2 deleted"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
	if strings.Contains(msg, stored.Secret) || strings.Contains(msg, kisisim.DemoHarborAPIKey) {
		t.Errorf("error %q shows a secret", msg)
	}
	if k := keysOf(t, e.rdb, "harbor-view.kisi"); len(k) != 1 || k[0] != Key("harbor-view.kisi", kisisim.DemoHarborFrankID) {
		t.Errorf("after the failure, Redis holds %v; want frank's login only", k)
	}
	if h := e.srv.OrgDeviceLogins(kisisim.DemoHarborOrgID); h != 1 {
		t.Errorf("after the failure, %d logins at Kisi; want frank's", h)
	}

	n, err = e.harbor.DeleteLogins(ctx)
	if n != 1 || err != nil {
		t.Fatalf("retry: DeleteLogins = %d, %v; want 1", n, err)
	}
	if h, k := e.srv.OrgDeviceLogins(kisisim.DemoHarborOrgID), keysOf(t, e.rdb, "harbor-view.kisi"); h != 0 || len(k) != 0 {
		t.Errorf("after the retry: %d at Kisi, %v in Redis", h, k)
	}
}

// When the organisation key's rate limit leaves no slot before the
// deadline, the run stops, keeps the rest for a retry and says how many
// are left.
func TestDeleteLoginsStops(t *testing.T) {
	e := newKisiEnv(t, redistest.Start(t).Client())
	openDoor(t, e.harbor, kisisim.DemoFrankEmail, kisisim.DemoPoolID)
	openDoor(t, e.harbor, kisisim.DemoGinaEmail, kisisim.DemoPoolID)
	openDoor(t, e.harbor, ivyEmail, kisisim.DemoPoolID)
	// One request an hour: the first delete takes the bucket's one token.
	slow, _ := e.client(t, kisisim.DemoHarborAPIKey, "harbor-view.kisi", 1.0/3600)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n, err := slow.DeleteLogins(ctx)
	if n != 1 || !errors.Is(err, kisi.ErrRateLimited) ||
		!strings.Contains(err.Error(), "1 of 3 deleted") || !strings.Contains(err.Error(), "stopped with 1 more logins not tried") {
		t.Fatalf("DeleteLogins = %d, %v; want 1 and the rate limit", n, err)
	}
	t.Log(err)
	if k := keysOf(t, e.rdb, "harbor-view.kisi"); len(k) != 2 {
		t.Errorf("Redis holds %v; want the two logins not deleted", k)
	}
	if h := e.srv.OrgDeviceLogins(kisisim.DemoHarborOrgID); h != 2 {
		t.Errorf("%d logins at Kisi; want 2", h)
	}
}

// revoke deletes login id at Kisi with the organisation key.
func revoke(t *testing.T, srv *kisisim.Server, id string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, srv.URL+"/logins/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "KISI-LOGIN "+kisisim.DemoHarborAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke login %s: HTTP %d", id, resp.StatusCode)
	}
}
