package tenant

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Building is one building's setup: which access-system organisation it
// belongs to and which Envoy location its visitor events come from.
type Building struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Org        string    `json:"org"`
	LocationID string    `json:"locationId"` // Envoy location id
	UpdatedAt  time.Time `json:"updatedAt"`
}

// Building errors, for the transport to map.
var (
	ErrInvalidBuilding  = errors.New("invalid building")
	ErrBuildingNotFound = errors.New("building not found")
)

var buildingIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// BuildingStore keeps buildings, per organisation. tenantredis.Buildings
// is the Redis one.
type BuildingStore interface {
	// Save stores b (b.Org scopes it), replacing the building with its id.
	Save(ctx context.Context, b Building) error
	// Get returns org's building id, or ErrBuildingNotFound.
	Get(ctx context.Context, org, id string) (Building, error)
	// List returns org's buildings, in any order.
	List(ctx context.Context, org string) ([]Building, error)
}

// Buildings is the property manager's building setup, kept in a
// BuildingStore.
type Buildings struct {
	store BuildingStore
}

// NewBuildings returns Buildings kept in store.
func NewBuildings(store BuildingStore) *Buildings { return &Buildings{store: store} }

// Put validates and saves b (b.Org scopes it).
func (s *Buildings) Put(ctx context.Context, b Building) (Building, error) {
	b.ID, b.Name, b.LocationID = strings.TrimSpace(b.ID), strings.TrimSpace(b.Name), strings.TrimSpace(b.LocationID)
	switch {
	case !buildingIDRE.MatchString(b.ID):
		return Building{}, fmt.Errorf("%w: building_id: 1 to 64 letters, digits, '.', '_' or '-'", ErrInvalidBuilding)
	case b.Org == "":
		return Building{}, fmt.Errorf("%w: organisation missing", ErrInvalidBuilding)
	case b.Name == "" || len(b.Name) > 200:
		return Building{}, fmt.Errorf("%w: name: 1 to 200 characters", ErrInvalidBuilding)
	case b.LocationID != "" && !buildingIDRE.MatchString(b.LocationID):
		return Building{}, fmt.Errorf("%w: location_id: 1 to 64 letters, digits, '.', '_' or '-'", ErrInvalidBuilding)
	}
	b.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	if err := s.store.Save(ctx, b); err != nil {
		return Building{}, err
	}
	return b, nil
}

// Get returns org's building id.
func (s *Buildings) Get(ctx context.Context, org, id string) (Building, error) {
	return s.store.Get(ctx, org, id)
}

// List returns org's buildings by id.
func (s *Buildings) List(ctx context.Context, org string) ([]Building, error) {
	out, err := s.store.List(ctx, org)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Building) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Location is the Envoy location whose settings and events serve building
// id: its setup's location, or the id itself for a building not set up
// (a building whose id is its Envoy location id needs no setup).
func (s *Buildings) Location(ctx context.Context, org, id string) (string, error) {
	b, err := s.Get(ctx, org, id)
	if errors.Is(err, ErrBuildingNotFound) {
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
