package tenantredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/tenant"
)

// Contacts is tenant.ContactStore in Redis. Keys live under the store's
// prefix, with the organisation as a Redis Cluster hash tag so that one
// organisation's keys share a slot and can be changed in one transaction:
//
//	{prefix}tenant:{ORG}:contacts         hash  email → contact JSON
//	{prefix}tenant:{ORG}:index            zset  emails, score 0 (ordered listing)
//	{prefix}tenant:{ORG}:grants:EMAIL     set   building ids
//
// Update reads the contacts hash under WATCH and writes all of the
// changes in one MULTI/EXEC; Grant checks that the contact exists and adds
// the grant in one Lua script; Granted is one SISMEMBER. It is safe for
// concurrent use.
type Contacts struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ tenant.ContactStore = (*Contacts)(nil)

// NewContacts returns the store under keyPrefix (e.g. "ck:v1:").
func NewContacts(rdb redis.UniversalClient, keyPrefix string) *Contacts {
	return &Contacts{rdb: rdb, prefix: keyPrefix + "tenant:"}
}

// orgKey is a key of org's. The organisation is a hash tag ({org}), so all
// of its keys are in one Redis Cluster slot and one transaction may change
// them; tenant checks that org has no braces.
func (s *Contacts) orgKey(org, kind string) string { return s.prefix + "{" + org + "}:" + kind }

func (s *Contacts) contactsKey(org string) string { return s.orgKey(org, "contacts") }
func (s *Contacts) indexKey(org string) string    { return s.orgKey(org, "index") }
func (s *Contacts) grantsKey(org, email string) string {
	return s.orgKey(org, "grants:"+email)
}

// record is what Redis holds for a contact, under its email in the
// organisation's hash.
type record struct {
	Name      string    `json:"name"`
	Phone     string    `json:"phone,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func (r record) contact(org, email string) tenant.Contact {
	return tenant.Contact{Org: org, Email: email, Name: r.Name, Phone: r.Phone, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func decode(org, email, v string) (tenant.Contact, error) {
	var r record
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return tenant.Contact{}, fmt.Errorf("tenant: decode contact %s of organisation %s: %w", email, org, err)
	}
	return r.contact(org, email), nil
}

// Get implements tenant.ContactStore.
func (s *Contacts) Get(ctx context.Context, org, email string) (tenant.Contact, error) {
	var rec *redis.StringCmd
	var grants *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGet(ctx, s.contactsKey(org), email)
		grants = p.SMembers(ctx, s.grantsKey(org, email))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) { // Nil: HGET found no contact
		return tenant.Contact{}, fmt.Errorf("tenant: get %s: %w", email, err)
	}
	if errors.Is(rec.Err(), redis.Nil) {
		return tenant.Contact{}, fmt.Errorf("tenant: %s in organisation %s: %w", email, org, tenant.ErrNotFound)
	}
	c, err := decode(org, email, rec.Val())
	if err != nil {
		return tenant.Contact{}, err
	}
	c.Buildings = grants.Val()
	return c, nil
}

// List implements tenant.ContactStore: two Redis round trips whatever the
// page's size.
func (s *Contacts) List(ctx context.Context, org, cursor string, limit int) (tenant.Page, error) {
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	emails, err := s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.indexKey(org), Start: start, Stop: "+", ByLex: true, Count: int64(limit + 1),
	}).Result()
	if err != nil {
		return tenant.Page{}, fmt.Errorf("tenant: list organisation %s: %w", org, err)
	}
	var page tenant.Page
	if len(emails) > limit {
		emails = emails[:limit]
		page.Next = emails[limit-1]
	}
	var recs *redis.SliceCmd
	var total *redis.IntCmd
	grants := make([]*redis.StringSliceCmd, len(emails))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		total = p.ZCard(ctx, s.indexKey(org))
		if len(emails) > 0 {
			recs = p.HMGet(ctx, s.contactsKey(org), emails...)
		}
		for i, e := range emails {
			grants[i] = p.SMembers(ctx, s.grantsKey(org, e))
		}
		return nil
	})
	if err != nil {
		return tenant.Page{}, fmt.Errorf("tenant: list organisation %s: %w", org, err)
	}
	page.Total = int(total.Val())
	page.Contacts = make([]tenant.Contact, 0, len(emails))
	for i, e := range emails {
		v, ok := recs.Val()[i].(string)
		if !ok { // removed between the two round trips
			continue
		}
		c, err := decode(org, e, v)
		if err != nil {
			return tenant.Page{}, err
		}
		c.Buildings = grants[i].Val()
		page.Contacts = append(page.Contacts, c)
	}
	return page, nil
}

// grantScript adds a grant only if the contact exists, in one step, so that
// a grant racing an import that removes the contact cannot outlive it.
// KEYS: contacts hash, the contact's grants set. ARGV: email, building.
// Returns -1 when there is no such contact.
var grantScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
	return -1
end
return redis.call('SADD', KEYS[2], ARGV[2])`)

// Grant implements tenant.ContactStore, in one Lua script.
func (s *Contacts) Grant(ctx context.Context, org, email, building string) error {
	n, err := grantScript.Run(ctx, s.rdb, []string{s.contactsKey(org), s.grantsKey(org, email)}, email, building).Int()
	if err != nil {
		return fmt.Errorf("tenant: grant %s building %s: %w", email, building, err)
	}
	if n < 0 {
		return fmt.Errorf("tenant: grant: %s in organisation %s: %w", email, org, tenant.ErrNotFound)
	}
	return nil
}

// Revoke implements tenant.ContactStore.
func (s *Contacts) Revoke(ctx context.Context, org, email, building string) error {
	var exists *redis.BoolCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.HExists(ctx, s.contactsKey(org), email)
		p.SRem(ctx, s.grantsKey(org, email), building)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tenant: revoke %s building %s: %w", email, building, err)
	}
	if !exists.Val() {
		return fmt.Errorf("tenant: revoke: %s in organisation %s: %w", email, org, tenant.ErrNotFound)
	}
	return nil
}

// Granted implements tenant.ContactStore: one SISMEMBER.
func (s *Contacts) Granted(ctx context.Context, org, email, building string) (bool, error) {
	ok, err := s.rdb.SIsMember(ctx, s.grantsKey(org, email), building).Result()
	if err != nil {
		return false, fmt.Errorf("tenant: granted %s building %s: %w", email, building, err)
	}
	return ok, nil
}

// Grants implements tenant.ContactStore.
func (s *Contacts) Grants(ctx context.Context, org, email string) ([]string, error) {
	var exists *redis.BoolCmd
	var members *redis.StringSliceCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		exists = p.HExists(ctx, s.contactsKey(org), email)
		members = p.SMembers(ctx, s.grantsKey(org, email))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tenant: grants of %s: %w", email, err)
	}
	if !exists.Val() {
		return nil, fmt.Errorf("tenant: grants: %s in organisation %s: %w", email, org, tenant.ErrNotFound)
	}
	return members.Val(), nil
}

// maxTxAttempts bounds how often an update is worked out again after a
// concurrent change to the organisation's contacts. Imports are rare;
// losing this often means something is writing in a loop.
const maxTxAttempts = 8

// batch bounds the fields or keys in one queued command, so that a large
// import is many moderate commands inside one transaction rather than one
// command with a hundred thousand arguments.
const batch = 1000

// Update implements tenant.ContactStore: plan runs on the contacts hash
// read under WATCH, and its changes are written in one MULTI/EXEC. Redis
// applies a transaction whole or not at all; a concurrent change to the
// contacts hash makes EXEC fail, and the update is worked out again (at
// most maxTxAttempts times, then tenant.ErrConflict).
func (s *Contacts) Update(ctx context.Context, org string, plan func(existing map[string]tenant.Contact) (tenant.ContactChanges, error)) error {
	for range maxTxAttempts {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			return s.apply(ctx, tx, org, plan)
		}, s.contactsKey(org))
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		return err
	}
	return tenant.ErrConflict
}

// apply reads org's contacts under WATCH, asks plan what to change and
// writes it in one MULTI/EXEC.
func (s *Contacts) apply(ctx context.Context, tx *redis.Tx, org string, plan func(map[string]tenant.Contact) (tenant.ContactChanges, error)) error {
	all, err := tx.HGetAll(ctx, s.contactsKey(org)).Result()
	if err != nil {
		return fmt.Errorf("read contacts: %w", err)
	}
	existing := make(map[string]tenant.Contact, len(all))
	for email, v := range all {
		var r record
		if json.Unmarshal([]byte(v), &r) != nil {
			// A value that no longer decodes is overwritten: an empty name
			// (no imported contact has one) makes plan update it.
			r.Name = ""
		}
		existing[email] = r.contact(org, email)
	}
	ch, err := plan(existing)
	if err != nil {
		return err
	}
	var set []any // field, value, field, value… for HSET
	for _, c := range slices.Concat(ch.Created, ch.Updated) {
		v, err := json.Marshal(record{Name: c.Name, Phone: c.Phone, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt})
		if err != nil {
			return fmt.Errorf("encode contact %s: %w", c.Email, err)
		}
		set = append(set, c.Email, string(v))
	}
	created := make([]redis.Z, len(ch.Created)) // new members of the index
	for i, c := range ch.Created {
		created[i] = redis.Z{Member: c.Email}
	}
	if len(set) == 0 && len(ch.Removed) == 0 && len(ch.Grants) == 0 {
		return nil // nothing to write; the WATCH is simply released
	}
	_, err = tx.TxPipelined(ctx, func(q redis.Pipeliner) error {
		for part := range slices.Chunk(set, 2*batch) {
			q.HSet(ctx, s.contactsKey(org), part...)
		}
		for part := range slices.Chunk(created, batch) {
			q.ZAdd(ctx, s.indexKey(org), part...)
		}
		for part := range slices.Chunk(ch.Removed, batch) {
			q.HDel(ctx, s.contactsKey(org), part...)
			members := make([]any, len(part))
			keys := make([]string, len(part))
			for i, e := range part {
				members[i], keys[i] = e, s.grantsKey(org, e)
			}
			q.ZRem(ctx, s.indexKey(org), members...)
			q.Del(ctx, keys...)
		}
		for email, buildings := range ch.Grants {
			members := make([]any, len(buildings))
			for i, b := range buildings {
				members[i] = b
			}
			q.SAdd(ctx, s.grantsKey(org, email), members...)
		}
		return nil
	})
	return err
}
