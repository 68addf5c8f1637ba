package openpath

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
)

const (
	// pageSize is Openpath's largest page.
	pageSize = "1000"
	// maxListItems bounds how much of a list is fetched, so that a server
	// that keeps answering full pages cannot keep a call going forever.
	maxListItems = 100_000
)

// listPage is one page of an Openpath list. TotalCount counts the items
// before the filter, FilteredCount after it.
type listPage[T any] struct {
	TotalCount    *int `json:"totalCount"`
	FilteredCount *int `json:"filteredCount"`
	Data          []T  `json:"data"`
}

// size is how many items the whole (filtered) list holds, as far as the
// page says; -1 when it does not say.
func (p *listPage[T]) size() int {
	switch {
	case p.FilteredCount != nil:
		return *p.FilteredCount
	case p.TotalCount != nil:
		return *p.TotalCount
	}
	return -1
}

// listAll fetches every page of the list at path (below /orgs/{orgId}).
// The first request carries query as given; later ones add offset and
// limit, so that an endpoint whose spec declares no paging (user entries)
// gets them only if its first page says there is more.
func listAll[T any](ctx context.Context, c *Client, op, path string, query url.Values) ([]T, error) {
	var all []T
	for {
		p := path
		if len(all) > 0 {
			if query == nil {
				query = url.Values{}
			}
			query.Set("offset", strconv.Itoa(len(all)))
			query.Set("limit", pageSize)
		}
		if len(query) > 0 {
			p += "?" + query.Encode()
		}
		var page listPage[T]
		if err := c.do(ctx, call{op: op, method: "GET", path: p}, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Data...)
		if len(page.Data) == 0 || len(all) >= page.size() {
			return all, nil
		}
		if len(all) >= maxListItems {
			return nil, fmt.Errorf("%s: the list has more than %d items", op, maxListItems)
		}
	}
}
