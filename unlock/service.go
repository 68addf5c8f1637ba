package unlock

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

// Cache is what Service needs of the cache (cache.Store): the user's
// view, read through loader, and the two writes.
type Cache interface {
	Get(ctx context.Context, email string, l cache.Loader) (cache.View, error)
	SetFavorite(ctx context.Context, email, entryID string, on bool) error
	Invalidate(ctx context.Context, email string) error
}

// Service is the resident use cases on one access system: it resolves an
// app user (canonical email) to the access-system user through the cache,
// checks the entries they name, fans unlocks out through the Engine
// (which audits each attempt), and drops the user's cached view when the
// access system refuses. Safe for concurrent use.
type Service struct {
	sys     access.System
	sysName string
	cache   Cache
	loader  cache.Loader // boxed once: the hot path passes it as is
	engine  *Engine
	log     *slog.Logger
}

// NewService returns a Service for one access system.
func NewService(sys access.System, sysName string, c Cache, engine *Engine, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{sys: sys, sysName: sysName, cache: c, loader: loader{sys}, engine: engine, log: log}
}

// resolve returns email's view, loaded through the cache (see cache.Get:
// one load per user, bounded by the cache's LoadTimeout and ctx), or the
// domain error for a user who is unknown, not active, or cannot be
// resolved now.
func (s *Service) resolve(ctx context.Context, email string) (cache.View, error) {
	v, err := s.cache.Get(ctx, email, s.loader)
	if err != nil {
		return cache.View{}, upstream(err)
	}
	if !v.Account.Active() {
		if !v.Account.Found() {
			return cache.View{}, ErrUserNotFound
		}
		return cache.View{}, ErrUserDisabled
	}
	return v, nil
}

// loader is the cache's Loader on the access system.
type loader struct{ sys access.System }

// LoadAccount finds the user and, when active, makes sure they have a
// cloud key: the first successful resolution creates it. The cache's
// single flight and load lock make concurrent first calls share this one
// load.
func (l loader) LoadAccount(ctx context.Context, email string) (cache.Account, error) {
	u, err := l.sys.FindUserByEmail(ctx, email)
	if err != nil {
		return cache.Account{}, err
	}
	a := cache.Account{User: u, FetchedAt: time.Now()}
	if !u.Active() {
		return a, nil
	}
	if a.CredentialID, err = l.sys.EnsureCloudKey(ctx, u); err != nil {
		return cache.Account{}, fmt.Errorf("ensure cloud key for user %s: %w", u.ID, err)
	}
	return a, nil
}

// LoadEntries lists the entries the user may open.
func (l loader) LoadEntries(ctx context.Context, userID string) ([]access.Entry, error) {
	return l.sys.ListUserEntries(ctx, userID)
}

// upstream turns the cache's load error into the domain's: the wait's
// end as itself, anything else as ErrUnavailable.
func upstream(err error) error {
	var le *cache.LoadError
	if !errors.As(err, &le) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	op := "find user"
	if le.Part == cache.PartEntries {
		op = "list entries"
	}
	if le.Stopped {
		return fmt.Errorf("%s: %w", op, le.Err)
	}
	// Not logged here: the server logs every UNAVAILABLE answer once, with
	// this error (and so op and the access system's error) in it.
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, le.Err)
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
	me.Connected, me.Name, me.EntryCount = true, v.Account.Name, len(v.Entries)
	if len(v.Entries) == 0 {
		me.Reason, me.Message = ReasonNoEntries, "you are connected but have no entries yet; ask your property manager"
	} else {
		me.Message = fmt.Sprintf("connected: %d entries", len(v.Entries))
	}
	return me, nil
}

// Entries lists email's entries, favourites first, then by name.
func (s *Service) Entries(ctx context.Context, email string) ([]Entry, error) {
	v, err := s.resolve(ctx, email)
	if err != nil {
		return nil, err
	}
	return sortedEntries(v), nil
}

// Listing is a user's entries as Entries lists them, sorted on demand,
// with the version of the cached view they come from: a caller that keeps
// what it derives from a listing (the server keeps its encoded answer)
// can reuse it for the next listing of the same user with the same
// nonzero Version, without sorting again.
type Listing struct {
	// Version is the cache's (cache.View.Version); 0: derive afresh.
	Version uint64
	view    cache.View
}

// Entries returns the listing's entries, favourites first, then by name.
func (l Listing) Entries() []Entry { return sortedEntries(l.view) }

// Listing resolves email as Entries does, and returns its entries unsorted
// with their version.
func (s *Service) Listing(ctx context.Context, email string) (Listing, error) {
	v, err := s.resolve(ctx, email)
	if err != nil {
		return Listing{}, err
	}
	return Listing{Version: v.Version, view: v}, nil
}

// sortedEntries puts favourites first, then sorts by name.
func sortedEntries(v cache.View) []Entry {
	out := make([]Entry, len(v.Entries))
	for i, e := range v.Entries {
		out[i] = Entry{Entry: e, Favorite: v.Favorites[e.ID]}
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
	for _, e := range v.Entries {
		if e.ID == entryID {
			if err := s.cache.SetFavorite(ctx, email, entryID, on); err != nil {
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
func (s *Service) Unlock(ctx context.Context, email string, entryIDs []string) ([]Result, error) {
	if err := ValidateUnlock(entryIDs); err != nil {
		return nil, err
	}
	ctx, cancel := s.engine.WithDeadline(ctx)
	defer cancel()
	v, err := s.resolve(ctx, email)
	if err != nil {
		return nil, err
	}
	results := s.engine.Unlock(ctx, Request{
		Email:    email,
		EntryIDs: entryIDs,
		Targets: func(id string) ([]Target, bool) {
			for _, e := range v.Entries {
				if e.ID == id {
					return []Target{{
						System: s.sys, SystemName: s.sysName,
						UserID: v.Account.ID, CredentialID: v.Account.CredentialID, EntryID: id,
					}}, true
				}
			}
			return nil, false
		},
	})
	for _, r := range results {
		if r.Refused {
			ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			if err := s.cache.Invalidate(ictx, email); err != nil {
				s.log.WarnContext(ctx, "cannot drop cache after refusal", "err", err)
			}
			cancel()
			break
		}
	}
	return results, nil
}
