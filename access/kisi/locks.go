package kisi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/cloudkey/cloudkey/access"
)

const (
	// pageSize is the largest page of /locks and /places.
	pageSize = 250
	// maxListItems bounds a list: Kisi's largest offset is 20000.
	maxListItems = 20_000
)

// Restrictions of a lock that a cloud unlock cannot satisfy, in words for
// the resident (access.Entry.Restriction).
const (
	// ReaderRestricted: Kisi opens the lock only with a proximity proof
	// from the reader (Tap to Unlock), which a backend cannot produce.
	ReaderRestricted = "opens only at the door's reader: tap your phone on the reader"
	// GeofenceRestricted: Kisi opens the lock only from a location near
	// it, which the phone's Kisi app sends.
	GeofenceRestricted = "opens only near the door: use the Kisi app on site"
)

// lockItem is what cloudkey reads of Kisi's Lock.
type lockItem struct {
	ID          int64   `json:"id"`
	Name        string  `json:"name"`
	Description *string `json:"description"`
	PlaceID     int64   `json:"place_id"`
	Place       *struct {
		Name string `json:"name"`
	} `json:"place"`
	ReaderRestricted   *bool `json:"reader_restriction_enabled"`
	GeofenceRestricted *bool `json:"geofence_restriction_enabled"`
}

func (l lockItem) entry() access.Entry {
	e := access.Entry{ID: strconv.FormatInt(l.ID, 10), Name: l.Name}
	if l.Place != nil {
		e.Site = l.Place.Name
	}
	// Kisi has no zones: the place is the closest thing, else the lock's
	// own description.
	e.Zone = e.Site
	if e.Zone == "" && l.Description != nil {
		e.Zone = *l.Description
	}
	switch {
	case l.ReaderRestricted != nil && *l.ReaderRestricted:
		e.Restriction = ReaderRestricted
	case l.GeofenceRestricted != nil && *l.GeofenceRestricted:
		e.Restriction = GeofenceRestricted
	}
	return e
}

// ListUserEntries lists the locks the user may open: GET /locks with the
// user's own login (Kisi answers with the locks that user can access),
// every page, keeping only the locks of this connection's places
// (Config.PlaceIDs, or the organisation's places). Reader-restricted and
// geofenced locks are listed with their Restriction.
func (c *Client) ListUserEntries(ctx context.Context, userID string) ([]access.Entry, error) {
	uid, err := parseID("user id", userID)
	if err != nil {
		return nil, fmt.Errorf("kisi: entries: %w", err)
	}
	places, err := c.placeSet(ctx)
	if err != nil {
		return nil, fmt.Errorf("kisi: entries of user %d: %w", uid, err)
	}
	var locks []lockItem
	err = c.asUser(ctx, uid, func(s session) error {
		var err error
		locks, err = listAll[lockItem](ctx, c, call{op: "list locks", method: http.MethodGet, path: "/locks",
			auth: s.auth(), limiter: c.userLimiter(uid), user: true})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kisi: entries of user %d: %w", uid, err)
	}
	entries := make([]access.Entry, 0, len(locks))
	for _, l := range locks {
		if places[l.PlaceID] {
			entries = append(entries, l.entry())
		}
	}
	return entries, nil
}

// placeSet is the set of places whose locks are listed: Config.PlaceIDs,
// or else every place the organisation key sees (GET /places), fetched
// once; a failed fetch is tried again by the next call.
func (c *Client) placeSet(ctx context.Context) (map[int64]bool, error) {
	c.placesMu.Lock()
	defer c.placesMu.Unlock()
	if c.orgPlaces != nil {
		return c.orgPlaces, nil
	}
	set := map[int64]bool{}
	if len(c.places) > 0 {
		for _, id := range c.places {
			set[id] = true
		}
	} else {
		places, err := listAll[struct {
			ID int64 `json:"id"`
		}](ctx, c, call{op: "list places", method: http.MethodGet, path: "/places", auth: c.orgKey, limiter: c.orgLimiter})
		if err != nil {
			return nil, err
		}
		for _, p := range places {
			set[p.ID] = true
		}
	}
	c.orgPlaces = set
	return set, nil
}

// collectionRange is the X-Collection-Range header: "start-end/total".
var collectionRange = regexp.MustCompile(`^(\d+)-(\d+)/(\d+)$`)

// listAll fetches every page of the list rq names (rq.path without a
// query), pageSize at a time, until the X-Collection-Range total is
// reached or a page comes back empty or short.
func listAll[T any](ctx context.Context, c *Client, rq call) ([]T, error) {
	return listPages[T](ctx, c, rq, pageSize)
}

// listPages is listAll with pages of size items (GET /users allows at
// most 100). rq.path may carry a query of its own.
func listPages[T any](ctx context.Context, c *Client, rq call, size int) ([]T, error) {
	base, sep := rq.path, "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	var all []T
	for {
		q := url.Values{"limit": {strconv.Itoa(size)}, "offset": {strconv.Itoa(len(all))}}
		rq.path = base + sep + q.Encode()
		var page []T
		hdr, err := c.do(ctx, rq, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		total := -1
		if m := collectionRange.FindStringSubmatch(hdr.Get("X-Collection-Range")); m != nil {
			total, _ = strconv.Atoi(m[3])
		}
		switch {
		case len(page) == 0, total >= 0 && len(all) >= total, total < 0 && len(page) < size:
			return all, nil
		case len(all) >= maxListItems:
			return nil, fmt.Errorf("%s: the list has more than %d items", rq.op, maxListItems)
		}
	}
}
