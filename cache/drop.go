package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// DropConnection drops everything cached for the users of connection
// conn, the accounts, entry lists and favourites of every key
// "<conn>|<email>": in Redis, in this process's layer and, through the
// invalidation channel, in every other replica's. It is for a connection
// (or property) being removed: its users' favourites name doors that are
// gone with it, so they go too. It returns how many Redis keys it deleted.
//
// It is for namespaced connections only: the "bare" connection keys its
// users by the email alone, which no prefix tells apart from the other
// connections' users, so conn must be a non-empty connection id without
// "|". Loads of conn's users still in flight may write their result back
// afterwards: stop serving the connection first. On a Redis Cluster it
// scans every master; keys are deleted one per command (pipelined).
func (s *Store) DropConnection(ctx context.Context, conn string) (int64, error) {
	if conn == "" || strings.ContainsAny(conn, "| ") {
		return 0, fmt.Errorf("cache: drop connection %q: want a connection id, not empty and without \"|\" or spaces (the bare connection's keys cannot be told apart)", conn)
	}
	prefix := conn + "|"
	var n atomic.Int64
	err := s.forEachShard(ctx, func(ctx context.Context, shard redis.Cmdable) error {
		for _, kind := range []string{"acct:", "ent:", "fav:"} {
			if err := s.dropMatching(ctx, shard, s.cfg.Prefix+kind+"{"+globEscape(prefix)+"*", &n); err != nil {
				return err
			}
		}
		return nil
	})
	// What Redis no longer holds leaves the in-process layers now, also
	// after a partial failure: a replica reads the rest again from Redis.
	if s.local != nil {
		s.local.invalidatePrefix(prefix)
		if perr := s.rdb.Publish(ctx, s.channel(), invalidatePrefixMessage+prefix).Err(); perr != nil {
			// The other replicas' copies expire within LocalTTL.
			s.cfg.Logger.Warn("cache: cannot announce a dropped connection", "conn", conn, "err", perr)
		}
	}
	if err != nil {
		return n.Load(), fmt.Errorf("cache: drop connection %s: %w", conn, err)
	}
	return n.Load(), nil
}

// dropMatching deletes the keys of one node matching pattern, in
// pipelined batches, adding how many it deleted to n.
func (s *Store) dropMatching(ctx context.Context, node redis.Cmdable, pattern string, n *atomic.Int64) error {
	iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
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
		for _, c := range cmds {
			n.Add(c.(*redis.IntCmd).Val())
		}
		batch = batch[:0]
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		return nil
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
	return flush()
}

// globEscape escapes the characters SCAN's MATCH pattern gives a meaning.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
