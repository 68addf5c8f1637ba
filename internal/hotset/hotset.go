// Package hotset is a concurrent string-keyed map bounded by a memory
// budget in bytes: when an insertion would exceed it, entries are evicted
// by CLOCK (second chance), so what is read again stays and what was read
// once goes first. Each entry's size is the caller's estimate.
//
// The map is split into shards, each with its own lock, its share of the
// budget and its own clock hand. A hit takes the shard's read lock and
// sets the entry's reference bit (only when it is not set already, so a
// hot entry's slot is not written on every read); Get allocates nothing.
// Entries live in a slice of slots indexed by the map, so the map holds
// only small values and an entry costs no allocation of its own.
package hotset

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Shards is the number of shards; each gets Budget/Shards bytes.
const Shards = 64

// Map is the bounded map. The zero value is not usable: call New.
type Map[V any] struct {
	seed        maphash.Seed
	shardBudget int64
	shards      [Shards]shard[V]
}

type shard[V any] struct {
	mu    sync.RWMutex
	idx   map[string]int32 // key → index in slots
	slots []slot[V]
	free  []int32 // unused slots
	hand  int     // the clock hand: next slot to consider for eviction
	bytes int64   // sum of the sizes of the entries held
}

type slot[V any] struct {
	key  string
	val  V
	size int64
	ref  atomic.Uint32 // read since the hand last passed
	used bool
}

// SlotOverhead is what one entry costs the map beyond its value's own
// allocations: its slot (key header, value, size, flags), its index entry
// and a share of the slices' spare capacity. Callers add it (and the
// key's bytes) to their size estimate.
func SlotOverhead[V any]() int64 {
	var s slot[V]
	// index: key header (16) + int32 + control byte, at a 7/8 load factor;
	// slots grow by doubling: about a quarter spare on average.
	return int64(unsafe.Sizeof(s))*5/4 + 32
}

// New returns a map holding at most about budget bytes (by the sizes given
// to Put). A budget smaller than Shards bytes keeps nothing.
func New[V any](budget int64) *Map[V] {
	m := &Map[V]{seed: maphash.MakeSeed(), shardBudget: budget / Shards}
	for i := range m.shards {
		m.shards[i].idx = make(map[string]int32)
	}
	return m
}

func (m *Map[V]) shard(key string) *shard[V] {
	return &m.shards[maphash.String(m.seed, key)%Shards]
}

// Get returns key's value and marks it as used.
func (m *Map[V]) Get(key string) (V, bool) {
	sh := m.shard(key)
	sh.mu.RLock()
	i, ok := sh.idx[key]
	if !ok {
		sh.mu.RUnlock()
		var zero V
		return zero, false
	}
	s := &sh.slots[i]
	if s.ref.Load() == 0 {
		s.ref.Store(1)
	}
	v := s.val
	sh.mu.RUnlock()
	return v, true
}

// Put stores v as key's value, counting size bytes for it, evicting as
// needed. keep, when not nil, is asked under the shard's lock with the
// value held now (had: whether there is one) and Put stores v only when
// it returns true; it must be quick and must not use the map. A value
// larger than a shard's budget is not stored. Put reports whether v was
// stored.
func (m *Map[V]) Put(key string, v V, size int64, keep func(old V, had bool) bool) bool {
	sh := m.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i, had := sh.idx[key]
	if keep != nil {
		var old V
		if had {
			old = sh.slots[i].val
		}
		if !keep(old, had) {
			return false
		}
	}
	ref := uint32(0)
	if had { // a refreshed entry is in use: it keeps its second chance
		ref = 1
		sh.remove(i)
	}
	if size > m.shardBudget {
		return false
	}
	for sh.bytes+size > m.shardBudget {
		sh.evictOne()
	}
	if n := len(sh.free); n > 0 {
		i = sh.free[n-1]
		sh.free = sh.free[:n-1]
	} else {
		sh.slots = append(sh.slots, slot[V]{})
		i = int32(len(sh.slots) - 1)
	}
	s := &sh.slots[i]
	s.key, s.val, s.size, s.used = key, v, size, true
	s.ref.Store(ref)
	sh.idx[key] = i
	sh.bytes += size
	return true
}

// evictOne removes one entry: the first the hand finds unreferenced,
// clearing reference bits on its way (at most one full turn). The shard
// holds at least one entry.
func (sh *shard[V]) evictOne() {
	for {
		if sh.hand >= len(sh.slots) {
			sh.hand = 0
		}
		s := &sh.slots[sh.hand]
		if s.used {
			if s.ref.Load() == 0 {
				sh.remove(int32(sh.hand))
				sh.hand++
				return
			}
			s.ref.Store(0)
		}
		sh.hand++
	}
}

// remove drops slot i's entry.
func (sh *shard[V]) remove(i int32) {
	s := &sh.slots[i]
	delete(sh.idx, s.key)
	sh.bytes -= s.size
	var zero V
	s.key, s.val, s.size, s.used = "", zero, 0, false
	s.ref.Store(0)
	sh.free = append(sh.free, i)
}

// Delete drops key's value, if any.
func (m *Map[V]) Delete(key string) {
	sh := m.shard(key)
	sh.mu.Lock()
	if i, ok := sh.idx[key]; ok {
		sh.remove(i)
	}
	sh.mu.Unlock()
}

// DeleteIf drops every value whose key match reports true, shard by shard
// (each under its lock, so match must be quick and must not use the map),
// and returns how many it dropped. It visits every entry: it is for rare
// bulk removals, not the hot path.
func (m *Map[V]) DeleteIf(match func(key string) bool) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for key, j := range sh.idx {
			if match(key) {
				sh.remove(j) // deleting the current key while ranging is allowed
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// Clear drops every value and releases the slots.
func (m *Map[V]) Clear() {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		clear(sh.idx)
		sh.slots, sh.free, sh.hand, sh.bytes = nil, nil, 0, 0
		sh.mu.Unlock()
	}
}

// Stats are the map's entry count and the sum of their sizes.
func (m *Map[V]) Stats() (entries int, bytes int64) {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.RLock()
		entries += len(sh.idx)
		bytes += sh.bytes
		sh.mu.RUnlock()
	}
	return entries, bytes
}

// Budget is the map's budget in bytes, as the shards share it.
func (m *Map[V]) Budget() int64 { return m.shardBudget * Shards }
