package cache

import (
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/hotset"
)

// local is the in-process layer in front of Redis: complete snapshots per
// email for a short TTL, so a cache hit costs no network round trip.
// Staleness is bounded by the TTL; invalidations (own and, through Redis
// pub/sub, other replicas') drop entries at once.
//
// Its memory is bounded by a budget in bytes (Config.LocalMaxBytes), by
// an estimate of each snapshot's size (snapshotSize): the hot users stay
// in memory, the rest are read from Redis. Eviction is CLOCK (second
// chance) per shard (package hotset): a user read since the hand last
// passed stays, one read once goes first.
type local struct {
	ttl time.Duration
	m   *hotset.Map[localEntry]
	// gen counts invalidations; a snapshot read from Redis is kept only
	// when no invalidation happened during the read, so a read racing an
	// invalidation cannot put the old value back.
	gen atomic.Uint64
}

type localEntry struct {
	snap    snapshot
	expires int64 // unix nanoseconds
}

func newLocal(ttl time.Duration, maxBytes int64) *local {
	return &local{ttl: ttl, m: hotset.New[localEntry](maxBytes)}
}

func (l *local) get(email string, now int64) (snapshot, bool) {
	e, ok := l.m.Get(email)
	if !ok || now >= e.expires {
		return snapshot{}, false
	}
	return e.snap, true
}

// put keeps snap unless an invalidation happened since gen was read, for
// the layer's TTL but no longer than life (nanoseconds), so that it never
// outlives the Redis copy it was read from.
func (l *local) put(email string, snap snapshot, gen uint64, now, life int64) {
	// The generation is compared under the shard's lock: an invalidation
	// counts before it deletes, so either it finds this entry or this put
	// sees its count.
	l.m.Put(email, localEntry{snap: snap, expires: now + min(int64(l.ttl), life)},
		snapshotSize(email, &snap), func(localEntry, bool) bool { return l.gen.Load() == gen })
}

func (l *local) invalidate(email string) {
	l.gen.Add(1)
	l.m.Delete(email)
}

// invalidatePrefix drops every snapshot whose key starts with prefix.
func (l *local) invalidatePrefix(prefix string) {
	l.gen.Add(1)
	l.m.DeleteIf(func(key string) bool { return strings.HasPrefix(key, prefix) })
}

func (l *local) invalidateAll() {
	l.gen.Add(1)
	l.m.Clear()
}

var (
	localSlotBytes = hotset.SlotOverhead[localEntry]()
	entryBytes     = int64(unsafe.Sizeof(access.Entry{}))
)

// snapshotSize estimates what keeping snap under email costs: the slot
// and index entry, the key, the account's strings, the entry slice and its
// strings, and the favourites map. Strings are counted in full though the
// entries' are interned (shared by the users of a building, see intern):
// the estimate errs on the large side, so the budget bounds memory even
// when nothing is shared.
func snapshotSize(email string, snap *snapshot) int64 {
	n := localSlotBytes + int64(len(email))
	a := &snap.Account
	n += int64(len(a.ID) + len(a.Name) + len(a.CredentialID))
	if a.Email != email {
		n += int64(len(a.Email))
	}
	n += int64(cap(snap.Entries)) * entryBytes
	for i := range snap.Entries {
		e := &snap.Entries[i]
		n += int64(len(e.ID) + len(e.Name) + len(e.Zone) + len(e.Site) + len(e.Restriction))
	}
	if len(snap.Favorites) > 0 {
		n += 48 + 40*int64(len(snap.Favorites)) // header, groups of (key, bool)
		for k := range snap.Favorites {
			n += int64(len(k))
		}
	}
	return n
}
