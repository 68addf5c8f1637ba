package visitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxTxAttempts bounds the retries of an optimistic transaction. Events for
// one visit are rare; contention beyond a few retries means something is
// wrong, and the event is better redelivered later.
const maxTxAttempts = 16

// maxLogDecisions is how many decisions a location's log keeps.
const maxLogDecisions = 1000

// errContention: a transaction kept losing to concurrent writers.
var errContention = errors.New("visitor: too many concurrent changes to one visit; try again")

// txn is one optimistic transaction over visits: the keys it reads are
// WATCHed, its writes are queued and applied together in MULTI/EXEC, which
// fails (and the whole function is run again) if another replica wrote a
// watched key in between. fn must therefore only change txn state, never
// call out.
type txn struct {
	s       *Service
	ctx     context.Context
	tx      *redis.Tx
	watched map[string]bool
	visits  map[string]*visit // visit key → loaded visit, nil when absent
	dirty   []*visit
	links   map[string]string // Envoy entry id → visit key
	tokens  map[string]string // token hash → visit key; "" deletes
	logs    []Outcome
}

func (s *Service) visitKey(key string) string    { return s.key("visit", key) }
func (s *Service) linkKey(entryID string) string { return s.key("link", entryID) }
func (s *Service) tokenKey(hash string) string   { return s.key("tok", hash) }

// transact runs fn in a transaction over the visits named by keys (visit
// keys, such as "inv:42"); fn may read further ones, which are watched as
// it reads them.
func (s *Service) transact(ctx context.Context, keys []string, fn func(t *txn) error) error {
	watch := make([]string, len(keys))
	for i, k := range keys {
		watch[i] = s.visitKey(k)
	}
	if len(watch) == 0 {
		// A Redis Cluster client picks the node by the first watched key;
		// this one is never written, so watching it changes nothing.
		watch = append(watch, s.key("txn"))
	}
	for range maxTxAttempts {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			t := &txn{
				s: s, ctx: ctx, tx: tx,
				watched: map[string]bool{}, visits: map[string]*visit{},
				links: map[string]string{}, tokens: map[string]string{},
			}
			for _, k := range watch {
				t.watched[k] = true
			}
			if err := fn(t); err != nil {
				return err
			}
			return t.commit()
		}, watch...)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return err
	}
	return errContention
}

func (t *txn) watch(key string) error {
	if t.watched[key] {
		return nil
	}
	if err := t.tx.Watch(t.ctx, key).Err(); err != nil {
		return fmt.Errorf("visitor: watch %s: %w", key, err)
	}
	t.watched[key] = true
	return nil
}

// visit returns the visit under key, or nil when there is none.
func (t *txn) visit(key string) (*visit, error) {
	if v, ok := t.visits[key]; ok {
		return v, nil
	}
	rk := t.s.visitKey(key)
	if err := t.watch(rk); err != nil {
		return nil, err
	}
	b, err := t.tx.Get(t.ctx, rk).Bytes()
	if errors.Is(err, redis.Nil) {
		t.visits[key] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("visitor: read visit %s: %w", key, err)
	}
	v := new(visit)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("visitor: decode visit %s: %w", key, err)
	}
	t.visits[key] = v
	return v, nil
}

// link returns the visit key an Envoy entry was joined to, or "".
func (t *txn) link(entryID string) (string, error) {
	if k, ok := t.links[entryID]; ok {
		return k, nil
	}
	rk := t.s.linkKey(entryID)
	if err := t.watch(rk); err != nil {
		return "", err
	}
	k, err := t.tx.Get(t.ctx, rk).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("visitor: read link of entry %s: %w", entryID, err)
	}
	return k, nil
}

func (t *txn) put(v *visit) {
	for _, d := range t.dirty {
		if d == v {
			return
		}
	}
	t.visits[v.Key] = v
	t.dirty = append(t.dirty, v)
}

func (t *txn) setLink(entryID, visitKey string) { t.links[entryID] = visitKey }
func (t *txn) setToken(hash, visitKey string)   { t.tokens[hash] = visitKey }
func (t *txn) dropToken(hash string)            { t.tokens[hash] = "" }

// decide records o on v and in the location's log.
func (t *txn) decide(v *visit, o Outcome) {
	v.record(o)
	t.put(v)
	t.logs = append(t.logs, o)
}

// ttl is how long v and what points to it are kept: the retention period
// after its pass's window or, without one, after now.
func (t *txn) ttl(v *visit) time.Duration {
	now := t.s.now()
	until := now
	if v.Pass != nil && v.Pass.End.After(until) {
		until = v.Pass.End
	}
	return until.Sub(now) + t.s.cfg.Retention
}

func (t *txn) commit() error {
	if len(t.dirty) == 0 && len(t.links) == 0 && len(t.tokens) == 0 && len(t.logs) == 0 {
		return nil
	}
	_, err := t.tx.TxPipelined(t.ctx, func(p redis.Pipeliner) error {
		ttls := map[string]time.Duration{}
		for _, v := range t.dirty {
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("visitor: encode visit %s: %w", v.Key, err)
			}
			ttls[v.Key] = t.ttl(v)
			p.Set(t.ctx, t.s.visitKey(v.Key), b, ttls[v.Key])
		}
		ttlOf := func(key string) time.Duration {
			if d, ok := ttls[key]; ok {
				return d
			}
			return t.s.cfg.Retention
		}
		for entryID, key := range t.links {
			p.Set(t.ctx, t.s.linkKey(entryID), key, ttlOf(key))
		}
		for hash, key := range t.tokens {
			if key == "" {
				p.Del(t.ctx, t.s.tokenKey(hash))
				continue
			}
			p.Set(t.ctx, t.s.tokenKey(hash), key, ttlOf(key))
		}
		for _, o := range t.logs {
			b, err := json.Marshal(o)
			if err != nil {
				return fmt.Errorf("visitor: encode decision: %w", err)
			}
			lk := t.s.key("log", o.Location)
			p.LPush(t.ctx, lk, b)
			p.LTrim(t.ctx, lk, 0, maxLogDecisions-1)
			p.Expire(t.ctx, lk, t.s.cfg.Retention)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.TxFailedErr) {
		return fmt.Errorf("visitor: write visit: %w", err)
	}
	return err
}

// Decisions returns the latest decisions for location, newest first, at
// most limit (1 to 1000).
func (s *Service) Decisions(ctx context.Context, location string, limit int) ([]Outcome, error) {
	limit = min(max(limit, 1), maxLogDecisions)
	raw, err := s.rdb.LRange(ctx, s.key("log", location), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("visitor: read decisions of %s: %w", location, err)
	}
	out := make([]Outcome, 0, len(raw))
	for _, r := range raw {
		var o Outcome
		if err := json.Unmarshal([]byte(r), &o); err != nil {
			return nil, fmt.Errorf("visitor: decode decision: %w", err)
		}
		out = append(out, o)
	}
	return out, nil
}
