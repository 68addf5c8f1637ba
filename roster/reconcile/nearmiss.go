package reconcile

import (
	"sort"
	"strings"
)

// nearIndex finds the access-system users whose email looks like a
// roster email: equal once Unicode case, dots or a +tag of the local part
// are ignored (a map look-up), or within MaxTypoDistance edits (a scan of
// the users whose email length is close: only users nobody is linked to
// are indexed, so the scan is over staff and mismatches, not the whole
// directory).
type nearIndex struct {
	byLoose map[string][]*dirUser
	byLen   map[int][]*dirUser
}

func newNearIndex(users []*dirUser) *nearIndex {
	n := &nearIndex{byLoose: map[string][]*dirUser{}, byLen: map[int][]*dirUser{}}
	for _, d := range users {
		k := looseKey(d.folded)
		n.byLoose[k] = append(n.byLoose[k], d)
		n.byLen[len(d.folded)] = append(n.byLen[len(d.folded)], d)
	}
	return n
}

// find returns the near misses of the canonical email e, sorted by
// connection and email.
func (n *nearIndex) find(e string) []NearMiss {
	var out []NearMiss
	seen := map[*dirUser]bool{}
	for _, d := range n.byLoose[looseKey(e)] {
		if d.folded == e {
			continue
		}
		seen[d] = true
		out = append(out, NearMiss{Connection: d.conn, UserID: d.u.ID, Email: d.u.Email, Kind: kindOf(e, d.folded)})
	}
	for l := len(e) - MaxTypoDistance; l <= len(e)+MaxTypoDistance; l++ {
		for _, d := range n.byLen[l] {
			if seen[d] || d.folded == e || distance(e, d.folded, MaxTypoDistance) > typoLimit(e, d.folded) {
				continue
			}
			seen[d] = true
			out = append(out, NearMiss{Connection: d.conn, UserID: d.u.ID, Email: d.u.Email, Kind: KindTypo})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Connection != out[j].Connection {
			return out[i].Connection < out[j].Connection
		}
		return out[i].Email < out[j].Email
	})
	return out
}

// typoLimit is how many edits a typo near miss of a and b may have: one
// when either local part is shorter than 6 bytes (dana and gina are two
// people, not a typo), else MaxTypoDistance.
func typoLimit(a, b string) int {
	la, _ := split(a)
	lb, _ := split(b)
	if min(len(la), len(lb)) < 6 {
		return 1
	}
	return MaxTypoDistance
}

// kindOf says how b differs from a, which have the same looseKey.
func kindOf(a, b string) string {
	switch {
	case strings.ToLower(a) == strings.ToLower(b):
		return KindCase
	case stripTag(a) == stripTag(b):
		return KindPlusTag
	case stripDots(a) == stripDots(b):
		return KindDots
	}
	return KindDotsTag
}

// looseKey is e in Unicode lower case without the +tag and the dots of
// its local part.
func looseKey(e string) string { return stripDots(stripTag(strings.ToLower(e))) }

func split(e string) (local, domain string) {
	i := strings.LastIndexByte(e, '@')
	if i < 0 {
		return e, ""
	}
	return e[:i], e[i:]
}

func stripTag(e string) string {
	local, domain := split(e)
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	return local + domain
}

func stripDots(e string) string {
	local, domain := split(e)
	return strings.ReplaceAll(local, ".", "") + domain
}

// distance is the optimal-string-alignment distance of a and b in bytes
// (Levenshtein with a swap of two neighbours counted as one edit: gmial),
// or limit+1 as soon as it is known to exceed limit (the band of width
// 2*limit+1 around the diagonal is all that is computed).
func distance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(b)+1) // the row before prev, for swaps
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		lo, hi := i-limit, i+limit
		cur[0] = i
		rowMin := i
		for j := 1; j <= len(b); j++ {
			if j < lo || j > hi {
				cur[j] = limit + 1
				continue
			}
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := prev[j-1] + cost
			if prev[j]+1 < v {
				v = prev[j] + 1
			}
			if cur[j-1]+1 < v {
				v = cur[j-1] + 1
			}
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] && prev2[j-2]+1 < v {
				v = prev2[j-2] + 1
			}
			cur[j] = v
			if v < rowMin {
				rowMin = v
			}
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	if prev[len(b)] > limit {
		return limit + 1
	}
	return prev[len(b)]
}
