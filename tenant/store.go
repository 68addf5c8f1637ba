package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

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

// Store keeps tenant contacts and their grants in Redis. It is safe for
// concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time // the clock; tests replace it
}

// NewStore returns a Store; keyPrefix is the Redis key prefix (e.g. "ck:v1:").
func NewStore(rdb redis.UniversalClient, keyPrefix string) *Store {
	return &Store{rdb: rdb, prefix: keyPrefix + "tenant:", now: time.Now}
}

// orgKey is a key of org's. The organisation is a hash tag ({org}), so all
// of its keys are in one Redis Cluster slot and one transaction may change
// them; checkOrg keeps braces out of it.
func (s *Store) orgKey(org, kind string) string { return s.prefix + "{" + org + "}:" + kind }

func (s *Store) contactsKey(org string) string { return s.orgKey(org, "contacts") }
func (s *Store) indexKey(org string) string    { return s.orgKey(org, "index") }
func (s *Store) grantsKey(org, email string) string {
	return s.orgKey(org, "grants:"+email)
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
	var rec *redis.StringCmd
	var grants *redis.StringSliceCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGet(ctx, s.contactsKey(org), email)
		grants = p.SMembers(ctx, s.grantsKey(org, email))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) { // Nil: HGET found no contact
		return Contact{}, fmt.Errorf("tenant: get %s: %w", email, err)
	}
	if errors.Is(rec.Err(), redis.Nil) {
		return Contact{}, fmt.Errorf("tenant: %s in organisation %s: %w", email, org, ErrNotFound)
	}
	c, err := decode(org, email, rec.Val())
	if err != nil {
		return Contact{}, err
	}
	c.Buildings = sorted(grants.Val())
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
// lowered to it. A page costs two Redis round trips whatever its size.
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
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	emails, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.indexKey(org), Start: start, Stop: "+", ByLex: true, Count: int64(limit + 1),
	}).Result()
	if err != nil {
		return Page{}, fmt.Errorf("tenant: list organisation %s: %w", org, err)
	}
	var page Page
	if len(emails) > limit {
		emails = emails[:limit]
		page.Next = emails[limit-1]
	}
	var recs *redis.SliceCmd
	var total *redis.IntCmd
	grants := make([]*redis.StringSliceCmd, len(emails))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		total = p.ZCard(ctx, s.indexKey(org))
		if len(emails) > 0 {
			recs = p.HMGet(ctx, s.contactsKey(org), emails...)
		}
		for i, e := range emails {
			grants[i] = p.SMembers(ctx, s.grantsKey(org, e))
		}
		return nil
	})
	if err != nil {
		return Page{}, fmt.Errorf("tenant: list organisation %s: %w", org, err)
	}
	page.Total = int(total.Val())
	page.Contacts = make([]Contact, 0, len(emails))
	for i, e := range emails {
		v, ok := recs.Val()[i].(string)
		if !ok { // removed between the two round trips
			continue
		}
		c, err := decode(org, e, v)
		if err != nil {
			return Page{}, err
		}
		c.Buildings = sorted(grants[i].Val())
		page.Contacts = append(page.Contacts, c)
	}
	return page, nil
}

func decode(org, email, v string) (Contact, error) {
	var r record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return Contact{}, fmt.Errorf("tenant: decode contact %s of organisation %s: %w", email, org, err)
	}
	return r.contact(org, email), nil
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
