// Package propertyredis keeps the properties a deployment serves in
// Redis, shared by every replica (issue 14): each property with its
// access-system connections, each connection's secret sealed with
// internal/secrets and bound to its property and connection, which
// property is the default, and a version counter bumped, with a PUBLISH,
// on every change so replicas follow.
//
// Every key shares one hash tag, so a change (the property, the default,
// the version) is one MULTI/EXEC on Redis Cluster too.
package propertyredis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

// Prefix starts every key of the store; the braces are the hash tag.
const Prefix = "ck:v1:{properties}:"

// Keys of the store.
const (
	// KeyAll is a hash: property id -> its record (JSON, secrets sealed).
	KeyAll = Prefix + "all"
	// KeyDefault is the default property's id.
	KeyDefault = Prefix + "default"
	// KeyVersion is bumped on every change.
	KeyVersion = Prefix + "version"
	// Channel is published to, with the new version, on every change.
	Channel = Prefix + "changed"
)

// Errors, for errors.Is.
var (
	// ErrExists: Create of an id already stored.
	ErrExists = errors.New("propertyredis: the property exists")
	// ErrDefault: Remove of the default property.
	ErrDefault = errors.New("propertyredis: the default property cannot be removed")
	// ErrNotFound: Update of an id not stored.
	ErrNotFound = errors.New("propertyredis: no such property")
)

// Store is the properties in Redis. Safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	keys *secrets.Keyring
}

// New returns the store on rdb, sealing secrets with keys' primary key
// and opening them with any of its keys.
func New(rdb redis.UniversalClient, keys *secrets.Keyring) *Store {
	return &Store{rdb: rdb, keys: keys}
}

// record is a property as stored. The *_env and *_file names are not
// kept: Redis holds the secret itself, sealed.
type record struct {
	ID       string       `json:"id"`
	Name     string       `json:"name"`
	TimeZone string       `json:"timezone,omitempty"`
	Access   []connRecord `json:"access"`
	Envoy    *envoyRecord `json:"envoy,omitempty"` // envoy.go
	PMS      *pmsRecord   `json:"pms,omitempty"`   // pms.go
}

type connRecord struct {
	System string  `json:"system"`
	Name   string  `json:"name"`
	URL    string  `json:"url"`
	Org    string  `json:"org,omitempty"`
	Email  string  `json:"email,omitempty"`
	Places []int64 `json:"places,omitempty"`
	Secret string  `json:"secret"` // sealed
}

// aad binds a sealed secret to its property and connection: moved to
// another, it does not open.
func aad(propertyID, conn string) []byte {
	return []byte("property-secret/" + propertyID + "/" + conn)
}

func (s *Store) seal(p property.Property) ([]byte, error) {
	r := record{ID: p.ID, Name: p.Name, TimeZone: p.TimeZone, Access: make([]connRecord, len(p.Access))}
	for i, c := range p.Access {
		sealed, err := s.keys.Seal([]byte(c.Secret), aad(p.ID, c.Name))
		if err != nil {
			return nil, fmt.Errorf("access[%d]: seal the secret: %w", i, err)
		}
		r.Access[i] = connRecord{System: c.System, Name: c.Name, URL: c.URL, Org: c.Org, Email: c.Email, Places: c.Places, Secret: sealed}
	}
	var err error
	if r.Envoy, err = s.sealEnvoy(p); err != nil {
		return nil, err
	}
	if r.PMS, err = s.sealPMS(p.ID, p.PMS); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

func (s *Store) open(id string, raw []byte) (property.Property, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return property.Property{}, fmt.Errorf("property %s: the record is not JSON: %w", id, err)
	}
	if r.ID != id {
		return property.Property{}, fmt.Errorf("property %s: the record is property %q's", id, r.ID)
	}
	p := property.Property{ID: r.ID, Name: r.Name, TimeZone: r.TimeZone, Access: make([]property.Connection, len(r.Access))}
	for i, c := range r.Access {
		plain, err := s.keys.Open(c.Secret, aad(id, c.Name))
		if err != nil {
			return property.Property{}, fmt.Errorf("property %s: connection %s: open the secret (is CLOUDKEY_SECRETS_KEY the key it was sealed with?): %w", id, c.Name, err)
		}
		p.Access[i] = property.Connection{System: c.System, Name: c.Name, URL: c.URL, Org: c.Org, Email: c.Email, Places: c.Places, Secret: string(plain)}
	}
	var err error
	if p.Envoy, err = s.openEnvoy(id, r.Envoy); err != nil {
		return property.Property{}, err
	}
	if p.PMS, err = s.openPMS(id, r.PMS); err != nil {
		return property.Property{}, err
	}
	return p, nil
}

// Same reports whether a and b are the same property as stored: what
// Redis keeps, secrets compared in clear, the default flag and the
// *_env/*_file names ignored.
func Same(a, b property.Property) bool {
	if a.ID != b.ID || a.Name != b.Name || a.TimeZone != b.TimeZone || len(a.Access) != len(b.Access) ||
		!sameEnvoy(a.Envoy, b.Envoy) || !a.PMS.Equal(b.PMS) {
		return false
	}
	for i, x := range a.Access {
		y := b.Access[i]
		if x.System != y.System || x.Name != y.Name || x.URL != y.URL || x.Org != y.Org || x.Email != y.Email ||
			x.Secret != y.Secret || !slices.Equal(x.Places, y.Places) {
			return false
		}
	}
	return true
}

// Put creates p or updates it to match, secrets included (compared
// opened, so an equal property is left as it is and the version does
// not move); changed reports a write. p.Default makes p the default
// property; a false p.Default never takes that away.
func (s *Store) Put(ctx context.Context, p property.Property) (changed bool, err error) {
	return s.write(ctx, p, putAny)
}

// Create stores p, a new property; ErrExists when its id is stored.
func (s *Store) Create(ctx context.Context, p property.Property) error {
	_, err := s.write(ctx, p, putNew)
	return err
}

// Update replaces the stored property p.ID by p; ErrNotFound when it is
// not stored.
func (s *Store) Update(ctx context.Context, p property.Property) (changed bool, err error) {
	return s.write(ctx, p, putExisting)
}

type putMode int

const (
	putAny putMode = iota
	putNew
	putExisting
)

func (s *Store) write(ctx context.Context, p property.Property, mode putMode) (changed bool, err error) {
	if p.ID == "" || len(p.Access) == 0 {
		return false, fmt.Errorf("propertyredis: put %q: a property needs an id and a connection", p.ID)
	}
	var version int64
	txf := func(tx *redis.Tx) error {
		changed = false
		raw, err := tx.HGet(ctx, KeyAll, p.ID).Bytes()
		exists := err == nil
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		switch {
		case exists && mode == putNew:
			return ErrExists
		case !exists && mode == putExisting:
			return ErrNotFound
		}
		def, err := tx.Get(ctx, KeyDefault).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		setDefault := p.Default && def != p.ID
		same := false
		if exists {
			// A record that does not open (another key, tampered) is
			// replaced: the caller's is the truth.
			if old, err := s.open(p.ID, raw); err == nil {
				same = Same(old, p)
			}
		}
		if same && !setDefault {
			return nil
		}
		rec, err := s.seal(p)
		if err != nil {
			return err
		}
		cmds, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			if !same {
				pipe.HSet(ctx, KeyAll, p.ID, rec)
			}
			if setDefault {
				pipe.Set(ctx, KeyDefault, p.ID, 0)
			}
			pipe.Incr(ctx, KeyVersion)
			return nil
		})
		if err != nil {
			return err
		}
		version = cmds[len(cmds)-1].(*redis.IntCmd).Val()
		changed = true
		return nil
	}
	if err := s.watch(ctx, txf); err != nil {
		if errors.Is(err, ErrExists) || errors.Is(err, ErrNotFound) {
			return false, fmt.Errorf("property %s: %w", p.ID, err)
		}
		return false, fmt.Errorf("propertyredis: put property %s: %w", p.ID, err)
	}
	if changed {
		s.publish(ctx, version)
	}
	return changed, nil
}

// watch runs txf in an optimistic transaction on the store's keys,
// retried a few times when another writer got there first.
func (s *Store) watch(ctx context.Context, txf func(*redis.Tx) error) error {
	var err error
	for range 10 {
		err = s.rdb.Watch(ctx, txf, KeyAll, KeyDefault)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return err
}

// publish tells the replicas a change was made. A lost message is fine:
// they poll the version too.
func (s *Store) publish(ctx context.Context, version int64) {
	_ = s.rdb.Publish(ctx, Channel, strconv.FormatInt(version, 10)).Err()
}

// Remove forgets property id; removed is false when it was not stored.
// The default property is not removed (ErrDefault).
func (s *Store) Remove(ctx context.Context, id string) (removed bool, err error) {
	var version int64
	txf := func(tx *redis.Tx) error {
		removed = false
		def, err := tx.Get(ctx, KeyDefault).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if def == id {
			return ErrDefault
		}
		n, err := tx.HExists(ctx, KeyAll, id).Result()
		if err != nil || !n {
			return err
		}
		cmds, err := tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.HDel(ctx, KeyAll, id)
			pipe.Incr(ctx, KeyVersion)
			return nil
		})
		if err != nil {
			return err
		}
		version, removed = cmds[1].(*redis.IntCmd).Val(), true
		return nil
	}
	if err := s.watch(ctx, txf); err != nil {
		if errors.Is(err, ErrDefault) {
			return false, fmt.Errorf("property %s: %w", id, err)
		}
		return false, fmt.Errorf("propertyredis: remove property %s: %w", id, err)
	}
	if removed {
		s.publish(ctx, version)
	}
	return removed, nil
}

// Get returns property id, its secrets opened; ok is false when it is not
// stored.
func (s *Store) Get(ctx context.Context, id string) (p property.Property, ok bool, err error) {
	raw, err := s.rdb.HGet(ctx, KeyAll, id).Bytes()
	if errors.Is(err, redis.Nil) {
		return property.Property{}, false, nil
	}
	if err != nil {
		return property.Property{}, false, fmt.Errorf("propertyredis: get property %s: %w", id, err)
	}
	def, err := s.rdb.Get(ctx, KeyDefault).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return property.Property{}, false, fmt.Errorf("propertyredis: get property %s: %w", id, err)
	}
	if p, err = s.open(id, raw); err != nil {
		return property.Property{}, false, err
	}
	p.Default = def == id
	return p, true, nil
}

// Stored is one property of a Snapshot.
type Stored struct {
	Property property.Property
	// Hash is the stored record's digest: it changes when, and only when,
	// the property is written changed, so a replica rebuilds only what
	// changed.
	Hash string
	// Err is set when the record does not open (a secret sealed with a
	// key the ring lacks, tampering); Property then has only its ID.
	Err error
}

// Snapshot is every stored property at one version.
type Snapshot struct {
	Version int64
	// Default is the default property's id; "" when none is set.
	Default string
	// Properties, the default first, then by id.
	Properties []Stored
}

// Load reads every property, the default and the version at once (one
// MULTI/EXEC).
func (s *Store) Load(ctx context.Context) (Snapshot, error) {
	var all *redis.MapStringStringCmd
	var def *redis.StringCmd
	var ver *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		all = pipe.HGetAll(ctx, KeyAll)
		def = pipe.Get(ctx, KeyDefault)
		ver = pipe.Get(ctx, KeyVersion)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fmt.Errorf("propertyredis: load the properties: %w", err)
	}
	snap := Snapshot{Default: def.Val()}
	if v := ver.Val(); v != "" {
		if snap.Version, err = strconv.ParseInt(v, 10, 64); err != nil {
			return Snapshot{}, fmt.Errorf("propertyredis: %s: %q is not a number", KeyVersion, v)
		}
	}
	for id, raw := range all.Val() {
		sum := sha256.Sum256([]byte(raw))
		st := Stored{Hash: hex.EncodeToString(sum[:])}
		if st.Property, st.Err = s.open(id, []byte(raw)); st.Err != nil {
			st.Property = property.Property{ID: id}
		}
		st.Property.Default = id == snap.Default
		snap.Properties = append(snap.Properties, st)
	}
	slices.SortFunc(snap.Properties, func(a, b Stored) int {
		switch {
		case a.Property.Default != b.Property.Default:
			if a.Property.Default {
				return -1
			}
			return 1
		case a.Property.ID < b.Property.ID:
			return -1
		case a.Property.ID > b.Property.ID:
			return 1
		}
		return 0
	})
	return snap, nil
}

// List returns every stored property, the default first, then by id; a
// property that does not open is an error.
func (s *Store) List(ctx context.Context) ([]property.Property, error) {
	snap, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]property.Property, 0, len(snap.Properties))
	var errs []error
	for _, st := range snap.Properties {
		if st.Err != nil {
			errs = append(errs, st.Err)
			continue
		}
		out = append(out, st.Property)
	}
	return out, errors.Join(errs...)
}

// Version returns the version counter: 0 before the first change.
func (s *Store) Version(ctx context.Context) (int64, error) {
	v, err := s.rdb.Get(ctx, KeyVersion).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("propertyredis: version: %w", err)
	}
	return v, nil
}

// Changes returns a channel that receives after each change another
// client publishes, until ctx ends (it is then closed). Notices coalesce:
// one waiting notice stands for any number of changes, so a receiver
// reloads (Load) rather than counting. Messages can be lost (a
// reconnection): poll Version too.
func (s *Store) Changes(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	ps := s.rdb.Subscribe(ctx, Channel)
	go func() {
		defer close(out)
		defer ps.Close()
		msgs := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-msgs:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// Seal returns p's record as Put stores it under KeyAll (tests, tools).
func (s *Store) Seal(p property.Property) ([]byte, error) { return s.seal(p) }
