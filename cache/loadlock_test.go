package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/redistest/backends"
)

// Replicas seeing a user's first calls at once load the account once (the
// load creates the cloud key): the others wait for its result in Redis.
// A load that fails releases the lock, and a waiting replica loads itself.
func TestAccountLoadedOnceAcrossReplicas(t *testing.T) {
	for name, dial := range backends.All() {
		t.Run(name, func(t *testing.T) {
			rdb := dial(t)
			ctx := context.Background()
			replicas := []*Store{New(rdb, Config{}), New(rdb, Config{}), New(rdb, Config{})}
			var loads atomic.Int32
			slowLoad := func(context.Context) (Account, error) {
				loads.Add(1)
				time.Sleep(100 * time.Millisecond)
				return alice, nil
			}
			var wg sync.WaitGroup
			for _, r := range replicas {
				for range 5 {
					wg.Go(func() {
						a, err := r.resolveAccount(ctx, "alice@example.com", slowLoad)
						if err != nil || a.CredentialID != alice.CredentialID {
							t.Errorf("ResolveAccount = %+v, %v", a, err)
						}
					})
				}
			}
			wg.Wait()
			if n := loads.Load(); n != 1 {
				t.Errorf("%d loads across 3 replicas, want 1", n)
			}

			// The first replica's load fails: the other still gets an answer,
			// from a load of its own.
			loads.Store(0)
			failing := func(context.Context) (Account, error) {
				loads.Add(1)
				time.Sleep(50 * time.Millisecond)
				return Account{}, errors.New("access system down")
			}
			var errA error
			wg.Go(func() { _, errA = replicas[0].resolveAccount(ctx, "bob@example.com", failing) })
			time.Sleep(10 * time.Millisecond) // replica 0 holds the lock
			b, errB := replicas[1].resolveAccount(ctx, "bob@example.com", func(context.Context) (Account, error) {
				loads.Add(1)
				return alice, nil
			})
			wg.Wait()
			if errA == nil || errB != nil || b.ID != alice.ID || loads.Load() != 2 {
				t.Errorf("after a failed load: errA %v, errB %v, account %+v, loads %d; want the second replica to load itself", errA, errB, b, loads.Load())
			}
		})
	}
}

// With Redis gone the load runs unlocked rather than failing the caller.
func TestAccountLoadWithoutRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := New(srv.Client(), Config{})
	srv.Kill()
	a, err := s.resolveAccount(context.Background(), "alice@example.com", func(context.Context) (Account, error) { return alice, nil })
	if err != nil || a.ID != alice.ID {
		t.Fatalf("ResolveAccount with Redis down = %+v, %v; want the loaded account", a, err)
	}
}
