package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// local is the in-process layer in front of Redis: complete snapshots per
// email for a short TTL, so a cache hit costs no network round trip.
// Staleness is bounded by the TTL; invalidations (own and, through Redis
// pub/sub, other replicas') drop entries at once.
type local struct {
	ttl    time.Duration
	perCap int
	seed   maphash.Seed
	shards [localShards]localShard
	// gen counts invalidations; a snapshot read from Redis is kept only
	// when no invalidation happened during the read, so a read racing an
	// invalidation cannot put the old value back.
	gen atomic.Uint64
}

const localShards = 64

type localShard struct {
	mu sync.RWMutex
	m  map[string]localEntry
}

type localEntry struct {
	snap    snapshot
	expires int64 // unix nanoseconds
}

func newLocal(ttl time.Duration, maxEntries int) *local {
	l := &local{ttl: ttl, perCap: max(1, maxEntries/localShards), seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string]localEntry)
	}
	return l
}

func (l *local) shard(email string) *localShard {
	return &l.shards[maphash.String(l.seed, email)%localShards]
}

func (l *local) get(email string, now int64) (snapshot, bool) {
	sh := l.shard(email)
	sh.mu.RLock()
	e, ok := sh.m[email]
	sh.mu.RUnlock()
	if !ok || now >= e.expires {
		return snapshot{}, false
	}
	return e.snap, true
}

// put keeps snap unless an invalidation happened since gen was read, for
// the layer's TTL but no longer than life (nanoseconds), so that it never
// outlives the Redis copy it was read from.
func (l *local) put(email string, snap snapshot, gen uint64, now, life int64) {
	sh := l.shard(email)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l.gen.Load() != gen {
		return
	}
	if _, ok := sh.m[email]; !ok && len(sh.m) >= l.perCap {
		for k := range sh.m { // bounded memory: evict an arbitrary entry
			delete(sh.m, k)
			break
		}
	}
	sh.m[email] = localEntry{snap: snap, expires: now + min(int64(l.ttl), life)}
}

func (l *local) invalidate(email string) {
	sh := l.shard(email)
	sh.mu.Lock()
	l.gen.Add(1)
	delete(sh.m, email)
	sh.mu.Unlock()
}

func (l *local) invalidateAll() {
	l.gen.Add(1)
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}
