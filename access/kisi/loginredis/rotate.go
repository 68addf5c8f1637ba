package loginredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/secrets"
)

// swap replaces KEYS[1] with ARGV[2] only while it still holds ARGV[1]:
// a login Put (or deleted) since it was read is left alone.
var swap = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`)

// maxTries bounds the re-reads of one login changed under Rotate.
const maxTries = 5

// maxListed bounds the keys an error of Rotate lists.
const maxListed = 20

// Rotate re-seals with keys' primary key every Kisi login stored in rdb,
// of every connection, whose secret another key of the ring sealed; on a
// Redis Cluster it scans every master. total is the logins found, rotated
// those re-sealed. A login changed meanwhile is re-read, never overwritten
// with its old value. Logins no key of the ring opens (or not login
// records) are left as they are and reported in the error, with their
// count and keys; the others are still rotated.
func Rotate(ctx context.Context, rdb redis.UniversalClient, keys *secrets.Keyring) (rotated, total int, err error) {
	found, err := scan(ctx, rdb)
	if err != nil {
		return 0, 0, err
	}
	var bad []string
	for _, key := range found {
		done, exists, err := rotateOne(ctx, rdb, keys, key)
		if err != nil {
			if ctx.Err() != nil || !errors.Is(err, errUnreadable) {
				return rotated, total, fmt.Errorf("loginredis: rotate: %w", err)
			}
			bad = append(bad, key)
		}
		if exists {
			total++
		}
		if done {
			rotated++
		}
	}
	if len(bad) > 0 {
		listed := bad
		if len(listed) > maxListed {
			listed = listed[:maxListed]
		}
		more := ""
		if len(bad) > len(listed) {
			more = fmt.Sprintf(" and %d more", len(bad)-len(listed))
		}
		return rotated, total, fmt.Errorf("loginredis: rotate: %d of %d logins are not readable with keys %s, left as they are: %s%s",
			len(bad), total, strings.Join(keys.IDs(), ", "), strings.Join(listed, " "), more)
	}
	return rotated, total, nil
}

// beforeSwap, when set (tests), runs between a login's read and its
// compare-and-set.
var beforeSwap func(key string)

// errUnreadable marks a login record Rotate cannot open.
var errUnreadable = errors.New("unreadable login")

// rotateOne re-seals key's login if another key than the primary sealed
// it. exists is false when it was deleted meanwhile.
func rotateOne(ctx context.Context, rdb redis.UniversalClient, keys *secrets.Keyring, key string) (done, exists bool, err error) {
	conn, userID, ok := parseKey(key)
	if !ok {
		return false, true, fmt.Errorf("%w: %s: not a login key", errUnreadable, key)
	}
	for range maxTries {
		old, err := rdb.Get(ctx, key).Result()
		if errors.Is(err, redis.Nil) {
			return false, false, nil
		}
		if err != nil {
			return false, true, fmt.Errorf("get %s: %w", key, err)
		}
		var r record
		if err := json.Unmarshal([]byte(old), &r); err != nil {
			return false, true, fmt.Errorf("%w: %s: not a login record", errUnreadable, key)
		}
		if secrets.KeyID(r.Secret) == keys.Primary() {
			return false, true, nil
		}
		l, err := open(keys, conn, userID, []byte(old))
		if err != nil {
			return false, true, fmt.Errorf("%w: %s: %w", errUnreadable, key, err)
		}
		resealed, err := seal(keys, conn, l)
		if err != nil {
			return false, true, fmt.Errorf("%s: %w", key, err)
		}
		if beforeSwap != nil {
			beforeSwap(key)
		}
		n, err := swap.Run(ctx, rdb, []string{key}, old, resealed).Int()
		if err != nil {
			return false, true, fmt.Errorf("set %s: %w", key, err)
		}
		if n == 1 {
			return true, true, nil
		}
		// Put or deleted since read: look again.
	}
	return false, true, fmt.Errorf("%s: changed %d times while being rotated", key, maxTries)
}

// scan returns every login key, sorted, from every master of a Cluster or
// the one server.
func scan(ctx context.Context, rdb redis.UniversalClient) ([]string, error) {
	keys, err := scanMatch(ctx, rdb, keyPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("loginredis: rotate: scan: %w", err)
	}
	return keys, nil
}

// scanMatch returns every key matching pattern, sorted, from every master
// of a Cluster or the one server.
func scanMatch(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var (
		mu   sync.Mutex
		keys []string
	)
	scanNode := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, pattern, 500).Iterator()
		var local []string
		for it.Next(ctx) {
			local = append(local, it.Val())
		}
		if err := it.Err(); err != nil {
			return err
		}
		mu.Lock()
		keys = append(keys, local...)
		mu.Unlock()
		return nil
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scanNode(ctx, c) })
	} else {
		err = scanNode(ctx, rdb)
	}
	if err != nil {
		return nil, err
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil // SCAN may return a key twice
}
