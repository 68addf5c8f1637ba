package visitor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// errBusy: a lock is held by another replica (or call) for longer than the
// caller would wait.
var errBusy = errors.New("visitor: busy with the same employee; try again")

// releaseScript deletes a lock only if it is still the caller's, so that a
// holder whose lease ran out cannot release its successor's lock.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0`)

// lockTTL is a lock's lease: longer than the access-system call it guards
// (bounded by AccessTimeout), so that the lease cannot run out while the
// holder still acts.
func (s *Service) lockTTL() time.Duration { return 3 * s.cfg.AccessTimeout }

// lock takes the lock name (SET NX PX with a random owner), waiting up to
// wait for it. Protect takes one per access-system user around every
// status change, so that an activation, a sign-out and a scheduled
// suspension of the same employee never interleave.
func (s *Service) lock(ctx context.Context, name string, wait time.Duration) (release func(), err error) {
	key := s.key("lock", name)
	owner := rand.Text()
	deadline := time.Now().Add(wait)
	for {
		ok, err := s.rdb.SetNX(ctx, key, owner, s.lockTTL()).Result()
		if err != nil {
			return nil, fmt.Errorf("visitor: take lock %s: %w", name, err)
		}
		if ok {
			break
		}
		if !time.Now().Before(deadline) {
			return nil, errBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := releaseScript.Run(rctx, s.rdb, []string{key}, owner).Err(); err != nil {
			s.log.WarnContext(rctx, "visitor: cannot release a lock; it expires on its own", "lock", name, "err", err)
		}
	}, nil
}
