package loginredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

// keyPrefix starts every login key; Rotate scans for it.
const keyPrefix = "ck:v1:kisi-login:"

// Store is a kisi.LoginStore for one connection on Redis.
type Store struct {
	rdb  redis.UniversalClient
	keys *secrets.Keyring
	conn string
}

var _ kisi.LoginStore = (*Store)(nil)

// New returns the login store of connection conn (its configuration key,
// such as "harbor-view.kisi"), sealing secrets with keys' primary key and
// opening them with any of its keys.
func New(rdb redis.UniversalClient, keys *secrets.Keyring, conn string) *Store {
	return &Store{rdb: rdb, keys: keys, conn: conn}
}

// record is a login as stored; Secret is sealed.
type record struct {
	ID        int64     `json:"id"`
	UserID    int64     `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	Secret    string    `json:"secret"`
}

// Key is the Redis key of conn's login of userID.
func Key(conn string, userID int64) string {
	return keyPrefix + "{" + conn + "}:" + strconv.FormatInt(userID, 10)
}

// aad binds a sealed secret to its connection and user.
func aad(conn string, userID int64) []byte {
	return []byte("kisi-login/" + conn + "/" + strconv.FormatInt(userID, 10))
}

// parseKey is Key's inverse.
func parseKey(key string) (conn string, userID int64, ok bool) {
	rest, ok := strings.CutPrefix(key, keyPrefix+"{")
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndex(rest, "}:")
	if i < 0 {
		return "", 0, false
	}
	userID, err := strconv.ParseInt(rest[i+2:], 10, 64)
	if err != nil {
		return "", 0, false
	}
	return rest[:i], userID, true
}

// Get returns userID's login; ok is false when none is stored. A record
// that does not open (another user's or connection's, tampered, or sealed
// with a key the ring lacks) is an error.
func (s *Store) Get(ctx context.Context, userID int64) (kisi.Login, bool, error) {
	key := Key(s.conn, userID)
	raw, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return kisi.Login{}, false, nil
	}
	if err != nil {
		return kisi.Login{}, false, fmt.Errorf("loginredis: get %s: %w", key, err)
	}
	l, err := open(s.keys, s.conn, userID, raw)
	if err != nil {
		return kisi.Login{}, false, fmt.Errorf("loginredis: get %s: %w", key, err)
	}
	return l, true, nil
}

// Put stores l as l.UserID's login, replacing any other; it is kept until
// deleted.
func (s *Store) Put(ctx context.Context, l kisi.Login) error {
	key := Key(s.conn, l.UserID)
	raw, err := seal(s.keys, s.conn, l)
	if err != nil {
		return fmt.Errorf("loginredis: put %s: %w", key, err)
	}
	if err := s.rdb.Set(ctx, key, raw, 0).Err(); err != nil {
		return fmt.Errorf("loginredis: put %s: %w", key, err)
	}
	return nil
}

// Delete forgets userID's login; deleting a missing one is not an error.
func (s *Store) Delete(ctx context.Context, userID int64) error {
	key := Key(s.conn, userID)
	if err := s.rdb.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("loginredis: delete %s: %w", key, err)
	}
	return nil
}

func seal(keys *secrets.Keyring, conn string, l kisi.Login) ([]byte, error) {
	if l.UserID <= 0 {
		return nil, fmt.Errorf("user id %d: want a positive Kisi user id", l.UserID)
	}
	sealed, err := keys.Seal([]byte(l.Secret), aad(conn, l.UserID))
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	raw, err := json.Marshal(record{ID: l.ID, UserID: l.UserID, CreatedAt: l.CreatedAt, Secret: sealed})
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return raw, nil
}

func open(keys *secrets.Keyring, conn string, userID int64, raw []byte) (kisi.Login, error) {
	var r record
	if err := json.Unmarshal(raw, &r); err != nil {
		return kisi.Login{}, errors.New("the record is not a login record (JSON)")
	}
	if r.UserID != userID {
		return kisi.Login{}, fmt.Errorf("the record is user %d's, not %d's", r.UserID, userID)
	}
	plain, err := keys.Open(r.Secret, aad(conn, userID))
	if err != nil {
		return kisi.Login{}, fmt.Errorf("open the secret: %w", err)
	}
	return kisi.Login{ID: r.ID, UserID: r.UserID, Secret: string(plain), CreatedAt: r.CreatedAt}, nil
}

// List returns every login stored for the connection, with Secret left
// empty (nothing is unsealed). It scans every master of a Cluster (the
// connection's hash tag keeps its logins on one slot, but which master
// holds it is the Cluster's business). Records that are not login records
// are reported in the error, by key, and the others still returned.
func (s *Store) List(ctx context.Context) ([]kisi.Login, error) {
	keys, err := scanMatch(ctx, s.rdb, keyPrefix+"{"+globEscape(s.conn)+"}:*")
	if err != nil {
		return nil, fmt.Errorf("loginredis: list %s: %w", s.conn, err)
	}
	// The scan pattern is exact, but a key must also parse back to this
	// connection.
	var mine []string
	for _, k := range keys {
		if conn, _, ok := parseKey(k); ok && conn == s.conn {
			mine = append(mine, k)
		}
	}
	vals := make([]*redis.StringCmd, len(mine))
	if len(mine) > 0 {
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range mine {
				vals[i] = p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("loginredis: list %s: %w", s.conn, err)
		}
	}
	var (
		out []kisi.Login
		bad []string
	)
	for i, k := range mine {
		raw, err := vals[i].Bytes()
		if errors.Is(err, redis.Nil) {
			continue // deleted since the scan
		}
		_, userID, _ := parseKey(k)
		var r record
		if err != nil || json.Unmarshal(raw, &r) != nil || r.UserID != userID || r.ID <= 0 {
			bad = append(bad, k)
			continue
		}
		out = append(out, kisi.Login{ID: r.ID, UserID: r.UserID, CreatedAt: r.CreatedAt})
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("loginredis: list %s: %d keys are not login records: %s", s.conn, len(bad), strings.Join(bad, " "))
	}
	return out, nil
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
