package moveout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

// Store keeps each property's move-out policy, the users cloudkey
// suspended, the last auto run and the run lock in Redis, under the
// roster's hash tag {roster:<property>} (one slot per property, as
// rosterredis). It is safe for concurrent use, by several replicas too.
type Store struct {
	rdb redis.UniversalClient
}

// NewStore returns a Store on rdb.
func NewStore(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

func key(property, what string) string { return "ck:v1:{roster:" + property + "}:moveout:" + what }

// ErrBusy: another run of the property holds the lock.
var ErrBusy = errors.New("a move-out run of this property is in progress (on this or another replica); try again shortly")

// Policy returns the property's policy, DefaultPolicy when none was set
// (ok false).
func (s *Store) Policy(ctx context.Context, property string) (p Policy, ok bool, err error) {
	if err := rosterredis.CheckProperty(property); err != nil {
		return Policy{}, false, err
	}
	b, err := s.rdb.Get(ctx, key(property, "policy")).Bytes()
	if errors.Is(err, redis.Nil) {
		return DefaultPolicy(), false, nil
	}
	if err != nil {
		return Policy{}, false, fmt.Errorf("moveout: read the policy of %s: %w", property, err)
	}
	var j policyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return Policy{}, false, fmt.Errorf("moveout: the stored policy of %s is corrupt: %w", property, err)
	}
	p, err = j.policy()
	if err != nil {
		return Policy{}, false, fmt.Errorf("moveout: the stored policy of %s: %w", property, err)
	}
	return p, true, nil
}

// SetPolicy validates and saves p (stamped at now) and returns the policy
// it replaced (DefaultPolicy, existed false, when none was set). An
// invalid p is a *FieldError and nothing is written.
func (s *Store) SetPolicy(ctx context.Context, property string, p Policy, now time.Time) (before Policy, existed bool, err error) {
	if err := rosterredis.CheckProperty(property); err != nil {
		return Policy{}, false, err
	}
	if err := p.Validate(); err != nil {
		return Policy{}, false, err
	}
	p.UpdatedAt = now.UTC()
	b, err := json.Marshal(p.toJSON())
	if err != nil {
		return Policy{}, false, fmt.Errorf("moveout: encode the policy: %w", err)
	}
	old, err := s.rdb.SetArgs(ctx, key(property, "policy"), b, redis.SetArgs{Get: true}).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return DefaultPolicy(), false, nil
	case err != nil:
		return Policy{}, false, fmt.Errorf("moveout: save the policy of %s: %w", property, err)
	}
	var j policyJSON
	if json.Unmarshal(old, &j) != nil {
		return DefaultPolicy(), false, nil // the corrupt one is replaced
	}
	before, err = j.policy()
	if err != nil {
		return DefaultPolicy(), false, nil
	}
	return before, true, nil
}

// Suspended returns the users cloudkey suspended at property.
func (s *Store) Suspended(ctx context.Context, property string) (map[UserRef]Record, error) {
	if err := rosterredis.CheckProperty(property); err != nil {
		return nil, err
	}
	all, err := s.rdb.HGetAll(ctx, key(property, "suspended")).Result()
	if err != nil {
		return nil, fmt.Errorf("moveout: read the suspensions of %s: %w", property, err)
	}
	out := make(map[UserRef]Record, len(all))
	for f, v := range all {
		var r Record
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("moveout: the suspension record %s of %s is corrupt: %w", f, property, err)
		}
		out[r.Ref()] = r
	}
	return out, nil
}

func field(r UserRef) string { return r.Connection + "|" + r.UserID }

// PutSuspended records (or updates) a user cloudkey suspended.
func (s *Store) PutSuspended(ctx context.Context, property string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("moveout: encode a suspension record: %w", err)
	}
	if err := s.rdb.HSet(ctx, key(property, "suspended"), field(r.Ref()), b).Err(); err != nil {
		return fmt.Errorf("moveout: record the suspension of %s at %s: %w", r.Ref(), property, err)
	}
	return nil
}

// DeleteSuspended forgets a user cloudkey suspended.
func (s *Store) DeleteSuspended(ctx context.Context, property string, ref UserRef) error {
	if err := s.rdb.HDel(ctx, key(property, "suspended"), field(ref)).Err(); err != nil {
		return fmt.Errorf("moveout: forget the suspension of %s at %s: %w", ref, property, err)
	}
	return nil
}

// SaveLast keeps r as the property's last auto run.
func (s *Store) SaveLast(ctx context.Context, property string, r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("moveout: encode the run: %w", err)
	}
	if err := s.rdb.Set(ctx, key(property, "last"), b, 0).Err(); err != nil {
		return fmt.Errorf("moveout: save the last run of %s: %w", property, err)
	}
	return nil
}

// Last returns the property's last auto run; ok is false before the
// first.
func (s *Store) Last(ctx context.Context, property string) (Result, bool, error) {
	if err := rosterredis.CheckProperty(property); err != nil {
		return Result{}, false, err
	}
	b, err := s.rdb.Get(ctx, key(property, "last")).Bytes()
	if errors.Is(err, redis.Nil) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("moveout: read the last run of %s: %w", property, err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return Result{}, false, fmt.Errorf("moveout: the last run of %s is corrupt: %w", property, err)
	}
	return r, true, nil
}

// unlockScript deletes the lock only while it is still ours.
var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// lock takes the property's run lock for ttl, or fails with ErrBusy; the
// returned func releases it (if it is still ours).
func (s *Store) lock(ctx context.Context, property string, ttl time.Duration) (func(), error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	k := key(property, "lock")
	ok, err := s.rdb.SetNX(ctx, k, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("moveout: take the run lock of %s: %w", property, err)
	}
	if !ok {
		return nil, fmt.Errorf("moveout: %s: %w", property, ErrBusy)
	}
	return func() {
		// A fresh context: the run's may have ended, the lock must go.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = unlockScript.Run(ctx, s.rdb, []string{k}, token).Err()
	}, nil
}
