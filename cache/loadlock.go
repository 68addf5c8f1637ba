package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// An account's first load creates the user's cloud-key credential in the
// access system (list before create). The single flight makes concurrent
// first calls of one process share it; across replicas the load is taken
// under a short Redis lock, so two replicas seeing a user's first calls
// at once do not both create one: the replica that does not get the lock
// waits for the other's result in Redis.

// loadLockTTL bounds how long a lock outlives a replica that died holding
// it; a live holder finishes well within LoadTimeout.
const loadLockTTL = 10 * time.Second

// loadLockPoll is how often a replica waiting for another's load looks
// for its result.
const loadLockPoll = 25 * time.Millisecond

// unlockScript deletes the lock only if it is still ours.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

func (s *Store) lockKey(email string) string { return s.cfg.Prefix + "lock:acct:{" + email + "}" }

// underLoadLock runs load under email's cross-replica lock, or returns
// the value another replica stored under it (found by recheck). When
// Redis cannot be asked, load runs unlocked: an outage must not stop
// residents, and the local single flight still bounds the upstream calls.
func (s *Store) underLoadLock(ctx context.Context, email string, recheck func(context.Context) (any, bool), load func(context.Context) (any, error)) (any, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	key := s.lockKey(email)
	for {
		octx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
		ok, err := s.rdb.SetNX(octx, key, token, loadLockTTL).Result()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.cfg.Logger.Warn("cache: cannot take the load lock; loading unlocked", "err", err)
			return load(ctx)
		}
		if ok {
			defer func() {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.OpTimeout)
				defer cancel()
				if err := unlockScript.Run(uctx, s.rdb, []string{key}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
					s.cfg.Logger.Warn("cache: cannot release the load lock; it expires by itself", "err", err)
				}
			}()
			// The holder before us may have stored its result just now.
			if v, ok := recheck(ctx); ok {
				return v, nil
			}
			return load(ctx)
		}
		// Another replica is loading: wait for its result, or for its lock
		// to go (it failed, or died), then try again.
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(loadLockPoll):
			}
			if v, ok := recheck(ctx); ok {
				return v, nil
			}
			octx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
			n, err := s.rdb.Exists(octx, key).Result()
			cancel()
			if err != nil || n == 0 {
				break
			}
		}
	}
}
