package setup

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/access/kisi/loginredis"
	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
	"github.com/cloudkey/cloudkey/unlock"
)

// RosterDirectories reads property id as `cloudkey serve` stores it in
// Redis (its connections' secrets opened with keys, the serve
// configuration's CLOUDKEY_SECRETS_KEY) and returns its time zone and one
// user directory per connection, for `cloudkey roster report`. The
// clients are the command's own: nothing of a running server is used.
func RosterDirectories(ctx context.Context, rdb redis.UniversalClient, keys *secrets.Keyring, id string) (string, []reconcile.Connection, error) {
	p, ok, err := propertyredis.New(rdb, keys).Get(ctx, id)
	if err != nil {
		return "", nil, fmt.Errorf("read property %s: %w", id, err)
	}
	if !ok {
		return "", nil, fmt.Errorf("property %s is not stored in this Redis: is it the one `cloudkey serve` uses, and is the property served?", id)
	}
	conns := make([]reconcile.Connection, 0, len(p.Access))
	for _, c := range p.Access {
		cid := c.ID(p)
		switch c.System {
		case property.Openpath:
			client, err := openpath.New(openpath.Config{BaseURL: c.URL, Email: c.Email, Password: c.Secret, OrgID: c.Org, Name: cid})
			if err != nil {
				return "", nil, fmt.Errorf("connection %s: %w", cid, err)
			}
			conns = append(conns, reconcile.Connection{Name: cid, Directory: client})
		case property.Kisi:
			// The same login store as the server's: listing users makes no
			// login, so it is never written.
			client, err := kisi.New(kisi.Config{BaseURL: c.URL, APIKey: c.Secret, PlaceIDs: c.Places, Name: cid,
				Logins: loginredis.New(rdb, keys, cid)})
			if err != nil {
				return "", nil, fmt.Errorf("connection %s: %w", cid, err)
			}
			conns = append(conns, reconcile.Connection{Name: cid, Directory: client})
		default:
			return "", nil, fmt.Errorf("connection %s: unknown system %q", cid, c.System)
		}
	}
	return p.TimeZone, conns, nil
}

// MoveOutRunner is a move-out runner for `cloudkey roster moveout`, on
// the Redis of `cloudkey serve`, for property id alone: its access systems
// as RosterDirectories reads them, the cached views of its residents
// dropped from the shared cache (every connection's keys, and the bare
// ones of a default property's first connection), and actions audited
// through audit. The clients are the command's own.
func MoveOutRunner(ctx context.Context, rdb redis.UniversalClient, keys *secrets.Keyring, audit unlock.Auditor, id string) (*moveout.Runner, error) {
	tz, dirs, err := RosterDirectories(ctx, rdb, keys, id)
	if err != nil {
		return nil, err
	}
	conns := moveout.Connections(dirs)
	store := cache.New(rdb, cache.Config{LocalTTL: -1})
	return moveout.New(moveout.Config{
		Store: moveout.NewStore(rdb), Rosters: rosterredis.New(rdb), Audit: audit,
		Systems: func(p string) (string, []moveout.Connection, bool) {
			return tz, conns, p == id
		},
		Invalidate: func(ctx context.Context, _ string, email string) error {
			errs := []error{store.Invalidate(ctx, email)}
			for _, c := range conns {
				errs = append(errs, store.Invalidate(ctx, c.Name+"|"+email))
			}
			return errors.Join(errs...)
		},
	})
}
