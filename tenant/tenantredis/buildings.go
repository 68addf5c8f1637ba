package tenantredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/tenant"
)

// Buildings is tenant.BuildingStore in Redis: one hash per organisation,
//
//	{prefix}buildings:{ORG}   hash  building id → building JSON
type Buildings struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ tenant.BuildingStore = (*Buildings)(nil)

// NewBuildings returns the store under keyPrefix (e.g. "ck:v1:").
func NewBuildings(rdb redis.UniversalClient, keyPrefix string) *Buildings {
	return &Buildings{rdb: rdb, prefix: keyPrefix + "buildings:"}
}

func (s *Buildings) key(org string) string { return s.prefix + "{" + org + "}" }

// Save implements tenant.BuildingStore.
func (s *Buildings) Save(ctx context.Context, b tenant.Building) error {
	v, _ := json.Marshal(b)
	if err := s.rdb.HSet(ctx, s.key(b.Org), b.ID, v).Err(); err != nil {
		return fmt.Errorf("building: save %s: %w", b.ID, err)
	}
	return nil
}

// Get implements tenant.BuildingStore.
func (s *Buildings) Get(ctx context.Context, org, id string) (tenant.Building, error) {
	v, err := s.rdb.HGet(ctx, s.key(org), id).Bytes()
	if errors.Is(err, redis.Nil) {
		return tenant.Building{}, fmt.Errorf("%w: %q", tenant.ErrBuildingNotFound, id)
	}
	if err != nil {
		return tenant.Building{}, fmt.Errorf("building: read %s: %w", id, err)
	}
	var b tenant.Building
	if err := json.Unmarshal(v, &b); err != nil {
		return tenant.Building{}, fmt.Errorf("building: decode %s: %w", id, err)
	}
	return b, nil
}

// List implements tenant.BuildingStore. A record that does not decode is
// skipped.
func (s *Buildings) List(ctx context.Context, org string) ([]tenant.Building, error) {
	all, err := s.rdb.HGetAll(ctx, s.key(org)).Result()
	if err != nil {
		return nil, fmt.Errorf("building: list: %w", err)
	}
	out := make([]tenant.Building, 0, len(all))
	for _, v := range all {
		var b tenant.Building
		if json.Unmarshal([]byte(v), &b) == nil {
			out = append(out, b)
		}
	}
	return out, nil
}
