package cache

import (
	"context"
	"fmt"
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
			s.local.invalidate(m.Payload)
		case *redis.Subscription:
			s.local.invalidateAll()
		}
	}
}

// InvalidateAll drops every cached account and entry list (favourites
// stay), here and, through the announcement, in every replica. It returns
// how many users' entries were dropped.
func (s *Store) InvalidateAll(ctx context.Context) (int64, error) {
	if s.local != nil {
		s.local.invalidateAll()
	}
	var n int64
	for _, kind := range []string{"acct:", "ent:"} {
		iter := s.rdb.Scan(ctx, 0, s.cfg.Prefix+kind+"*", 1000).Iterator()
		batch := make([]string, 0, 1000)
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			d, err := s.rdb.Del(ctx, batch...).Result()
			if kind == "ent:" {
				n += d
			}
			batch = batch[:0]
			return err
		}
		for iter.Next(ctx) {
			if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return n, fmt.Errorf("cache: invalidate all: %w", err)
				}
			}
		}
		if err := iter.Err(); err != nil {
			return n, fmt.Errorf("cache: invalidate all: %w", err)
		}
		if err := flush(); err != nil {
			return n, fmt.Errorf("cache: invalidate all: %w", err)
		}
	}
	if s.local != nil {
		if err := s.rdb.Publish(ctx, s.channel(), invalidateAllMessage).Err(); err != nil {
			s.cfg.Logger.Warn("cache: cannot announce invalidation", "err", err)
		}
	}
	return n, nil
}

// invalidateAllMessage on the channel drops every replica's whole layer;
// it cannot be an email.
const invalidateAllMessage = "*"
