package roster

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Roster is a property's roster: one row per Key (a person on a lease),
// sorted by Key, with the emails two or more people share and the issues
// met while assembling it.
type Roster struct {
	People []Person      `json:"people"`
	Shared []SharedEmail `json:"sharedEmails,omitempty"`
	Issues []Issue       `json:"issues,omitempty"`
}

// SharedEmail is one canonical email that distinct people (distinct
// PersonKeys) carry. They are never merged: the manager decides who the
// door user is.
type SharedEmail struct {
	Email string   `json:"email"`
	Keys  []string `json:"keys"` // PersonKeys, sorted
	Names []string `json:"names"`
}

// Assemble makes a Roster of rows from one import or pull. Two rows with
// the same Key keep the more permissive (the other is reported as a
// duplicate); people sharing an email are reported, each kept.
func Assemble(rows []Person) Roster {
	var r Roster
	byKey := map[string]int{}
	for _, p := range rows {
		k := p.Key()
		i, dup := byKey[k]
		if !dup {
			byKey[k] = len(r.People)
			r.People = append(r.People, p)
			continue
		}
		kept, dropped := r.People[i], p
		if p.MorePermissive(kept) {
			kept, dropped = p, kept
			r.People[i] = p
		}
		r.Issues = append(r.Issues, Issue{
			Line: dropped.Line, Kind: IssueDuplicate, Skipped: true, Key: k,
			Reason: fmt.Sprintf("%s is listed twice (%s); the %s row%s is kept", describe(dropped), k, kept.Status, lineOf(kept)),
		})
	}
	sort.Slice(r.People, func(i, j int) bool { return r.People[i].Key() < r.People[j].Key() })
	r.Shared = SharedEmails(r.People)
	for _, s := range r.Shared {
		r.Issues = append(r.Issues, Issue{
			Kind: IssueSharedEmail, Key: strings.Join(s.Keys, " "),
			Reason: fmt.Sprintf("%s is the email of %d people (%s): they are not merged; give each their own email in the PMS", s.Email, len(s.Keys), strings.Join(s.Names, ", ")),
		})
	}
	return r
}

// SharedEmails lists the canonical emails of two or more distinct people,
// sorted by email.
func SharedEmails(people []Person) []SharedEmail {
	byEmail := map[string]map[string]string{} // email -> PersonKey -> name
	for _, p := range people {
		if p.CanonicalEmail == "" {
			continue
		}
		m := byEmail[p.CanonicalEmail]
		if m == nil {
			m = map[string]string{}
			byEmail[p.CanonicalEmail] = m
		}
		m[p.PersonKey()] = p.Name()
	}
	var out []SharedEmail
	for e, m := range byEmail {
		if len(m) < 2 {
			continue
		}
		s := SharedEmail{Email: e}
		for k := range m {
			s.Keys = append(s.Keys, k)
		}
		slices.Sort(s.Keys)
		for _, k := range s.Keys {
			s.Names = append(s.Names, m[k])
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out
}

// ByPerson returns one row per person (PersonKey): the most permissive of
// their rows, as the access rule wants for renewals and transfers.
func ByPerson(rows []Person) map[string]Person {
	out := make(map[string]Person, len(rows))
	for _, p := range rows {
		k := p.PersonKey()
		if q, ok := out[k]; !ok || p.MorePermissive(q) {
			out[k] = p
		}
	}
	return out
}

// Merge applies an incremental pull to a roster: rows of changed replace
// the rows of base with the same Key, new ones are added, and the rest of
// base is kept (a row missing from a pull is not a move-out). The result
// is sorted by Key.
func Merge(base, changed []Person) []Person {
	byKey := make(map[string]int, len(base))
	out := slices.Clone(base)
	for i, p := range out {
		byKey[p.Key()] = i
	}
	for _, p := range changed {
		if i, ok := byKey[p.Key()]; ok {
			out[i] = p
			continue
		}
		byKey[p.Key()] = len(out)
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

func describe(p Person) string {
	if n := p.Name(); n != "" {
		return n
	}
	return p.Email
}

func lineOf(p Person) string {
	if p.Line == 0 {
		return ""
	}
	return fmt.Sprintf(" (line %d)", p.Line)
}
