// Package resident holds the resident use cases: who am I in the access
// system, which entries may I open, favourites, and unlock. It resolves
// an app user (canonical email) to the access-system user through the
// cache, and hands unlocks to the unlock engine.
package resident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/unlock"
)

// MaxUnlockEntries is the most entries one Unlock may name.
const MaxUnlockEntries = 50

// Reasons, shared with the API (GetMe.reason and google.rpc.ErrorInfo).
const (
	ReasonUserNotFound      = "USER_NOT_FOUND"
	ReasonUserDisabled      = "USER_DISABLED"
	ReasonNoEntries         = "NO_ENTRIES"
	ReasonEntryNotFound     = "ENTRY_NOT_FOUND"
	ReasonAccessUnavailable = "ACCESS_UNAVAILABLE"
)

// Domain errors; the server maps each to a gRPC status in one place.
var (
	ErrUserNotFound = errors.New("no access-system user has this email; ask your property manager to add you")
	ErrUserDisabled = errors.New("your access-system user is suspended or inactive; ask your property manager")
	// ErrUnavailable: the access system could not answer in time.
	ErrUnavailable = errors.New("the access system is unavailable; try again")
)

// EntryNotFoundError: the entry is not one the user may open.
type EntryNotFoundError struct{ EntryID string }

func (e *EntryNotFoundError) Error() string {
	return fmt.Sprintf("entry %q is not one of your entries", e.EntryID)
}

// InvalidArgumentError names the request field that is wrong and why.
type InvalidArgumentError struct {
	Field  string
	Reason string
}

func (e *InvalidArgumentError) Error() string { return e.Field + ": " + e.Reason }

// Entry is an entry as the resident sees it.
type Entry struct {
	access.Entry
	Favorite bool
}

// Me is the resident's link to the access system.
type Me struct {
	Email      string
	Connected  bool
	Reason     string // "" or one of the Reason constants
	Message    string
	Name       string
	EntryCount int
}

// Service implements the resident use cases. Safe for concurrent use.
type Service struct {
	sys     access.System
	sysName string
	store   *cache.Store
	engine  *unlock.Engine
	log     *slog.Logger
}

// New returns a Service for one access system.
func New(sys access.System, sysName string, store *cache.Store, engine *unlock.Engine, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{sys: sys, sysName: sysName, store: store, engine: engine, log: log}
}

type view struct {
	acct      cache.Account
	entries   []access.Entry
	favorites map[string]bool
	// memo is the cached snapshot's when the whole view came from it,
	// else nil.
	memo *cache.Memo
}

// resolve reads the cache in one round trip and loads what is missing
// from the access system, within the cache's LoadTimeout in all (and the
// caller's deadline). A Redis failure degrades to the access system.
func (s *Service) resolve(ctx context.Context, email string) (view, error) {
	snap, err := s.store.Get(ctx, email)
	if err != nil {
		s.log.WarnContext(ctx, "cache unavailable; asking the access system", "err", err)
	}
	v := view{acct: snap.Account, entries: snap.Entries, favorites: snap.Favorites}
	if snap.HasAccount && snap.HasEntries {
		v.memo = snap.Memo
	}
	if !snap.HasAccount || (snap.Account.Active() && !snap.HasEntries) {
		// Something must be loaded: the cache's bound on a load applies
		// to the whole resolution (account, then entries), not to each.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.store.Config().LoadTimeout)
		defer cancel()
	}
	if !snap.HasAccount {
		v.acct, err = s.store.ResolveAccount(ctx, email, func(ctx context.Context) (cache.Account, error) {
			return s.loadAccount(ctx, email)
		})
		if err != nil {
			return view{}, s.upstream(ctx, "find user", err)
		}
	}
	if !v.acct.Active() { // not found, or disabled: no entries to load
		s.store.KeepLoaded(email, snap, v.acct, nil)
		if !v.acct.Found() {
			return view{}, ErrUserNotFound
		}
		return view{}, ErrUserDisabled
	}
	if !snap.HasEntries {
		userID := v.acct.ID
		v.entries, err = s.store.ResolveEntries(ctx, email, func(ctx context.Context) ([]access.Entry, error) {
			return s.sys.ListUserEntries(ctx, userID)
		})
		if err != nil {
			return view{}, s.upstream(ctx, "list entries", err)
		}
	}
	// Redis failed: keep the loaded view in memory for the next calls.
	s.store.KeepLoaded(email, snap, v.acct, v.entries)
	return v, nil
}

// loadAccount finds the user and, when active, makes sure they have a
// cloud key: the first successful resolution creates it. The cache's
// single flight makes concurrent first calls share this one load.
func (s *Service) loadAccount(ctx context.Context, email string) (cache.Account, error) {
	u, err := s.sys.FindUserByEmail(ctx, email)
	if err != nil {
		return cache.Account{}, err
	}
	a := cache.Account{User: u, FetchedAt: time.Now()}
	if !u.Active() {
		return a, nil
	}
	if a.CredentialID, err = s.sys.EnsureCloudKey(ctx, u.ID); err != nil {
		return cache.Account{}, fmt.Errorf("ensure cloud key for user %s: %w", u.ID, err)
	}
	return a, nil
}

func (s *Service) upstream(ctx context.Context, op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
	}
	// Not logged here: the server logs every UNAVAILABLE answer once, with
	// this error (and so op and the access system's error) in it.
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// Me describes email's link to the access system. Unknown and disabled
// users are answers here, not errors.
func (s *Service) Me(ctx context.Context, email string) (Me, error) {
	me := Me{Email: email}
	v, err := s.resolve(ctx, email)
	switch {
	case errors.Is(err, ErrUserNotFound):
		me.Reason, me.Message = ReasonUserNotFound, ErrUserNotFound.Error()
		return me, nil
	case errors.Is(err, ErrUserDisabled):
		me.Reason, me.Message = ReasonUserDisabled, ErrUserDisabled.Error()
		return me, nil
	case err != nil:
		return Me{}, err
	}
	me.Connected, me.Name, me.EntryCount = true, v.acct.Name, len(v.entries)
	if len(v.entries) == 0 {
		me.Reason, me.Message = ReasonNoEntries, "you are connected but have no entries yet; ask your property manager"
	} else {
		me.Message = fmt.Sprintf("connected: %d entries", len(v.entries))
	}
	return me, nil
}

// Entries lists email's entries, favourites first, then by name.
func (s *Service) Entries(ctx context.Context, email string) ([]Entry, error) {
	v, err := s.resolve(ctx, email)
	if err != nil {
		return nil, err
	}
	return v.sortedEntries(), nil
}

// Listing returns build(entries), entries as Entries lists them, and
// reuses the result while the cached snapshot it was built from is served
// from process memory: a warm ListEntries builds (and encodes) its answer
// once per snapshot, not once per call. Every caller shares the result,
// so nobody may modify it, and a snapshot keeps one result, so every
// caller must build the same kind of value (the gRPC server's encoded
// answer is the only one). build's errors are returned, not kept.
func (s *Service) Listing(ctx context.Context, email string, build func([]Entry) (any, error)) (any, error) {
	v, err := s.resolve(ctx, email)
	if err != nil {
		return nil, err
	}
	if v.memo != nil {
		if x := v.memo.Load(); x != nil {
			return x, nil
		}
	}
	x, err := build(v.sortedEntries())
	if err != nil {
		return nil, err
	}
	if v.memo != nil {
		v.memo.Store(x)
	}
	return x, nil
}

// sortedEntries puts favourites first, then sorts by name.
func (v view) sortedEntries() []Entry {
	out := make([]Entry, len(v.entries))
	for i, e := range v.entries {
		out[i] = Entry{Entry: e, Favorite: v.favorites[e.ID]}
	}
	slices.SortStableFunc(out, func(a, b Entry) int {
		if a.Favorite != b.Favorite {
			if a.Favorite {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// SetFavorite marks or unmarks one of email's entries.
func (s *Service) SetFavorite(ctx context.Context, email, entryID string, on bool) (Entry, error) {
	if strings.TrimSpace(entryID) == "" {
		return Entry{}, &InvalidArgumentError{Field: "entry_id", Reason: "must not be empty"}
	}
	v, err := s.resolve(ctx, email)
	if err != nil {
		return Entry{}, err
	}
	for _, e := range v.entries {
		if e.ID == entryID {
			if err := s.store.SetFavorite(ctx, email, entryID, on); err != nil {
				return Entry{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return Entry{Entry: e, Favorite: on}, nil
		}
	}
	return Entry{}, &EntryNotFoundError{EntryID: entryID}
}

// ValidateUnlock checks an unlock request's entry ids.
func ValidateUnlock(entryIDs []string) error {
	switch {
	case len(entryIDs) == 0:
		return &InvalidArgumentError{Field: "entry_ids", Reason: "name at least one entry"}
	case len(entryIDs) > MaxUnlockEntries:
		return &InvalidArgumentError{Field: "entry_ids", Reason: fmt.Sprintf("at most %d entries per call, got %d", MaxUnlockEntries, len(entryIDs))}
	}
	seen := make(map[string]struct{}, len(entryIDs))
	for i, id := range entryIDs {
		if strings.TrimSpace(id) == "" || len(id) > 128 {
			return &InvalidArgumentError{Field: fmt.Sprintf("entry_ids[%d]", i), Reason: "must be a non-empty entry id of at most 128 characters"}
		}
		if _, dup := seen[id]; dup {
			return &InvalidArgumentError{Field: fmt.Sprintf("entry_ids[%d]", i), Reason: fmt.Sprintf("entry %q is named twice", id)}
		}
		seen[id] = struct{}{}
	}
	return nil
}

// Unlock opens email's entries and returns a result per entry. An entry
// the user may not open is DENIED without an upstream call. When the
// access system refuses, the user's cached view is dropped so the next
// call sees the access system's truth (move-out). The whole call, the
// user's resolution included, runs under the engine's deadline: the
// sooner of ctx's and the server cap.
func (s *Service) Unlock(ctx context.Context, email string, entryIDs []string) ([]unlock.Result, error) {
	if err := ValidateUnlock(entryIDs); err != nil {
		return nil, err
	}
	ctx, cancel := s.engine.WithDeadline(ctx)
	defer cancel()
	v, err := s.resolve(ctx, email)
	if err != nil {
		return nil, err
	}
	results := s.engine.Unlock(ctx, unlock.Request{
		Email:    email,
		EntryIDs: entryIDs,
		Targets: func(id string) ([]unlock.Target, bool) {
			for _, e := range v.entries {
				if e.ID == id {
					return []unlock.Target{{
						System: s.sys, SystemName: s.sysName,
						UserID: v.acct.ID, CredentialID: v.acct.CredentialID, EntryID: id,
					}}, true
				}
			}
			return nil, false
		},
	})
	for _, r := range results {
		if r.Refused {
			ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			if err := s.store.Invalidate(ictx, email); err != nil {
				s.log.WarnContext(ctx, "cannot drop cache after refusal", "err", err)
			}
			cancel()
			break
		}
	}
	return results, nil
}
