package visitor

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// errBusy: a lock is held by another replica (or call) for longer than the
// caller would wait.
var errBusy = errors.New("visitor: busy with the same employee; try again")

// lockTTL is a lock's lease: longer than the access-system call it guards
// (bounded by AccessTimeout), so that the lease cannot run out while the
// holder still acts.
func (s *Service) lockTTL() time.Duration { return 3 * s.cfg.AccessTimeout }

// lock takes the lock name (SET NX PX with a random owner), waiting up to
// wait for it. Protect takes one per access-system user around every
// status change, so that an activation, a sign-out and a scheduled
// suspension of the same employee never interleave.
func (s *Service) lock(ctx context.Context, name string, wait time.Duration) (release func(), err error) {
	owner := rand.Text()
	deadline := time.Now().Add(wait)
	for {
		ok, err := s.store.TryLock(ctx, name, owner, s.lockTTL())
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
		if err := s.store.Unlock(rctx, name, owner); err != nil {
			s.log.WarnContext(rctx, "visitor: cannot release a lock; it expires on its own", "lock", name, "err", err)
		}
	}, nil
}
