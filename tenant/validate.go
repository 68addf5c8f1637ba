package tenant

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/cloudkey/cloudkey/internal/identity"
)

// checkAll checks every record, on all cores: phone numbers are parsed
// against libphonenumber's metadata (regular expressions), which is most of
// an import's time.
func checkAll(todo []pending, region string, known func(string) bool) {
	workers := min(runtime.GOMAXPROCS(0), (len(todo)+255)/256)
	if workers <= 1 {
		for i := range todo {
			todo[i].check(region, known)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (len(todo) + workers - 1) / workers
	for part := range slices.Chunk(todo, chunk) {
		wg.Go(func() {
			for i := range part {
				part[i].check(region, known)
			}
		})
	}
	wg.Wait()
}

// check fills t.ok, or t.bad with the first thing wrong. The email is
// checked first so that it is known even when the rest is bad, for
// duplicate detection and RemoveMissing. known reports whether a building
// in the Buildings column is one of the property's (nil: any well-formed
// id is).
func (t *pending) check(region string, known func(string) bool) {
	for _, f := range t.raw {
		if !utf8.ValidString(f) {
			t.bad = "not UTF-8 text: save the file as CSV UTF-8"
			return
		}
	}
	email, err := identity.CanonicalEmail(t.raw[colEmail])
	if err != nil {
		t.bad = err.Error()
		return
	}
	t.ok = entry{line: t.line, email: email}
	if t.ok.name, t.bad = checkName(t.raw[colName]); t.bad != "" {
		return
	}
	if strings.TrimSpace(t.raw[colPhone]) != "" {
		if t.ok.phone, t.ok.warning, t.bad = normalizePhone(t.raw[colPhone], region); t.bad != "" {
			return
		}
	}
	t.ok.buildings, t.bad = checkBuildings(t.raw[colBuildings], known)
}

// checkBuildings splits a Buildings field (ids separated by ";", "|", ","
// or spaces; building ids have none of them) into its distinct ids, or
// says which one is not a building of the property.
func checkBuildings(raw string, known func(string) bool) (ids []string, bad string) {
	for _, b := range strings.FieldsFunc(raw, func(r rune) bool { return r == ';' || r == '|' || r == ',' || unicode.IsSpace(r) }) {
		id, err := checkBuilding(b)
		switch {
		case err != nil:
			return nil, fmt.Sprintf("building %q is not a building id", b)
		case known != nil && !known(id):
			return nil, fmt.Sprintf("building %q is not one of the property's buildings (set it up with SetBuilding first)", id)
		case !slices.Contains(ids, id):
			ids = append(ids, id)
		}
	}
	return ids, ""
}

// checkName returns name with its whitespace collapsed, or why it is bad.
func checkName(raw string) (name, bad string) {
	name = strings.Join(strings.Fields(raw), " ")
	switch {
	case name == "":
		return "", "full name is empty"
	case utf8.RuneCountInString(name) > MaxNameLen:
		return "", fmt.Sprintf("full name is longer than %d characters", MaxNameLen)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", fmt.Sprintf("full name %q has control characters", name)
	}
	return name, ""
}
