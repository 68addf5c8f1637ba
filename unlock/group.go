package unlock

import "context"

// placed is some of an unlock request's ids with their places in it.
type placed struct {
	ids []string
	idx []int
}

func (p *placed) add(id string, i int) { p.ids, p.idx = append(p.ids, id), append(p.idx, i) }

// place puts these ids' results (rs, in the same order) at their places
// in the request's results.
func (p placed) place(results, rs []Result) {
	for j, i := range p.idx {
		results[i] = rs[j]
	}
}

// idGroup is the ids of one unlock request that one owner claims (a
// connection of a property, a property of a portfolio).
type idGroup[K comparable] struct {
	owner K
	placed
}

// groupIDs groups ids by the owner that claims each, in order of first
// appearance; an id no owner claims goes to unclaimed. Owners are few (a
// property's connections, a token's properties): a linear search beats a
// map.
func groupIDs[K comparable](ids []string, owner func(string) (K, bool)) (groups []*idGroup[K], unclaimed placed) {
	for i, id := range ids {
		k, ok := owner(id)
		if !ok {
			unclaimed.add(id, i)
			continue
		}
		var g *idGroup[K]
		for _, h := range groups {
			if h.owner == k {
				g = h
				break
			}
		}
		if g == nil {
			g = &idGroup[K]{owner: k}
			groups = append(groups, g)
		}
		g.add(id, i)
	}
	return groups, unclaimed
}

// denyUnclaimed answers (and audits) ids that are none of the caller's as
// DENIED, without an upstream call: exactly as an id that exists nowhere.
// They are audited at property.
func (e *Engine) denyUnclaimed(ctx context.Context, email, property string, p placed, results []Result) {
	if len(p.ids) == 0 {
		return
	}
	p.place(results, e.Unlock(ctx, Request{Email: email, EntryIDs: p.ids, Property: property, Targets: func(string) ([]Target, bool) { return nil, false }}))
}
