package tenant

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// grantScript adds a grant only if the contact exists, in one step, so that
// a grant racing an import that removes the contact cannot outlive it.
// KEYS: contacts hash, the contact's grants set. ARGV: email, building.
// Returns -1 when there is no such contact.
var grantScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
	return -1
end
return redis.call('SADD', KEYS[2], ARGV[2])`)

// Grant gives org's contact email the visitor-registration tile for
// building. Granting again is not an error. An unknown contact is
// ErrNotFound: contacts come from an import, so a grant for one that is not
// there is a typo or a contact the property manager has not listed yet.
func (s *Store) Grant(ctx context.Context, org, email, building string) error {
	email, building, err := grantArgs(org, email, building)
	if err != nil {
		return err
	}
	n, err := grantScript.Run(ctx, s.rdb, []string{s.contactsKey(org), s.grantsKey(org, email)}, email, building).Int()
	if err != nil {
		return fmt.Errorf("tenant: grant %s building %s: %w", email, building, err)
	}
	if n < 0 {
		return fmt.Errorf("tenant: grant: %s in organisation %s: %w", email, org, ErrNotFound)
	}
	return nil
}

// Revoke takes building's tile away from org's contact email. Revoking a
// grant the contact does not have is not an error; an unknown contact is
// ErrNotFound.
func (s *Store) Revoke(ctx context.Context, org, email, building string) error {
	email, building, err := grantArgs(org, email, building)
	if err != nil {
		return err
	}
	var exists *redis.BoolCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.HExists(ctx, s.contactsKey(org), email)
		p.SRem(ctx, s.grantsKey(org, email), building)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tenant: revoke %s building %s: %w", email, building, err)
	}
	if !exists.Val() {
		return fmt.Errorf("tenant: revoke: %s in organisation %s: %w", email, org, ErrNotFound)
	}
	return nil
}

// Granted reports whether org's contact email has the tile for building.
// It is the tile's check on every request: one SISMEMBER, and false (not
// an error) for an unknown contact, since removing a contact removes its
// grants.
func (s *Store) Granted(ctx context.Context, org, email, building string) (bool, error) {
	email, building, err := grantArgs(org, email, building)
	if err != nil {
		return false, err
	}
	ok, err := s.rdb.SIsMember(ctx, s.grantsKey(org, email), building).Result()
	if err != nil {
		return false, fmt.Errorf("tenant: granted %s building %s: %w", email, building, err)
	}
	return ok, nil
}

// Grants returns the buildings org's contact email has the tile for,
// sorted; an unknown contact is ErrNotFound.
func (s *Store) Grants(ctx context.Context, org, email string) ([]string, error) {
	email, err := canonical(org, email)
	if err != nil {
		return nil, err
	}
	var exists *redis.BoolCmd
	var members *redis.StringSliceCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.HExists(ctx, s.contactsKey(org), email)
		members = p.SMembers(ctx, s.grantsKey(org, email))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tenant: grants of %s: %w", email, err)
	}
	if !exists.Val() {
		return nil, fmt.Errorf("tenant: grants: %s in organisation %s: %w", email, org, ErrNotFound)
	}
	return sorted(members.Val()), nil
}

func grantArgs(org, email, building string) (string, string, error) {
	email, err := canonical(org, email)
	if err != nil {
		return "", "", err
	}
	building, err = checkBuilding(building)
	if err != nil {
		return "", "", err
	}
	return email, building, nil
}
