package unlock_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/unlock"
)

// secondSystem is a Kisi-like system: it knows alice, gina and hal
// (active) and erin (suspended); lock 9 opens only at its reader. It can
// hang its lookups or its unlocks until the caller gives up.
type secondSystem struct {
	hangLookup, hangUnlock bool
	mu                     sync.Mutex
	unlocked               []string
}

func (s *secondSystem) FindUserByEmail(ctx context.Context, email string) (access.User, error) {
	if s.hangLookup {
		<-ctx.Done()
		return access.User{}, ctx.Err()
	}
	switch email {
	case "alice@example.com", "gina@example.com", "hal@example.com":
		return access.User{ID: "k-" + email[:1], Email: email, Name: strings.ToUpper(email[:1]) + email[1:strings.Index(email, "@")], Status: access.StatusActive}, nil
	case "erin@example.com":
		return access.User{ID: "k-e", Email: email, Status: access.StatusSuspended}, nil
	}
	return access.User{}, access.ErrNotFound
}

func (s *secondSystem) EnsureCloudKey(context.Context, access.User) (string, error) {
	return "login", nil
}

func (s *secondSystem) ListUserEntries(_ context.Context, userID string) ([]access.Entry, error) {
	if userID == "k-g" {
		return []access.Entry{{ID: "7", Name: "Pool"}}, nil
	}
	return []access.Entry{{ID: "7", Name: "Pool"}, {ID: "8", Name: "Package Room"},
		{ID: "9", Name: "Gym", Restriction: "opens only at the door's reader"}}, nil
}

func (s *secondSystem) Unlock(ctx context.Context, _, _, entryID string) error {
	if s.hangUnlock {
		<-ctx.Done()
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unlocked = append(s.unlocked, entryID)
	return nil
}

// halSystem is fakeSystem with hal suspended (the first system's view of
// a resident who moved out of the Openpath side only) and erin too.
type halSystem struct{ fakeSystem }

func (h halSystem) FindUserByEmail(ctx context.Context, email string) (access.User, error) {
	if email == "hal@example.com" || email == "erin@example.com" {
		return access.User{ID: "5", Email: email, Status: access.StatusSuspended}, nil
	}
	return h.fakeSystem.FindUserByEmail(ctx, email)
}

type recordingAuditor struct {
	mu  sync.Mutex
	got []unlock.Attempt
}

func (r *recordingAuditor) Record(a unlock.Attempt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, a)
}

func newPropertyService(t *testing.T, second *secondSystem, wait time.Duration) (*unlock.Service, *fakeCache, *recordingAuditor) {
	t.Helper()
	c := &fakeCache{views: map[string]cache.View{}}
	audit := &recordingAuditor{}
	svc, err := unlock.NewPropertyService([]unlock.Connection{
		{ID: "hv.openpath", Kind: "openpath", Name: "Openpath", System: halSystem{}, Bare: true, Property: "hv"},
		{ID: "hv.kisi", Kind: "kisi", Name: "Kisi", System: second, Property: "hv"},
	}, c, unlock.NewEngine(wait, audit), nil)
	if err != nil {
		t.Fatal(err)
	}
	return svc, c, audit
}

func entryIDs(es []unlock.Entry) []string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID + "@" + e.System
	}
	slices.Sort(ids)
	return ids
}

// A resident's doors are the union of every system's, each naming its
// system, with ids unique in the answer (the first system's bare, the
// others' namespaced by connection); unknown only when no system knows
// the email, disabled only when every system that knows it says so.
func TestPropertyListing(t *testing.T) {
	ctx := context.Background()
	svc, _, _ := newPropertyService(t, &secondSystem{}, 5*time.Second)
	tests := []struct {
		email   string
		want    []string
		err     error
		reasons []string // per system, in GetMe
	}{
		{"alice@example.com", []string{"101@openpath", "102@openpath", "hv.kisi.7@kisi", "hv.kisi.8@kisi", "hv.kisi.9@kisi"}, nil, []string{"", ""}},
		{"gina@example.com", []string{"hv.kisi.7@kisi"}, nil, []string{unlock.ReasonUserNotFound, ""}},
		{"hal@example.com", []string{"hv.kisi.7@kisi", "hv.kisi.8@kisi", "hv.kisi.9@kisi"}, nil, []string{unlock.ReasonUserDisabled, ""}},
		{"dora@example.com", nil, unlock.ErrUserDisabled, []string{unlock.ReasonUserDisabled, unlock.ReasonUserNotFound}},
		{"erin@example.com", nil, unlock.ErrUserDisabled, []string{unlock.ReasonUserDisabled, unlock.ReasonUserDisabled}},
		{"nobody@example.com", nil, unlock.ErrUserNotFound, []string{unlock.ReasonUserNotFound, unlock.ReasonUserNotFound}},
	}
	for _, tc := range tests {
		t.Run(tc.email, func(t *testing.T) {
			es, err := svc.Entries(ctx, tc.email)
			if !errors.Is(err, tc.err) || !slices.Equal(entryIDs(es), tc.want) {
				t.Errorf("Entries = %v, %v; want %v, %v", entryIDs(es), err, tc.want, tc.err)
			}
			me, err := svc.Me(ctx, tc.email)
			if err != nil || len(me.Systems) != 2 {
				t.Fatalf("Me = %+v, %v", me, err)
			}
			if got := []string{me.Systems[0].Reason, me.Systems[1].Reason}; !slices.Equal(got, tc.reasons) {
				t.Errorf("Me's systems' reasons = %q, want %q", got, tc.reasons)
			}
			if me.Connected != (tc.err == nil) || me.EntryCount != len(tc.want) {
				t.Errorf("Me = connected %v with %d entries, want %v with %d", me.Connected, me.EntryCount, tc.err == nil, len(tc.want))
			}
		})
	}
}

// One unlock opens doors on both systems, each result from its own
// system; a restricted lock is DENIED with its reason and never sent; an
// id no connection claims is DENIED; every attempt is audited with its
// system and the property.
func TestPropertyUnlockAcrossSystems(t *testing.T) {
	ctx := context.Background()
	second := &secondSystem{}
	svc, _, audit := newPropertyService(t, second, 5*time.Second)
	ids := []string{"101", "hv.kisi.7", "hv.kisi.9", "hv.kisi.8", "elsewhere.kisi.7"}
	rs, err := svc.Unlock(ctx, "alice@example.com", ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []unlock.Status{unlock.OK, unlock.OK, unlock.Denied, unlock.OK, unlock.Denied}
	for i, r := range rs {
		if r.EntryID != ids[i] || r.Status != want[i] {
			t.Errorf("result %d = %+v, want %s for %s", i, r, want[i], ids[i])
		}
	}
	if !strings.Contains(rs[2].Message, "reader") {
		t.Errorf("restricted lock's message %q does not say why", rs[2].Message)
	}
	if slices.Sort(second.unlocked); !slices.Equal(second.unlocked, []string{"7", "8"}) {
		t.Errorf("the second system was asked to open %v, want 7 and 8 (never the restricted 9)", second.unlocked)
	}
	systems := map[string]string{}
	for _, a := range audit.got {
		systems[a.EntryID] = a.System
		if a.Property != "hv" {
			t.Errorf("%s audited at property %q, want hv", a.EntryID, a.Property)
		}
	}
	if systems["101"] != "hv.openpath" || systems["hv.kisi.7"] != "hv.kisi" || len(audit.got) != len(ids) {
		t.Errorf("audit = %+v", audit.got)
	}

	// gina is on the second system only: her first-system door ids are
	// not hers, and her Kisi door opens.
	rs, err = svc.Unlock(ctx, "gina@example.com", []string{"101", "hv.kisi.7"})
	if err != nil || rs[0].Status != unlock.Denied || rs[1].Status != unlock.OK {
		t.Errorf("gina: %+v, %v", rs, err)
	}
	// Nobody: the call fails as with one system, and nothing is sent.
	if _, err := svc.Unlock(ctx, "nobody@example.com", []string{"101", "hv.kisi.7"}); !errors.Is(err, unlock.ErrUserNotFound) {
		t.Errorf("nobody: %v, want ErrUserNotFound", err)
	}
	if _, err := svc.Unlock(ctx, "erin@example.com", []string{"hv.kisi.7"}); !errors.Is(err, unlock.ErrUserDisabled) {
		t.Errorf("erin: %v, want ErrUserDisabled", err)
	}
}

// A hung system fails only its own doors, within the one deadline: its
// unlock is TIMEOUT (sent, outcome unknown), its unresolvable user is
// UNAVAILABLE (nothing sent), and the other system's door opens.
func TestPropertyUnlockOneSystemHung(t *testing.T) {
	for _, tc := range []struct {
		name   string
		second *secondSystem
		want   unlock.Status
	}{
		{"unlock hangs", &secondSystem{hangUnlock: true}, unlock.Timeout},
		{"lookup hangs", &secondSystem{hangLookup: true}, unlock.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, _, _ := newPropertyService(t, tc.second, 300*time.Millisecond)
			rs, err := svc.Unlock(context.Background(), "alice@example.com", []string{"101", "hv.kisi.7"})
			if err != nil {
				t.Fatal(err)
			}
			if rs[0].Status != unlock.OK || rs[1].Status != tc.want {
				t.Errorf("results = %+v; want OK for the first system's door and %s for the hung one's", rs, tc.want)
			}
		})
	}
}

// Invalidate drops the user's view in every connection (the admin API's
// per-user invalidation), and a refusal drops only the refusing
// connection's.
func TestPropertyInvalidate(t *testing.T) {
	ctx := context.Background()
	svc, c, _ := newPropertyService(t, &secondSystem{}, 5*time.Second)
	if err := svc.Invalidate(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice@example.com", "hv.kisi|alice@example.com"}; !slices.Equal(c.invalidated, want) {
		t.Errorf("invalidated %q, want %q", c.invalidated, want)
	}
	c.invalidated = nil
	if _, err := svc.Unlock(ctx, "alice@example.com", []string{"102", "hv.kisi.7"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"alice@example.com"}; !slices.Equal(c.invalidated, want) {
		t.Errorf("after the first system refused 102: invalidated %q, want %q", c.invalidated, want)
	}
}
