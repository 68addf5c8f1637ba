package tenant

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cloudkey/cloudkey/internal/identity"
)

// Listing limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// maxIDLen bounds organisation and building ids: access systems use
// numbers or UUIDs, far shorter.
const maxIDLen = 128

// ContactStore keeps tenant contacts and their grants, per organisation;
// tenantredis.Contacts is the Redis one. Store checks every argument before
// calling it: org is a valid organisation id, email is canonical, building
// is trimmed and valid, limit is between 1 and MaxListLimit. Errors for a
// contact that is not there wrap ErrNotFound. Grants may come in any
// order; Store sorts them.
type ContactStore interface {
	// Get returns org's contact email with its grants.
	Get(ctx context.Context, org, email string) (Contact, error)
	// List returns up to limit of org's contacts with their grants, ordered
	// by email, after cursor ("" for the first), the organisation's count
	// in Total and, when more follow, the page's last email in Next.
	List(ctx context.Context, org, cursor string, limit int) (Page, error)
	// Grant adds building to contact email's grants, checking in the same
	// atomic step that the contact exists.
	Grant(ctx context.Context, org, email, building string) error
	// Revoke removes building from contact email's grants; an unknown
	// contact is ErrNotFound.
	Revoke(ctx context.Context, org, email, building string) error
	// Granted reports whether email has building's grant; an unknown
	// contact has none (not an error).
	Granted(ctx context.Context, org, email, building string) (bool, error)
	// Grants returns contact email's grants; an unknown contact is
	// ErrNotFound.
	Grants(ctx context.Context, org, email string) ([]string, error)
	// Update changes org's contacts atomically: it reads them (without
	// grants; one whose stored value does not decode comes with an empty
	// Name), calls plan with them by email, and writes the changes plan
	// returns whole or not at all, removed contacts' grants with them. When
	// org's contacts change between the read and the write it reads them
	// again and calls plan again; after a few such conflicts it returns
	// ErrConflict.
	Update(ctx context.Context, org string, plan func(existing map[string]Contact) (ContactChanges, error)) error
}

// ContactChanges are what one Update writes.
type ContactChanges struct {
	Created []Contact // new contacts (Org and Buildings are not stored)
	Updated []Contact // contacts replaced whole (their grants are kept)
	Removed []string  // emails of contacts deleted with their grants
	// Grants are tile grants to add (email → building ids), written in
	// the same transaction; the emails are among Created and Updated or
	// the existing contacts.
	Grants map[string][]string
}

// Store keeps tenant contacts and their grants in a ContactStore. It is
// safe for concurrent use.
type Store struct {
	cs  ContactStore
	now func() time.Time // the clock
}

// Option configures a Store.
type Option func(*Store)

// WithClock makes the Store read the time from now (time.Now by default):
// an import's CreatedAt and UpdatedAt. Tests use it.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// NewStore returns a Store keeping contacts in cs.
func NewStore(cs ContactStore, opts ...Option) *Store {
	s := &Store{cs: cs, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// PropertyScope is the scope (the org argument of Store and Buildings)
// that keeps property's contacts, grants and buildings. The default
// property keeps its access-system organisation's (defaultOrg), where the
// release before properties wrote them, so an upgraded deployment's data
// is the default property's with no migration; every other property, and
// the default one when it has no organisation, has its own, "p:<id>" (a
// hash tag of its own in Redis Cluster). Access-system organisation ids
// are numbers or UUIDs, so the two never meet.
func PropertyScope(property, defaultProperty, defaultOrg string) string {
	if property == defaultProperty && defaultOrg != "" {
		return defaultOrg
	}
	return propertyScopePrefix + property
}

// propertyScopePrefix marks a scope of a property's own.
const propertyScopePrefix = "p:"

// ScopeOrg is the access-system organisation of a scope from
// PropertyScope: "" for a property's own.
func ScopeOrg(scope string) string {
	if strings.HasPrefix(scope, propertyScopePrefix) {
		return ""
	}
	return scope
}

// checkOrg refuses an organisation id that could not be a key's hash tag
// or that is surely a mistake (empty, spaces, control characters).
func checkOrg(org string) error {
	if org == "" || len(org) > maxIDLen || !utf8.ValidString(org) ||
		strings.ContainsFunc(org, func(r rune) bool { return r == '{' || r == '}' || unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("tenant: %w: organisation %q is not an access-system organisation id", ErrInvalidArgument, org)
	}
	return nil
}

// checkBuilding returns building trimmed, or an error for one that is
// empty, too long or has control characters.
func checkBuilding(building string) (string, error) {
	b := strings.TrimSpace(building)
	if b == "" || len(b) > maxIDLen || !utf8.ValidString(b) || strings.ContainsFunc(b, unicode.IsControl) {
		return "", fmt.Errorf("tenant: %w: building %q is not a building id", ErrInvalidArgument, building)
	}
	return b, nil
}

// canonical checks org and returns email's canonical form.
func canonical(org, email string) (string, error) {
	if err := checkOrg(org); err != nil {
		return "", err
	}
	e, err := identity.CanonicalEmail(email)
	if err != nil {
		return "", fmt.Errorf("tenant: %w: %w", ErrInvalidArgument, err)
	}
	return e, nil
}

// Get returns org's contact with email, with its grants.
func (s *Store) Get(ctx context.Context, org, email string) (Contact, error) {
	email, err := canonical(org, email)
	if err != nil {
		return Contact{}, err
	}
	c, err := s.cs.Get(ctx, org, email)
	if err != nil {
		return Contact{}, err
	}
	c.Buildings = sorted(c.Buildings)
	return c, nil
}

// Page is one page of a listing.
type Page struct {
	Contacts []Contact // ordered by email
	// Next is the cursor for the following page, "" after the last one.
	// Callers pass it back unchanged.
	Next  string
	Total int // contacts in the organisation
}

// List returns up to limit of org's contacts, with their grants, ordered
// by email, starting after the cursor from the previous page ("" for the
// first). limit 0 means DefaultListLimit; more than MaxListLimit is
// lowered to it.
func (s *Store) List(ctx context.Context, org, cursor string, limit int) (Page, error) {
	if err := checkOrg(org); err != nil {
		return Page{}, err
	}
	switch {
	case limit < 0:
		return Page{}, fmt.Errorf("tenant: %w: limit %d is negative", ErrInvalidArgument, limit)
	case limit == 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	if len(cursor) > 320 {
		return Page{}, fmt.Errorf("tenant: %w: cursor is not one List returned", ErrInvalidArgument)
	}
	page, err := s.cs.List(ctx, org, cursor, limit)
	if err != nil {
		return Page{}, err
	}
	for i := range page.Contacts {
		page.Contacts[i].Buildings = sorted(page.Contacts[i].Buildings)
	}
	return page, nil
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
