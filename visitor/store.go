package visitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// maxTxAttempts bounds the retries of an optimistic transaction. Events for
// one visit are rare; contention beyond a few retries means something is
// wrong, and the event is better redelivered later.
const maxTxAttempts = 16

// maxLogDecisions is how many decisions a location's log keeps.
const maxLogDecisions = 1000

// errContention: a transaction kept losing to concurrent writers.
var errContention = errors.New("visitor: too many concurrent changes to one visit; try again")

// txn is one optimistic transaction over visits (VisitStore.Transact):
// the records it reads must be unchanged when its writes are applied
// together, else the whole function is run again. fn must therefore only
// change txn state, never call out.
type txn struct {
	s      *Service
	tx     VisitTx
	visits map[string]*visit // visit key → loaded visit, nil when absent
	dirty  []*visit
	links  map[string]string // Envoy entry id → visit key
	tokens map[string]string // token hash → visit key; "" deletes
	logs   []Outcome
	// before is each loaded visit's pass as it was read, for the audit.
	before map[string]passMark
	// refusals are the passes refused, for the audit.
	refusals []refusalNote
}

// transact runs fn in a transaction over the visits named by keys (visit
// keys, such as "inv:42"); fn may read further ones, which are watched as
// it reads them.
func (s *Service) transact(ctx context.Context, keys []string, fn func(t *txn) error) error {
	for range maxTxAttempts {
		var last *txn
		err := s.store.Transact(ctx, keys, func(tx VisitTx) error {
			t := &txn{
				s: s, tx: tx, visits: map[string]*visit{},
				links: map[string]string{}, tokens: map[string]string{}, before: map[string]passMark{},
			}
			last = t
			if err := fn(t); err != nil {
				return err
			}
			return t.commit()
		})
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err == nil && last != nil {
			s.auditPasses(ctx, last)
			s.auditRefusals(ctx, last)
		}
		return err
	}
	return errContention
}

// visit returns the visit under key, or nil when there is none.
func (t *txn) visit(key string) (*visit, error) {
	if v, ok := t.visits[key]; ok {
		return v, nil
	}
	b, ok, err := t.tx.Visit(key)
	if err != nil {
		return nil, fmt.Errorf("visitor: read visit %s: %w", key, err)
	}
	if !ok {
		t.visits[key] = nil
		return nil, nil
	}
	v := new(visit)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("visitor: decode visit %s: %w", key, err)
	}
	t.visits[key] = v
	t.before[key] = markOf(v)
	return v, nil
}

// link returns the visit key an Envoy entry was joined to, or "".
func (t *txn) link(entryID string) (string, error) {
	if k, ok := t.links[entryID]; ok {
		return k, nil
	}
	k, _, err := t.tx.Link(entryID)
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
	var w VisitWrites
	ttls := map[string]time.Duration{}
	for _, v := range t.dirty {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("visitor: encode visit %s: %w", v.Key, err)
		}
		ttls[v.Key] = t.ttl(v)
		w.Visits = append(w.Visits, VisitWrite{Key: v.Key, Data: b, TTL: ttls[v.Key], Index: t.s.indexEntry(v)})
	}
	ttlOf := func(key string) time.Duration {
		if d, ok := ttls[key]; ok {
			return d
		}
		return t.s.cfg.Retention
	}
	for entryID, key := range t.links {
		w.Links = append(w.Links, LinkWrite{EntryID: entryID, VisitKey: key, TTL: ttlOf(key)})
	}
	for hash, key := range t.tokens {
		tw := TokenWrite{Hash: hash, VisitKey: key}
		if key != "" {
			tw.TTL = ttlOf(key)
		}
		w.Tokens = append(w.Tokens, tw)
	}
	for _, o := range t.logs {
		b, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("visitor: encode decision: %w", err)
		}
		w.Decisions = append(w.Decisions, t.s.decision(o.Location, b))
	}
	err := t.tx.Commit(w)
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("visitor: write visit: %w", err)
	}
	return err
}

// decision is a log entry for location, kept as the log's policy says.
func (s *Service) decision(location string, data []byte) Decision {
	return Decision{Location: location, Data: data, Max: maxLogDecisions, TTL: s.cfg.Retention}
}

// Decisions returns the latest decisions for location, newest first, at
// most limit (1 to 1000).
func (s *Service) Decisions(ctx context.Context, location string, limit int) ([]Outcome, error) {
	limit = min(max(limit, 1), maxLogDecisions)
	raw, err := s.store.Decisions(ctx, location, limit)
	if err != nil {
		return nil, fmt.Errorf("visitor: read decisions of %s: %w", location, err)
	}
	out := make([]Outcome, 0, len(raw))
	for _, r := range raw {
		var o Outcome
		if err := json.Unmarshal(r, &o); err != nil {
			return nil, fmt.Errorf("visitor: decode decision: %w", err)
		}
		out = append(out, o)
	}
	return out, nil
}
