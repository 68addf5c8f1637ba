package sim

import (
	"bytes"
	"index/suffixarray"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/identity"
)

// directory is the organisation's state. Which users, entries and
// credential types exist never changes after New, so the maps and slices
// holding them are read without locking; what does change (a user's
// status, entries and credentials) is guarded by mu.
type directory struct {
	org       Org
	users     []*user            // seed order
	usersByID map[int]*user      //
	byEmail   map[string][]*user // by identity.FoldEmail
	emails    emailIndex

	entries     []*entry // ascending id
	entriesByID map[int]*entry

	credTypes     []CredentialType
	credTypesByID map[int]*CredentialType

	mu         sync.RWMutex
	nextCredID int // guarded by mu
}

type user struct {
	id         int
	identityID int // distinct from id, as on Openpath, so a client that confuses them fails
	email      string
	firstName  string
	lastName   string

	// Guarded by directory.mu.
	status   access.Status
	entryIDs []int // ascending
	creds    []*credential
}

type credential struct {
	id   int
	typ  *CredentialType
	name string
}

type entry struct {
	id   int
	name string
	json entryJSON // immutable, built once
}

// identityIDBase numbers identities 50001, 50002, ... in seed order.
const identityIDBase = 50000

func newDirectory(seed Seed) *directory {
	d := &directory{
		org:           seed.Org,
		usersByID:     make(map[int]*user, len(seed.Users)),
		byEmail:       make(map[string][]*user, len(seed.Users)),
		entriesByID:   make(map[int]*entry, len(seed.Entries)),
		credTypes:     slices.Clone(seed.CredentialTypes),
		credTypesByID: make(map[int]*CredentialType, len(seed.CredentialTypes)),
	}
	for i := range d.credTypes {
		d.credTypesByID[d.credTypes[i].ID] = &d.credTypes[i]
	}

	sites := map[string]*siteJSON{}
	zones := map[[2]string]*zoneJSON{}
	for _, e := range seed.Entries {
		site := sites[e.Site]
		if site == nil {
			site = &siteJSON{ID: len(sites) + 1, Name: e.Site}
			sites[e.Site] = site
		}
		zone := zones[[2]string{e.Site, e.Zone}]
		if zone == nil {
			zone = &zoneJSON{ID: len(zones) + 1, Name: e.Zone, Site: site}
			zones[[2]string{e.Site, e.Zone}] = zone
		}
		en := &entry{id: e.ID, name: e.Name, json: entryJSON{ID: e.ID, Name: e.Name, Zone: zone}}
		d.entries = append(d.entries, en)
		d.entriesByID[e.ID] = en
	}
	slices.SortFunc(d.entries, func(a, b *entry) int { return a.id - b.id })

	for i, su := range seed.Users {
		u := &user{
			id:         su.ID,
			identityID: identityIDBase + i + 1,
			email:      su.Email,
			firstName:  su.FirstName,
			lastName:   su.LastName,
			status:     su.Status,
			entryIDs:   slices.Compact(slices.Sorted(slices.Values(su.EntryIDs))),
		}
		if u.status == "" {
			u.status = access.StatusActive
		}
		for _, c := range su.Credentials {
			u.creds = append(u.creds, &credential{id: c.ID, typ: d.credTypesByID[c.CredentialTypeID], name: c.Name})
			d.nextCredID = max(d.nextCredID, c.ID)
		}
		d.users = append(d.users, u)
		d.usersByID[u.id] = u
		key := identity.FoldEmail(u.email)
		d.byEmail[key] = append(d.byEmail[key], u)
	}
	d.nextCredID++
	d.emails = newEmailIndex(d.users)
	return d
}

// emailIndex answers "which users' emails contain this substring,
// ignoring ASCII case" without scanning every email: a suffix array over
// all emails in identity.FoldEmail form, each preceded by a NUL, finds every occurrence in
// O(len(query)·log(total)). Openpath's filter behaves as a contains match,
// and at load-test sizes (10^5..10^6 users) a scan per lookup would
// dominate the simulator's cost.
type emailIndex struct {
	sa     *suffixarray.Index
	starts []int // starts[i] is the offset of user i's email in the indexed data
}

func newEmailIndex(users []*user) emailIndex {
	var buf bytes.Buffer
	starts := make([]int, len(users))
	for i, u := range users {
		buf.WriteByte(0)
		starts[i] = buf.Len()
		buf.WriteString(identity.FoldEmail(u.email))
	}
	return emailIndex{sa: suffixarray.New(buf.Bytes()), starts: starts}
}

// contains returns the indices (into directory.users, ascending) of the
// users whose email contains sub, ignoring ASCII case only (as
// identity.FoldEmail; a look-alike never matches an ASCII letter); never nil.
func (x emailIndex) contains(sub string) []int {
	if sub == "" {
		all := make([]int, len(x.starts))
		for i := range all {
			all[i] = i
		}
		return all
	}
	if strings.IndexByte(sub, 0) >= 0 {
		return []int{} // NUL separates emails; no email contains it
	}
	offsets := x.sa.Lookup([]byte(identity.FoldEmail(sub)), -1)
	found := make([]int, 0, len(offsets))
	for _, off := range offsets {
		// The user whose email starts at or before off.
		found = append(found, sort.SearchInts(x.starts, off+1)-1)
	}
	slices.Sort(found)
	return slices.Compact(found) // an email may contain sub more than once
}

// userByEmail returns the one user with this email, for the test helpers.
func (d *directory) userByEmail(email string) (*user, error) {
	switch us := d.byEmail[identity.FoldEmail(email)]; len(us) {
	case 0:
		return nil, errNoSuchUser(email)
	case 1:
		return us[0], nil
	default:
		return nil, errAmbiguousUser(email)
	}
}

// hasEntry reports whether entry id is assigned to u; mu must be held.
func (u *user) hasEntry(id int) bool {
	_, ok := slices.BinarySearch(u.entryIDs, id)
	return ok
}

// cloudKey reports whether credential id is one of u's cloud keys; mu must
// be held.
func (u *user) cloudKey(id int) bool {
	for _, c := range u.creds {
		if c.id == id {
			return c.typ.ModelName == cloudKeyModel
		}
	}
	return false
}

// cloudKeyModel is the modelName of the cloud-key credential type.
const cloudKeyModel = "cloudKey"
