package roster

import (
	"slices"
	"sort"
	"strings"
)

// Diff is what changed from one version of a roster to the next.
type Diff struct {
	Added   []Person `json:"added,omitempty"`
	Removed []Person `json:"removed,omitempty"`
	Changed []Change `json:"changed,omitempty"`
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool { return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0 }

// Change is one row present in both versions with different fields.
type Change struct {
	Key    string        `json:"key"`
	Name   string        `json:"name"`
	Fields []FieldChange `json:"fields"`
}

// FieldChange is one field's old and new value, as text.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Has reports whether the change includes field.
func (c Change) Has(field string) bool {
	return slices.ContainsFunc(c.Fields, func(f FieldChange) bool { return f.Field == field })
}

// Compare lists what changed from old to new, rows matched by Key.
// Provenance (line numbers, source timestamps) is not a change.
func Compare(old, new []Person) Diff {
	var d Diff
	before := make(map[string]Person, len(old))
	for _, p := range old {
		before[p.Key()] = p
	}
	seen := make(map[string]bool, len(new))
	for _, p := range new {
		k := p.Key()
		seen[k] = true
		q, ok := before[k]
		if !ok {
			d.Added = append(d.Added, p)
			continue
		}
		if fields := fieldChanges(q, p); len(fields) > 0 {
			d.Changed = append(d.Changed, Change{Key: k, Name: p.Name(), Fields: fields})
		}
	}
	for _, p := range old {
		if !seen[p.Key()] {
			d.Removed = append(d.Removed, p)
		}
	}
	sort.Slice(d.Added, func(i, j int) bool { return d.Added[i].Key() < d.Added[j].Key() })
	sort.Slice(d.Removed, func(i, j int) bool { return d.Removed[i].Key() < d.Removed[j].Key() })
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].Key < d.Changed[j].Key })
	return d
}

// fieldChanges lists the fields that differ, by their JSON names.
func fieldChanges(a, b Person) []FieldChange {
	var out []FieldChange
	add := func(name, x, y string) {
		if x != y {
			out = append(out, FieldChange{Field: name, Old: x, New: y})
		}
	}
	flag := func(v bool) string {
		if v {
			return "true"
		}
		return "false"
	}
	add("email", a.Email, b.Email)
	add("otherEmails", strings.Join(a.OtherEmails, " "), strings.Join(b.OtherEmails, " "))
	add("firstName", a.FirstName, b.FirstName)
	add("lastName", a.LastName, b.LastName)
	add("phone", a.Phone, b.Phone)
	add("propertyId", a.PropertyID, b.PropertyID)
	add("unit", a.Unit, b.Unit)
	add("role", string(a.Role), string(b.Role))
	add("status", string(a.Status), string(b.Status))
	add("sourceStatus", a.SourceStatus, b.SourceStatus)
	add("eviction", flag(a.Eviction), flag(b.Eviction))
	add("monthToMonth", flag(a.MonthToMonth), flag(b.MonthToMonth))
	add("leaseStart", a.LeaseStart.String(), b.LeaseStart.String())
	add("leaseEnd", a.LeaseEnd.String(), b.LeaseEnd.String())
	add("moveIn", a.MoveIn.String(), b.MoveIn.String())
	add("moveOut", a.MoveOut.String(), b.MoveOut.String())
	add("moveOutIsActual", flag(a.MoveOutIsActual), flag(b.MoveOutIsActual))
	add("noticeDate", a.NoticeDate.String(), b.NoticeDate.String())
	return out
}
