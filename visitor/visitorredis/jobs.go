package visitorredis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// claimScript first puts back the claimed jobs whose lease ran out (their
// claimer died), then claims the due ones: each is moved from prot:due to
// prot:run with a lease, atomically, so that of any number of schedulers
// exactly one gets it. It returns member, job data pairs.
//
// KEYS: due, run, job. ARGV: now ms, lease end ms, limit.
var claimScript = redis.NewScript(`
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(stale) do
	redis.call('ZREM', KEYS[2], m)
	redis.call('ZADD', KEYS[1], ARGV[1], m)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, m in ipairs(due) do
	redis.call('ZREM', KEYS[1], m)
	local data = redis.call('HGET', KEYS[3], m)
	if data then
		redis.call('ZADD', KEYS[2], ARGV[2], m)
		out[#out + 1] = m
		out[#out + 1] = data
	end
end
return out`)

// finishScript ends a claim: the job leaves prot:run and, if its data is
// still the claimed snapshot (not rescheduled or cancelled meanwhile), is
// deleted, or put back in prot:due at ARGV[3] when that is not empty.
//
// KEYS: due, run, job. ARGV: member, snapshot, requeue-at ms or "".
var finishScript = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[3], ARGV[1]) == ARGV[2] then
	if ARGV[3] == '' then
		redis.call('HDEL', KEYS[3], ARGV[1])
	else
		redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
	end
end
return 1`)

// jobKeys: prot:due (ZSET user id → due time in ms), prot:run (ZSET user
// id → claim lease end in ms) and prot:job (HASH user id → job data).
func (s *Store) jobKeys() []string {
	return []string{s.key("prot", "due"), s.key("prot", "run"), s.key("prot", "job")}
}

// PutJob implements visitor.JobQueue.
func (s *Store) PutJob(ctx context.Context, userID string, data []byte, due time.Time) error {
	k := s.jobKeys()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k[2], userID, data)
		p.ZAdd(ctx, k[0], redis.Z{Score: float64(due.UnixMilli()), Member: userID})
		p.ZRem(ctx, k[1], userID)
		return nil
	})
	return err
}

// CancelJob implements visitor.JobQueue.
func (s *Store) CancelJob(ctx context.Context, userID string) error {
	k := s.jobKeys()
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, k[2], userID)
		p.ZRem(ctx, k[0], userID)
		p.ZRem(ctx, k[1], userID)
		return nil
	})
	return err
}

// Jobs implements visitor.JobQueue.
func (s *Store) Jobs(ctx context.Context) ([]string, error) {
	all, err := s.rdb.HGetAll(ctx, s.jobKeys()[2]).Result()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(all))
	for _, data := range all {
		out = append(out, data)
	}
	return out, nil
}

// ClaimJobs implements visitor.JobQueue with one Lua script.
func (s *Store) ClaimJobs(ctx context.Context, now, leaseEnd time.Time, limit int) ([]string, error) {
	return claimScript.Run(ctx, s.rdb, s.jobKeys(), now.UnixMilli(), leaseEnd.UnixMilli(), limit).StringSlice()
}

// FinishJob implements visitor.JobQueue with one Lua script.
func (s *Store) FinishJob(ctx context.Context, userID, snapshot string, requeueAt time.Time) error {
	at := ""
	if !requeueAt.IsZero() {
		at = fmt.Sprint(requeueAt.UnixMilli())
	}
	return finishScript.Run(ctx, s.rdb, s.jobKeys(), userID, snapshot, at).Err()
}

// Job implements visitor.JobQueue.
func (s *Store) Job(ctx context.Context, userID string) (string, bool, error) {
	cur, err := s.rdb.HGet(ctx, s.jobKeys()[2], userID).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return cur, err == nil, err
}
