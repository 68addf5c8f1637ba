package visitorredis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/visitor"
)

// ClusterPrefix is the default key prefix on a Redis Cluster. The hash
// tag {vis} keeps all visitor keys in one slot, as the multi-key
// transactions and scripts need; visitor traffic (webhooks, guest taps,
// Protect jobs) is small enough for one node. A single server keeps the
// untagged "ck:v1:vis:" names it has always used.
const ClusterPrefix = "ck:v1:{vis}:"

// DefaultPrefix is the default key prefix on anything but a Redis Cluster.
const DefaultPrefix = "ck:v1:vis:"

// Store is visitor.Store in one Redis, or in a cluster where the prefix
// pins one slot (the default prefix does on a *redis.ClusterClient):
// visits are updated in WATCH/MULTI transactions over several keys and
// the job queue is claimed by Lua scripts. It is safe for concurrent use.
//
// Keys, all under the prefix:
//
//	set:{location}      settings (JSON), no TTL
//	eloc:{prop}:{entry} the locations of a property mapping an entry (SET), no TTL
//	visit:{key}         a visit, keyed "inv:{inviteID}" or "ent:{entryID}" (JSON)
//	link:{entryID}      an Envoy entry → the visit it belongs to ("inv:...")
//	tok:{sha256 hex}    a link token's hash → its visit key
//	evt:{digest}        a handled event's outcome (JSON), for redeliveries
//	log:{location}      the latest decisions (list of JSON, capped)
//	emp:{entryID}       an employee entry that signed out (tombstone)
//	host:{loc}:{email}  a host's registrations (ZSET invite id → arrival, s)
//	prot:due, prot:run  scheduled and claimed suspensions (ZSETs by time in ms)
//	prot:job            the suspensions' data (hash by user id)
//	lock:{name}         short-lived locks
//	pidx:{prop}         a property's passes (ZSET visit key → start, s)
//	pidx:{prop}:{loc}   the same for one location
//	pid:{passID}        a pass id → its visit key
//	tag:{tag}           a tile registration's contact details (tags.go)
//	txn                 never written: what read-only transactions watch
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ visitor.Store = (*Store)(nil)

// New returns a Store on rdb; prefix "" means DefaultPrefix, or
// ClusterPrefix on a *redis.ClusterClient.
func New(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = DefaultPrefix
		if _, ok := rdb.(*redis.ClusterClient); ok {
			prefix = ClusterPrefix
		}
	}
	return &Store{rdb: rdb, prefix: prefix}
}

func (s *Store) key(parts ...string) string { return s.prefix + strings.Join(parts, ":") }

func (s *Store) visitKey(key string) string    { return s.key("visit", key) }
func (s *Store) linkKey(entryID string) string { return s.key("link", entryID) }
func (s *Store) tokenKey(hash string) string   { return s.key("tok", hash) }

// get reads a string key; ok is false when it is absent.
func get(ctx context.Context, c redis.Cmdable, key string) ([]byte, bool, error) {
	b, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// Settings implements visitor.SettingsStore.
func (s *Store) Settings(ctx context.Context, location string) ([]byte, bool, error) {
	return get(ctx, s.rdb, s.key("set", location))
}

// PutSettings implements visitor.SettingsStore.
func (s *Store) PutSettings(ctx context.Context, location string, data []byte) error {
	return s.rdb.Set(ctx, s.key("set", location), data, 0).Err()
}

// entryLocKey is the set of the locations of property that map entryID.
func (s *Store) entryLocKey(property, entryID string) string {
	return s.key("eloc", property, entryID)
}

// SaveSettings implements visitor.SettingsStore: the settings and the
// entry index change in one MULTI.
func (s *Store) SaveSettings(ctx context.Context, w visitor.SettingsWrite) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.key("set", w.Location), w.Data, 0)
		for _, e := range w.Mapped {
			p.SAdd(ctx, s.entryLocKey(w.Property, e), w.Location)
		}
		for _, e := range w.Unmapped {
			p.SRem(ctx, s.entryLocKey(w.Property, e), w.Location)
		}
		return nil
	})
	return err
}

// EntryLocations implements visitor.SettingsStore.
func (s *Store) EntryLocations(ctx context.Context, property string, entryIDs []string) (map[string][]string, error) {
	cmds := make([]*redis.StringSliceCmd, len(entryIDs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range entryIDs {
			cmds[i] = p.SMembers(ctx, s.entryLocKey(property, e))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for i, c := range cmds {
		if locs := c.Val(); len(locs) > 0 {
			out[entryIDs[i]] = locs
		}
	}
	return out, nil
}

// SettingsLocations implements visitor.SettingsStore: a SCAN of the
// settings keys, on every master of a cluster.
func (s *Store) SettingsLocations(ctx context.Context) ([]string, error) {
	var out []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		prefix := s.key("set", "")
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			out = append(out, strings.TrimPrefix(iter.Val(), prefix))
		}
		return iter.Err()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock() // out is shared; the masters are scanned one at a time
			defer mu.Unlock()
			return scan(ctx, c)
		})
		return out, err
	}
	return out, scan(ctx, s.rdb)
}

// IndexEntries implements visitor.SettingsStore.
func (s *Store) IndexEntries(ctx context.Context, property, location string, entryIDs []string) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entryIDs {
			p.SAdd(ctx, s.entryLocKey(property, e), location)
		}
		return nil
	})
	return err
}

// Visit implements visitor.VisitStore.
func (s *Store) Visit(ctx context.Context, key string) ([]byte, bool, error) {
	return get(ctx, s.rdb, s.visitKey(key))
}

// TokenVisit implements visitor.VisitStore.
func (s *Store) TokenVisit(ctx context.Context, hash string) (string, bool, error) {
	b, ok, err := get(ctx, s.rdb, s.tokenKey(hash))
	return string(b), ok, err
}

// Transact implements visitor.VisitStore: the keys read are WATCHed, the
// writes applied in MULTI/EXEC.
func (s *Store) Transact(ctx context.Context, keys []string, fn func(tx visitor.VisitTx) error) error {
	watch := make([]string, len(keys))
	for i, k := range keys {
		watch[i] = s.visitKey(k)
	}
	if len(watch) == 0 {
		// A Redis Cluster client picks the node by the first watched key;
		// this one is never written, so watching it changes nothing.
		watch = append(watch, s.key("txn"))
	}
	err := s.rdb.Watch(ctx, func(rtx *redis.Tx) error {
		t := &tx{s: s, ctx: ctx, tx: rtx, watched: map[string]bool{}}
		for _, k := range watch {
			t.watched[k] = true
		}
		return fn(t)
	}, watch...)
	if errors.Is(err, redis.TxFailedErr) {
		return visitor.ErrConflict
	}
	return err
}

type tx struct {
	s       *Store
	ctx     context.Context
	tx      *redis.Tx
	watched map[string]bool
}

func (t *tx) watch(key string) error {
	if t.watched[key] {
		return nil
	}
	if err := t.tx.Watch(t.ctx, key).Err(); err != nil {
		return fmt.Errorf("watch %s: %w", key, err)
	}
	t.watched[key] = true
	return nil
}

func (t *tx) Visit(key string) ([]byte, bool, error) {
	rk := t.s.visitKey(key)
	if err := t.watch(rk); err != nil {
		return nil, false, err
	}
	return get(t.ctx, t.tx, rk)
}

func (t *tx) Link(entryID string) (string, bool, error) {
	rk := t.s.linkKey(entryID)
	if err := t.watch(rk); err != nil {
		return "", false, err
	}
	b, ok, err := get(t.ctx, t.tx, rk)
	return string(b), ok, err
}

func (t *tx) Commit(w visitor.VisitWrites) error {
	if len(w.Visits) == 0 && len(w.Links) == 0 && len(w.Tokens) == 0 && len(w.Decisions) == 0 {
		return nil
	}
	_, err := t.tx.TxPipelined(t.ctx, func(p redis.Pipeliner) error {
		for _, v := range w.Visits {
			p.Set(t.ctx, t.s.visitKey(v.Key), v.Data, v.TTL)
			if v.Index != nil {
				t.s.indexPass(t.ctx, p, v.Key, *v.Index, v.TTL)
			}
		}
		for _, l := range w.Links {
			p.Set(t.ctx, t.s.linkKey(l.EntryID), l.VisitKey, l.TTL)
		}
		for _, tk := range w.Tokens {
			if tk.VisitKey == "" {
				p.Del(t.ctx, t.s.tokenKey(tk.Hash))
				continue
			}
			p.Set(t.ctx, t.s.tokenKey(tk.Hash), tk.VisitKey, tk.TTL)
		}
		for _, d := range w.Decisions {
			t.s.pushDecision(t.ctx, p, d)
		}
		return nil
	})
	if errors.Is(err, redis.TxFailedErr) {
		return visitor.ErrConflict
	}
	return err
}

func (s *Store) pushDecision(ctx context.Context, p redis.Pipeliner, d visitor.Decision) {
	lk := s.key("log", d.Location)
	p.LPush(ctx, lk, d.Data)
	p.LTrim(ctx, lk, 0, int64(d.Max-1))
	p.Expire(ctx, lk, d.TTL)
}

// AppendDecision implements visitor.DecisionLog.
func (s *Store) AppendDecision(ctx context.Context, d visitor.Decision) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		s.pushDecision(ctx, p, d)
		return nil
	})
	return err
}

// Decisions implements visitor.DecisionLog.
func (s *Store) Decisions(ctx context.Context, location string, limit int) ([][]byte, error) {
	raw, err := s.rdb.LRange(ctx, s.key("log", location), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(raw))
	for i, r := range raw {
		out[i] = []byte(r)
	}
	return out, nil
}

// MarkEvent implements visitor.EventStore (SET NX).
func (s *Store) MarkEvent(ctx context.Context, digest string, mark []byte, ttl time.Duration) (bool, error) {
	return s.rdb.SetNX(ctx, s.key("evt", digest), mark, ttl).Result()
}

// EventMark implements visitor.EventStore.
func (s *Store) EventMark(ctx context.Context, digest string) ([]byte, bool, error) {
	return get(ctx, s.rdb, s.key("evt", digest))
}

// SetEventMark implements visitor.EventStore.
func (s *Store) SetEventMark(ctx context.Context, digest string, mark []byte, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.key("evt", digest), mark, ttl).Err()
}

// DeleteEventMark implements visitor.EventStore.
func (s *Store) DeleteEventMark(ctx context.Context, digest string) error {
	return s.rdb.Del(ctx, s.key("evt", digest)).Err()
}

// PutTombstone implements visitor.Tombstones.
func (s *Store) PutTombstone(ctx context.Context, entryID string, ttl time.Duration) error {
	return s.rdb.Set(ctx, s.key("emp", entryID), "signed-out", ttl).Err()
}

// HasTombstone implements visitor.Tombstones.
func (s *Store) HasTombstone(ctx context.Context, entryID string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.key("emp", entryID)).Result()
	return n > 0, err
}

func (s *Store) hostKey(location, host string) string { return s.key("host", location, host) }

// AddRegistration implements visitor.HostIndex. A failure to set the
// index's expiry is ignored, as it always was.
func (s *Store) AddRegistration(ctx context.Context, location, host, inviteID string, arrival time.Time, ttl time.Duration) error {
	k := s.hostKey(location, host)
	if err := s.rdb.ZAdd(ctx, k, redis.Z{Score: float64(arrival.Unix()), Member: inviteID}).Err(); err != nil {
		return err
	}
	s.rdb.Expire(ctx, k, ttl)
	return nil
}

// Registrations implements visitor.HostIndex.
func (s *Store) Registrations(ctx context.Context, location, host string, since time.Time, limit int) ([]string, error) {
	return s.rdb.ZRangeByScore(ctx, s.hostKey(location, host), &redis.ZRangeBy{
		Min: fmt.Sprint(since.Unix()), Max: "+inf", Count: int64(limit),
	}).Result()
}

// HasRegistration implements visitor.HostIndex.
func (s *Store) HasRegistration(ctx context.Context, location, host, inviteID string) (bool, error) {
	_, err := s.rdb.ZScore(ctx, s.hostKey(location, host), inviteID).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}
