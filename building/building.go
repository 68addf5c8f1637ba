// Package building keeps the property manager's building setup: which
// access-system organisation a building belongs to and which Envoy
// location its visitor events come from.
package building

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Building is one building's setup.
type Building struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Org        string    `json:"org"`
	LocationID string    `json:"locationId"` // Envoy location id
	UpdatedAt  time.Time `json:"updatedAt"`
}

// Errors, for the transport to map.
var (
	ErrInvalid  = errors.New("invalid building")
	ErrNotFound = errors.New("building not found")
)

var idRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Store keeps buildings in a Redis hash per organisation.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewStore returns a Store under keyPrefix (e.g. "ck:v1:").
func NewStore(rdb redis.UniversalClient, keyPrefix string) *Store {
	return &Store{rdb: rdb, prefix: keyPrefix + "buildings:"}
}

func (s *Store) key(org string) string { return s.prefix + "{" + org + "}" }

// Put validates and saves b (b.Org scopes it).
func (s *Store) Put(ctx context.Context, b Building) (Building, error) {
	b.ID, b.Name, b.LocationID = strings.TrimSpace(b.ID), strings.TrimSpace(b.Name), strings.TrimSpace(b.LocationID)
	switch {
	case !idRE.MatchString(b.ID):
		return Building{}, fmt.Errorf("%w: building_id: 1 to 64 letters, digits, '.', '_' or '-'", ErrInvalid)
	case b.Org == "":
		return Building{}, fmt.Errorf("%w: organisation missing", ErrInvalid)
	case b.Name == "" || len(b.Name) > 200:
		return Building{}, fmt.Errorf("%w: name: 1 to 200 characters", ErrInvalid)
	case b.LocationID != "" && !idRE.MatchString(b.LocationID):
		return Building{}, fmt.Errorf("%w: location_id: 1 to 64 letters, digits, '.', '_' or '-'", ErrInvalid)
	}
	b.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	v, _ := json.Marshal(b)
	if err := s.rdb.HSet(ctx, s.key(b.Org), b.ID, v).Err(); err != nil {
		return Building{}, fmt.Errorf("building: save %s: %w", b.ID, err)
	}
	return b, nil
}

// Get returns org's building id.
func (s *Store) Get(ctx context.Context, org, id string) (Building, error) {
	v, err := s.rdb.HGet(ctx, s.key(org), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return Building{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err != nil {
		return Building{}, fmt.Errorf("building: read %s: %w", id, err)
	}
	var b Building
	if err := json.Unmarshal(v, &b); err != nil {
		return Building{}, fmt.Errorf("building: decode %s: %w", id, err)
	}
	return b, nil
}

// List returns org's buildings by id.
func (s *Store) List(ctx context.Context, org string) ([]Building, error) {
	all, err := s.rdb.HGetAll(ctx, s.key(org)).Result()
	if err != nil {
		return nil, fmt.Errorf("building: list: %w", err)
	}
	out := make([]Building, 0, len(all))
	for _, v := range all {
		var b Building
		if json.Unmarshal([]byte(v), &b) == nil {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Location is the Envoy location whose settings and events serve building
// id: its setup's location, or the id itself for a building not set up
// (a building whose id is its Envoy location id needs no setup).
func (s *Store) Location(ctx context.Context, org, id string) (string, error) {
	b, err := s.Get(ctx, org, id)
	if errors.Is(err, ErrNotFound) {
		return id, nil
	}
	if err != nil {
		return "", err
	}
	if b.LocationID == "" {
		return id, nil
	}
	return b.LocationID, nil
}
