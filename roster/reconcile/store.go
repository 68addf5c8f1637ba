package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

// Store is where a property's roster is read and its reconciliation kept
// (rosterredis.Store).
type Store interface {
	Current(ctx context.Context, property string) (rosterredis.Current, bool, error)
	SaveReconciliation(ctx context.Context, property string, links rosterredis.Links, nearMissEmails []string) error
}

// ErrNoRoster: the property has no roster yet.
var ErrNoRoster = errors.New("the property has no roster yet: import one first (ImportRoster, or `cloudkey roster import FILE --property P`)")

// Reconcile reconciles property's current roster (from store) with conns
// as of now in the time zone tz, and stores the links and near misses it
// found, for the move-out policy and the residents' hint.
func Reconcile(ctx context.Context, store Store, property, tz string, conns []Connection, now time.Time) (*Report, error) {
	cur, ok, err := store.Current(ctx, property)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("reconcile %s: %w", property, ErrNoRoster)
	}
	today, err := Today(tz, now)
	if err != nil {
		return nil, err
	}
	r, err := Run(ctx, Input{Property: property, Version: cur.Version, People: cur.People, Today: today}, conns)
	if err != nil {
		return nil, err
	}
	links := rosterredis.Links{RosterVersion: cur.Version, At: now.UTC(), Links: r.Links}
	if err := store.SaveReconciliation(ctx, property, links, r.NearMissEmails); err != nil {
		return nil, fmt.Errorf("reconcile %s: %w", property, err)
	}
	return r, nil
}
