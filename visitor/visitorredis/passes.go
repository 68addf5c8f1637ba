package visitorredis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/visitor"
)

// The pass index (visitor.PassIndex): two sorted sets of visit keys by
// their pass's start (Unix seconds), one per property and one per
// property and location, and pass id → visit key. They are written in
// the transaction that saves the visit; each set's expiry is raised to
// the longest of its visits', and entries that
// started before the retention period are pruned on every write, so the
// sets do not grow with a location's history.

var _ visitor.PassIndex = (*Store)(nil)

func (s *Store) passIndexKey(property, location string) string {
	if location == "" {
		return s.key("pidx", property)
	}
	return s.key("pidx", property, location)
}

func (s *Store) passIDKey(passID string) string { return s.key("pid", passID) }

// indexScript adds a visit (ARGV[1]) at its start (ARGV[2]) to the index
// sets KEYS[1] and KEYS[2], drops their entries that started before
// ARGV[3] ("" keeps them), raises each set's expiry to at least ARGV[4] ms
// and points the pass id key KEYS[3] at the visit for as long. A script
// rather than EXPIRE's NX and GT options, which need Redis 7: a queued
// command a server refuses would abort the whole visit write.
var indexScript = redis.NewScript(`
for i = 1, 2 do
	redis.call('ZADD', KEYS[i], ARGV[2], ARGV[1])
	if ARGV[3] ~= '' then
		redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. ARGV[3])
	end
	local ttl = redis.call('PTTL', KEYS[i])
	if ttl < tonumber(ARGV[4]) then
		redis.call('PEXPIRE', KEYS[i], ARGV[4])
	end
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[4])
return 1`)

// indexPass queues the index writes for visit key's pass in p (one EVAL,
// inside the visit's transaction).
func (s *Store) indexPass(ctx context.Context, p redis.Pipeliner, key string, e visitor.PassIndexEntry, ttl time.Duration) {
	prune := ""
	if !e.Prune.IsZero() {
		prune = strconv.FormatInt(e.Prune.Unix(), 10)
	}
	ms := max(ttl.Milliseconds(), 1000)
	keys := []string{s.passIndexKey(e.Property, ""), s.passIndexKey(e.Property, e.Location), s.passIDKey(e.PassID)}
	indexScript.Eval(ctx, p, keys, key, e.Start.Unix(), prune, ms)
}

// IndexedPasses implements visitor.PassIndex: entries of the cursor's
// second come first (same score, later key), then the later ones, in one
// round trip.
func (s *Store) IndexedPasses(ctx context.Context, q visitor.IndexQuery) ([]visitor.IndexedPass, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	k := s.passIndexKey(q.Property, q.Location)
	lo, hi := "-inf", "+inf"
	if !q.Min.IsZero() {
		lo = strconv.FormatInt(q.Min.Unix(), 10)
	}
	if !q.Max.IsZero() {
		hi = strconv.FormatInt(q.Max.Unix(), 10)
	}
	var same, rest *redis.ZSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if q.After.VisitKey != "" {
			at := strconv.FormatInt(q.After.Start, 10)
			same = p.ZRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Min: at, Max: at})
			if q.After.Start >= q.Min.Unix() || q.Min.IsZero() {
				lo = "(" + at
			}
		}
		rest = p.ZRangeByScoreWithScores(ctx, k, &redis.ZRangeBy{Min: lo, Max: hi, Count: int64(q.Limit)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read pass index %s: %w", k, err)
	}
	var out []visitor.IndexedPass
	add := func(zs []redis.Z, keep func(visitor.IndexedPass) bool) {
		for _, z := range zs {
			key, _ := z.Member.(string)
			e := visitor.IndexedPass{VisitKey: key, Start: int64(z.Score)}
			if len(out) < q.Limit && keep(e) {
				out = append(out, e)
			}
		}
	}
	if same != nil {
		inRange := (q.Min.IsZero() || q.After.Start >= q.Min.Unix()) && (q.Max.IsZero() || q.After.Start <= q.Max.Unix())
		add(same.Val(), func(e visitor.IndexedPass) bool { return inRange && e.VisitKey > q.After.VisitKey })
	}
	add(rest.Val(), func(visitor.IndexedPass) bool { return true })
	return out, nil
}

// PassVisit implements visitor.PassIndex.
func (s *Store) PassVisit(ctx context.Context, passID string) (string, bool, error) {
	b, ok, err := get(ctx, s.rdb, s.passIDKey(passID))
	return string(b), ok, err
}

// Visits implements visitor.PassIndex: one MGET (visit keys are in the
// prefix's slot on a cluster).
func (s *Store) Visits(ctx context.Context, keys []string) ([][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	rk := make([]string, len(keys))
	for i, k := range keys {
		rk[i] = s.visitKey(k)
	}
	vals, err := s.rdb.MGet(ctx, rk...).Result()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		if str, ok := v.(string); ok {
			out[i] = []byte(str)
		}
	}
	return out, nil
}
