package propertyredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/secrets"
)

// Rotate re-seals, with keys' primary key, every stored connection secret
// another key sealed (`cloudkey secrets rotate`), so the older keys can
// then be dropped. rotated counts the properties re-sealed, total those
// stored. A property none of keys opens is left as it is and named in
// the error.
func Rotate(ctx context.Context, rdb redis.UniversalClient, keys *secrets.Keyring) (rotated, total int, err error) {
	s := New(rdb, keys)
	ids, err := rdb.HKeys(ctx, KeyAll).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("propertyredis: rotate: %w", err)
	}
	var bad []error
	for _, id := range ids {
		var version int64
		done := false
		txf := func(tx *redis.Tx) error {
			raw, err := tx.HGet(ctx, KeyAll, id).Bytes()
			if errors.Is(err, redis.Nil) {
				return nil // removed meanwhile
			}
			if err != nil {
				return err
			}
			var r record
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("property %s: the record is not JSON: %w", id, err)
			}
			stale := false
			for _, c := range r.Access {
				stale = stale || secrets.KeyID(c.Secret) != keys.Primary()
			}
			stale = stale || (r.Envoy != nil && secrets.KeyID(r.Envoy.Secret) != keys.Primary())
			if r.PMS != nil {
				stale = stale || secrets.KeyID(r.PMS.Secret) != keys.Primary()
			}
			if !stale {
				return nil
			}
			p, err := s.open(id, raw)
			if err != nil {
				return err
			}
			rec, err := s.seal(p)
			if err != nil {
				return err
			}
			cmds, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				pipe.HSet(ctx, KeyAll, id, rec)
				pipe.Incr(ctx, KeyVersion)
				return nil
			})
			if err != nil {
				return err
			}
			version, done = cmds[1].(*redis.IntCmd).Val(), true
			return nil
		}
		if err := s.watch(ctx, txf); err != nil {
			if ctx.Err() != nil {
				return rotated, total, fmt.Errorf("propertyredis: rotate: %w", err)
			}
			bad = append(bad, err)
		}
		total++
		if done {
			rotated++
			s.publish(ctx, version)
		}
	}
	if len(bad) > 0 {
		return rotated, total, fmt.Errorf("propertyredis: rotate: %d of %d properties left as they are: %w", len(bad), total, errors.Join(bad...))
	}
	return rotated, total, nil
}
