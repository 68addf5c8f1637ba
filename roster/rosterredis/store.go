// Package rosterredis keeps each property's roster in Redis as versions:
// every import or pull is a new version; the current roster is stored
// whole, and each version records what changed since the one before
// (roster.Diff) and what the import reported. A bounded number of
// versions is kept.
//
// Every key of a property shares the hash tag {roster:<property>}, so a
// Save is one optimistic transaction (WATCH/MULTI) on Redis Cluster too.
package rosterredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/roster"
)

// DefaultKeep is how many versions a property keeps by default.
const DefaultKeep = 50

// prefix starts every key; the same as the cache's.
const prefix = "ck:v1:"

// Store keeps roster versions in Redis. It is safe for concurrent use, by
// several replicas too.
type Store struct {
	rdb  redis.UniversalClient
	keep int
	now  func() time.Time
}

// Option tunes a Store.
type Option func(*Store)

// WithKeep keeps n versions per property (n >= 1).
func WithKeep(n int) Option {
	return func(s *Store) {
		if n >= 1 {
			s.keep = n
		}
	}
}

// WithClock sets the clock versions are stamped with (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New returns a Store on rdb keeping DefaultKeep versions per property.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	s := &Store{rdb: rdb, keep: DefaultKeep, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Snapshot is one import or pull to store.
type Snapshot struct {
	// Source is roster.SourceCSV or roster.SourceBuildium.
	Source string
	// Origin says more: the file name of an import, "full" or
	// "incremental" for a pull.
	Origin string
	// People are the rows (roster.Assemble's); with Incremental they are
	// merged into the current roster (roster.Merge), otherwise they
	// replace it.
	People      []roster.Person
	Incremental bool
	// Issues are what the import or pull reported (skipped rows...).
	Issues []roster.Issue
	// Cursor is where the next incremental pull starts (the PMS's
	// modified-since), kept with the current roster; zero keeps the
	// previous one.
	Cursor time.Time
}

// Version is one stored import or pull: when, from where, the roster's
// size and what changed since the version before.
type Version struct {
	Number    int       `json:"number"`
	Property  string    `json:"property"`
	Source    string    `json:"source"`
	Origin    string    `json:"origin,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Previous is the number of the version this one is compared with (0
	// for the first).
	Previous int `json:"previous,omitempty"`
	People   int `json:"people"`
	Added    int `json:"added"`
	Removed  int `json:"removed"`
	Changed  int `json:"changed"`
	// Diff and Issues are omitted from Versions' listing; Version has
	// them.
	Diff   roster.Diff    `json:"diff"`
	Issues []roster.Issue `json:"issues,omitempty"`
}

// Current is a property's current roster.
type Current struct {
	Version   int             `json:"version"`
	Source    string          `json:"source"`
	CreatedAt time.Time       `json:"createdAt"`
	Cursor    time.Time       `json:"cursor,omitzero"`
	People    []roster.Person `json:"people"`
}

// ErrConflict is returned when a Save kept losing its transaction to
// concurrent ones.
var ErrConflict = errors.New("rosterredis: the roster kept changing during the save; try again")

var propertyID = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// CheckProperty reports a property id that is not [a-z0-9-]{1,63}.
func CheckProperty(p string) error { return checkProperty(p) }

func checkProperty(p string) error {
	if !propertyID.MatchString(p) {
		return fmt.Errorf("rosterredis: property id %q is not [a-z0-9-]{1,63}", p)
	}
	return nil
}

func tag(property string) string         { return prefix + "{roster:" + property + "}:" }
func currentKey(property string) string  { return tag(property) + "current" }
func versionsKey(property string) string { return tag(property) + "versions" }
func versionKey(property string, n int) string {
	return tag(property) + "v:" + strconv.Itoa(n)
}

// Save stores snap as the property's next version and returns it (with
// its diff). Concurrent saves (other replicas) are serialised: each
// compares with the one before it, none is lost.
func (s *Store) Save(ctx context.Context, property string, snap Snapshot) (Version, error) {
	if err := checkProperty(property); err != nil {
		return Version{}, err
	}
	cur, vers := currentKey(property), versionsKey(property)
	var out Version
	txf := func(tx *redis.Tx) error {
		prev, _, err := readCurrent(ctx, tx, property)
		if err != nil {
			return err
		}
		// The versions that fall off the list once this one is pushed.
		dropped, err := tx.LRange(ctx, vers, int64(s.keep-1), -1).Result()
		if err != nil {
			return fmt.Errorf("rosterredis: read versions of %s: %w", property, err)
		}
		people := snap.People
		if snap.Incremental {
			people = roster.Merge(prev.People, snap.People)
		}
		if people == nil {
			people = []roster.Person{}
		}
		diff := roster.Compare(prev.People, people)
		next := Current{Version: prev.Version + 1, Source: snap.Source, CreatedAt: s.now().UTC(), Cursor: prev.Cursor, People: people}
		if !snap.Cursor.IsZero() {
			next.Cursor = snap.Cursor.UTC()
		}
		v := Version{
			Number: next.Version, Property: property, Source: snap.Source, Origin: snap.Origin,
			CreatedAt: next.CreatedAt, Previous: prev.Version, People: len(people),
			Added: len(diff.Added), Removed: len(diff.Removed), Changed: len(diff.Changed),
			Diff: diff, Issues: snap.Issues,
		}
		curJSON, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("rosterredis: encode roster: %w", err)
		}
		verJSON, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("rosterredis: encode version: %w", err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, cur, curJSON, 0)
			p.Set(ctx, versionKey(property, v.Number), verJSON, 0)
			p.LPush(ctx, vers, v.Number)
			p.LTrim(ctx, vers, 0, int64(s.keep-1))
			for _, d := range dropped {
				if n, err := strconv.Atoi(d); err == nil {
					p.Del(ctx, versionKey(property, n))
				}
			}
			return nil
		})
		if err == nil {
			out = v
		}
		return err
	}
	for range 20 {
		err := s.rdb.Watch(ctx, txf, cur, vers)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return Version{}, fmt.Errorf("rosterredis: save the roster of %s: %w", property, err)
		}
		return out, nil
	}
	return Version{}, ErrConflict
}

// Current returns the property's current roster; ok is false when none
// was ever saved.
func (s *Store) Current(ctx context.Context, property string) (Current, bool, error) {
	if err := checkProperty(property); err != nil {
		return Current{}, false, err
	}
	return readCurrent(ctx, s.rdb, property)
}

func readCurrent(ctx context.Context, rdb redis.Cmdable, property string) (Current, bool, error) {
	b, err := rdb.Get(ctx, currentKey(property)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Current{}, false, nil
	}
	if err != nil {
		return Current{}, false, fmt.Errorf("rosterredis: read the roster of %s: %w", property, err)
	}
	var c Current
	if err := json.Unmarshal(b, &c); err != nil {
		return Current{}, false, fmt.Errorf("rosterredis: the stored roster of %s is corrupt: %w", property, err)
	}
	return c, true, nil
}

// Versions lists the property's kept versions, newest first, without
// their Diff and Issues (Version has them).
func (s *Store) Versions(ctx context.Context, property string) ([]Version, error) {
	if err := checkProperty(property); err != nil {
		return nil, err
	}
	nums, err := s.rdb.LRange(ctx, versionsKey(property), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("rosterredis: list the roster versions of %s: %w", property, err)
	}
	if len(nums) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(nums))
	for _, n := range nums {
		if num, err := strconv.Atoi(n); err == nil {
			keys = append(keys, versionKey(property, num))
		}
	}
	// One MGET: the keys share the property's hash slot.
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("rosterredis: read the roster versions of %s: %w", property, err)
	}
	out := make([]Version, 0, len(vals))
	for i, val := range vals {
		str, ok := val.(string)
		if !ok {
			continue // trimmed between the two reads
		}
		var v Version
		if err := json.Unmarshal([]byte(str), &v); err != nil {
			return nil, fmt.Errorf("rosterredis: %s is corrupt: %w", keys[i], err)
		}
		v.Diff, v.Issues = roster.Diff{}, nil
		out = append(out, v)
	}
	return out, nil
}

// Version returns one kept version with its diff and issues; ok is false
// when it does not exist or was trimmed.
func (s *Store) Version(ctx context.Context, property string, number int) (Version, bool, error) {
	if err := checkProperty(property); err != nil {
		return Version{}, false, err
	}
	b, err := s.rdb.Get(ctx, versionKey(property, number)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Version{}, false, nil
	}
	if err != nil {
		return Version{}, false, fmt.Errorf("rosterredis: read roster version %d of %s: %w", number, property, err)
	}
	var v Version
	if err := json.Unmarshal(b, &v); err != nil {
		return Version{}, false, fmt.Errorf("rosterredis: roster version %d of %s is corrupt: %w", number, property, err)
	}
	return v, true, nil
}
