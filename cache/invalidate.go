package cache

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

func (s *Store) channel() string { return s.cfg.Prefix + "invalidate" }

// announce drops email from this process's layer and tells the other
// replicas to do the same.
func (s *Store) announce(ctx context.Context, email string) {
	if s.local == nil {
		return
	}
	s.local.invalidate(email)
	if err := s.rdb.Publish(ctx, s.channel(), email).Err(); err != nil {
		// The other replicas' copies expire within LocalTTL.
		s.cfg.Logger.Warn("cache: cannot announce invalidation", "err", err)
	}
}

// Run receives other replicas' invalidations until ctx ends. While the
// subscription is broken, and whenever it is (re)established, the whole
// in-process layer is dropped, since announcements may have been missed.
func (s *Store) Run(ctx context.Context) {
	if s.local == nil {
		return
	}
	ps := s.rdb.Subscribe(ctx, s.channel())
	// Receive does not return on cancellation alone; closing does that.
	stop := context.AfterFunc(ctx, func() { ps.Close() })
	defer stop()
	defer ps.Close()
	backoff := 50 * time.Millisecond
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.local.invalidateAll()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Message:
			if m.Payload == invalidateAllMessage {
				s.local.invalidateAll()
				continue
			}
			if prefix, ok := strings.CutPrefix(m.Payload, invalidatePrefixMessage); ok {
				s.local.invalidatePrefix(prefix)
				continue
			}
			s.local.invalidate(m.Payload)
		case *redis.Subscription:
			s.local.invalidateAll()
		}
	}
}

// InvalidateAll drops every cached account and entry list (favourites
// stay), here and, through the announcement, in every replica. It returns
// how many users' entries were dropped. On a Redis Cluster it scans every
// master; keys are deleted one per command (pipelined), since one DEL of
// keys in different slots is refused.
func (s *Store) InvalidateAll(ctx context.Context) (int64, error) {
	if s.local != nil {
		s.local.invalidateAll()
	}
	var n atomic.Int64
	err := s.forEachShard(ctx, func(ctx context.Context, shard redis.Cmdable) error {
		for _, kind := range []string{"acct:", "ent:"} {
			iter := shard.Scan(ctx, 0, s.cfg.Prefix+kind+"*", 1000).Iterator()
			batch := make([]string, 0, 1000)
			flush := func() error {
				if len(batch) == 0 {
					return nil
				}
				cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					for _, k := range batch {
						p.Del(ctx, k)
					}
					return nil
				})
				if kind == "ent:" {
					for _, c := range cmds {
						n.Add(c.(*redis.IntCmd).Val())
					}
				}
				batch = batch[:0]
				return err
			}
			for iter.Next(ctx) {
				if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
					if err := flush(); err != nil {
						return err
					}
				}
			}
			if err := iter.Err(); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return n.Load(), fmt.Errorf("cache: invalidate all: %w", err)
	}
	if s.local != nil {
		if err := s.rdb.Publish(ctx, s.channel(), invalidateAllMessage).Err(); err != nil {
			s.cfg.Logger.Warn("cache: cannot announce invalidation", "err", err)
		}
	}
	return n.Load(), nil
}

// forEachShard calls fn with each master of a Redis Cluster (concurrently)
// or with the one server, for commands such as SCAN that see one node's
// keys only.
func (s *Store) forEachShard(ctx context.Context, fn func(context.Context, redis.Cmdable) error) error {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return fn(ctx, c) })
	}
	return fn(ctx, s.rdb)
}

// invalidateAllMessage on the channel drops every replica's whole layer;
// it cannot be an email.
const invalidateAllMessage = "*"

// invalidatePrefixMessage followed by a key prefix ("<connection>|") on
// the channel drops every replica's snapshots of keys with that prefix. A
// key cannot start with it: a canonical email has no space. A replica of
// an earlier version takes the message for one key, which it does not
// hold, so its copies expire within LocalTTL.
const invalidatePrefixMessage = "* "
