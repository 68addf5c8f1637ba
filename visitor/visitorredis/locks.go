package visitorredis

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// releaseScript deletes a lock only if it is still the caller's, so that a
// holder whose lease ran out cannot release its successor's lock.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// TryLock implements visitor.Locker (SET NX PX).
func (s *Store) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, s.key("lock", name), owner, ttl).Result()
}

// Unlock implements visitor.Locker.
func (s *Store) Unlock(ctx context.Context, name, owner string) error {
	return releaseScript.Run(ctx, s.rdb, []string{s.key("lock", name)}, owner).Err()
}
