package rosterredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/roster"
)

// Links are a property's person-to-user links as the last reconciliation
// found them, with the roster version it compared.
type Links struct {
	RosterVersion int           `json:"rosterVersion"`
	At            time.Time     `json:"at"`
	Links         []roster.Link `json:"links"`
}

func linksKey(property string) string    { return tag(property) + "links" }
func nearMissKey(property string) string { return tag(property) + "nearmiss" }

// SaveReconciliation replaces the property's links and the set of roster
// emails (canonical) that have a near miss and no link, in one
// transaction: a resident's hint and the move-out policy always read the
// same reconciliation.
func (s *Store) SaveReconciliation(ctx context.Context, property string, links Links, nearMissEmails []string) error {
	if err := checkProperty(property); err != nil {
		return err
	}
	if links.Links == nil {
		links.Links = []roster.Link{}
	}
	b, err := json.Marshal(links)
	if err != nil {
		return fmt.Errorf("rosterredis: encode the links of %s: %w", property, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, linksKey(property), b, 0)
		p.Del(ctx, nearMissKey(property))
		if len(nearMissEmails) > 0 {
			members := make([]any, len(nearMissEmails))
			for i, e := range nearMissEmails {
				members[i] = e
			}
			p.SAdd(ctx, nearMissKey(property), members...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rosterredis: save the reconciliation of %s: %w", property, err)
	}
	return nil
}

// Links returns the property's links; ok is false before the first
// reconciliation.
func (s *Store) Links(ctx context.Context, property string) (Links, bool, error) {
	if err := checkProperty(property); err != nil {
		return Links{}, false, err
	}
	b, err := s.rdb.Get(ctx, linksKey(property)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Links{}, false, nil
	}
	if err != nil {
		return Links{}, false, fmt.Errorf("rosterredis: read the links of %s: %w", property, err)
	}
	var l Links
	if err := json.Unmarshal(b, &l); err != nil {
		return Links{}, false, fmt.Errorf("rosterredis: the stored links of %s are corrupt: %w", property, err)
	}
	return l, true, nil
}

// HasNearMiss reports whether the last reconciliation of property found
// an access-system user whose email looks like email (canonical), a roster
// email that no user has exactly. It never says which user.
func (s *Store) HasNearMiss(ctx context.Context, property, email string) (bool, error) {
	if err := checkProperty(property); err != nil {
		return false, err
	}
	ok, err := s.rdb.SIsMember(ctx, nearMissKey(property), email).Result()
	if err != nil {
		return false, fmt.Errorf("rosterredis: read the near misses of %s: %w", property, err)
	}
	return ok, nil
}
