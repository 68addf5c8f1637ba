package unlock_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/unlock"
)

// fakeCache is an unlock.Cache in memory: Get loads through the loader
// on a miss, as cache.Store does, without Redis.
type fakeCache struct {
	mu          sync.Mutex
	views       map[string]cache.View
	invalidated []string
	err         error // returned by Get when set
}

func (c *fakeCache) Get(ctx context.Context, email string, l cache.Loader) (cache.View, error) {
	c.mu.Lock()
	v, ok := c.views[email]
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return cache.View{}, err
	}
	if ok {
		return v, nil
	}
	// Loads run unlocked: one system's hung load must not hold the others.
	a, err := l.LoadAccount(ctx, email)
	if errors.Is(err, access.ErrNotFound) {
		a, err = cache.Account{}, nil
	}
	if err != nil {
		return cache.View{}, &cache.LoadError{Part: cache.PartAccount, Err: err}
	}
	v = cache.View{Account: a}
	if a.Active() {
		if v.Entries, err = l.LoadEntries(ctx, a.ID); err != nil {
			return cache.View{}, &cache.LoadError{Part: cache.PartEntries, Err: err}
		}
	}
	c.mu.Lock()
	c.views[email] = v
	c.mu.Unlock()
	return v, nil
}

func (c *fakeCache) SetFavorite(context.Context, string, string, bool) error { return nil }

func (c *fakeCache) Invalidate(_ context.Context, email string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.views, email)
	c.invalidated = append(c.invalidated, email)
	return nil
}

// fakeSystem knows alice (active, entries 101 and 102) and dora
// (suspended); it refuses unlocks of entry 102.
type fakeSystem struct{}

func (fakeSystem) FindUserByEmail(_ context.Context, email string) (access.User, error) {
	switch email {
	case "alice@example.com":
		return access.User{ID: "1", Email: email, Name: "Alice", Status: access.StatusActive}, nil
	case "dora@example.com":
		return access.User{ID: "4", Email: email, Name: "Dora", Status: access.StatusSuspended}, nil
	}
	return access.User{}, access.ErrNotFound
}

func (fakeSystem) EnsureCloudKey(context.Context, access.User) (string, error) { return "9", nil }

func (fakeSystem) ListUserEntries(context.Context, string) ([]access.Entry, error) {
	return []access.Entry{{ID: "102", Name: "Garage"}, {ID: "101", Name: "Lobby"}}, nil
}

func (fakeSystem) Unlock(_ context.Context, _, _, entryID string) error {
	if entryID == "102" {
		return access.ErrDenied
	}
	return nil
}

// The service's rules over any cache: unknown and suspended users are
// domain errors (answers in Me), an entry the user may not open is DENIED
// without a refusal, an access-system refusal drops the user's cached
// view, and a load failure is ErrUnavailable naming what was loaded.
func TestServiceRules(t *testing.T) {
	ctx := context.Background()
	c := &fakeCache{views: map[string]cache.View{}}
	svc := unlock.NewService(fakeSystem{}, "fake", c, unlock.NewEngine(5*time.Second, nil), nil)

	if _, err := svc.Entries(ctx, "nobody@example.com"); !errors.Is(err, unlock.ErrUserNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := svc.Entries(ctx, "dora@example.com"); !errors.Is(err, unlock.ErrUserDisabled) {
		t.Errorf("suspended user: %v", err)
	}
	if me, err := svc.Me(ctx, "dora@example.com"); err != nil || me.Reason != unlock.ReasonUserDisabled {
		t.Errorf("Me(suspended) = %+v, %v", me, err)
	}
	l, err := svc.Listing(ctx, "alice@example.com")
	if es := l.Entries(); err != nil || len(es) != 2 || es[0].Name != "Garage" {
		t.Errorf("Listing = %+v, %v", es, err)
	}

	rs, err := svc.Unlock(ctx, "alice@example.com", []string{"101", "999"})
	if err != nil || rs[0].Status != unlock.OK || rs[1].Status != unlock.Denied || len(c.invalidated) != 0 {
		t.Fatalf("Unlock(101, 999) = %+v, %v, invalidated %v; want OK, DENIED, no drop", rs, err, c.invalidated)
	}
	rs, err = svc.Unlock(ctx, "alice@example.com", []string{"102"})
	if err != nil || rs[0].Status != unlock.Denied || len(c.invalidated) != 1 {
		t.Fatalf("Unlock(102) = %+v, %v, invalidated %v; want DENIED and the view dropped", rs, err, c.invalidated)
	}
	var inv *unlock.InvalidArgumentError
	if _, err := svc.Unlock(ctx, "alice@example.com", nil); !errors.As(err, &inv) {
		t.Errorf("Unlock(nothing): %v", err)
	}

	c.err = &cache.LoadError{Part: cache.PartEntries, Err: access.ErrUnavailable}
	_, err = svc.Entries(ctx, "alice@example.com")
	if !errors.Is(err, unlock.ErrUnavailable) || !errors.Is(err, access.ErrUnavailable) || err.Error()[:len("list entries: ")] != "list entries: " {
		t.Errorf("a failed load: %v; want ErrUnavailable for list entries", err)
	}
	c.err = &cache.LoadError{Part: cache.PartAccount, Err: context.DeadlineExceeded, Stopped: true}
	if _, err = svc.Entries(ctx, "alice@example.com"); errors.Is(err, unlock.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a load past the deadline: %v; want the deadline, not ErrUnavailable", err)
	}
}
