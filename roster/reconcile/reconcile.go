// Package reconcile compares a property's roster with the users of each of
// its access systems and says, per resident, whether their phone will
// open the doors and, when not, why: not in the access system (with the
// addresses there that look like theirs), no entries, suspended although
// current, still active after move-out, an overdue notice, an email shared
// by several people; and, for information, the access-system users the
// roster does not know (staff, vendors).
//
// It links each person to the access-system user whose email equals
// theirs in canonical form, one link per connection: the move-out policy
// acts only on those links. Near misses are never linked.
//
// Build is pure (tests give it users); Run reads the directories first.
package reconcile

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/roster"
)

// Category is what a report row says.
type Category string

// The categories, in the order a report lists them.
const (
	// NotInAccessSystem: a current, notice or future resident whom no
	// access system of the property knows by their email.
	NotInAccessSystem Category = "not_in_access_system"
	// SuspendedButCurrent: linked, suspended, yet a current resident.
	SuspendedButCurrent Category = "suspended_but_current"
	// NoEntries: linked and active, but with no door to open.
	NoEntries Category = "no_entries"
	// ActiveAfterMoveOut: linked and active after the move-out date (or
	// moved out).
	ActiveAfterMoveOut Category = "active_after_move_out"
	// OverdueNotice: still "notice" in the PMS past the move-out date:
	// the move-out has not been processed.
	OverdueNotice Category = "overdue_notice"
	// SharedEmail: the person's email is also another person's; they are
	// not linked until each has their own.
	SharedEmail Category = "shared_email"
	// Matched: linked, and the access system agrees with the roster.
	Matched Category = "matched"
	// NotInRoster: an access-system user no roster person has the email
	// of (staff, vendors, former residents never in the PMS): information.
	NotInRoster Category = "not_in_roster"
)

var categoryOrder = map[Category]int{
	NotInAccessSystem: 0, SuspendedButCurrent: 1, NoEntries: 2, ActiveAfterMoveOut: 3,
	OverdueNotice: 4, SharedEmail: 5, Matched: 6, NotInRoster: 7,
}

// Near-miss kinds: how an access-system email differs from the roster's.
const (
	KindCase    = "case"     // letters differ only in case (beyond ASCII)
	KindDots    = "dots"     // dots in the local part
	KindPlusTag = "plus_tag" // a +tag in the local part
	KindDotsTag = "dots_and_plus_tag"
	KindTypo    = "typo" // at most two letters added, removed or changed
)

// MaxTypoDistance is the largest edit distance a typo near miss has.
const MaxTypoDistance = 2

// Connection is one access system of the property, by its connection id
// (such as "harbor-view.kisi").
type Connection struct {
	Name      string
	Directory access.Directory
}

// Listing is one connection's users, as its Directory listed them.
type Listing struct {
	Connection string
	Users      []access.DirectoryUser
}

// Input is what a reconciliation compares.
type Input struct {
	Property string
	// Version is the roster version compared (recorded with the links).
	Version int
	// People are the roster's rows (rosterredis Current.People).
	People []roster.Person
	// Today is the date in the property's time zone (Today).
	Today roster.Date
}

// NearMiss is an access-system user whose email looks like the person's.
type NearMiss struct {
	Connection string `json:"connection"`
	UserID     string `json:"userId"`
	Email      string `json:"email"`
	Kind       string `json:"kind"`
}

// Row is one finding: a person (PersonKey) in one connection, or the
// roster alone (Connection ""), or an access-system user alone
// (NotInRoster).
type Row struct {
	Category   Category      `json:"category"`
	Connection string        `json:"connection,omitempty"`
	PersonKey  string        `json:"personKey,omitempty"`
	Name       string        `json:"name,omitempty"`
	Unit       string        `json:"unit,omitempty"`
	Email      string        `json:"email,omitempty"` // the roster's, as written
	Status     roster.Status `json:"status,omitempty"`
	MoveOut    roster.Date   `json:"moveOut,omitzero"`
	// UserID, AccessEmail and AccessStatus are the access-system user's.
	UserID       string        `json:"userId,omitempty"`
	AccessEmail  string        `json:"accessEmail,omitempty"`
	AccessStatus access.Status `json:"accessStatus,omitempty"`
	NearMisses   []NearMiss    `json:"nearMisses,omitempty"`
	// Detail says what is wrong and what to do, for the manager.
	Detail string `json:"detail"`
	// Line is the roster row's CSV line, 0 for a pull.
	Line int `json:"line,omitempty"`
}

// Totals count distinct people per category (access-system users for
// NotInRoster).
type Totals struct {
	People              int `json:"people"`
	Matched             int `json:"matched"`
	NotInAccessSystem   int `json:"notInAccessSystem"`
	WithNearMiss        int `json:"withNearMiss"`
	NoEntries           int `json:"noEntries"`
	SuspendedButCurrent int `json:"suspendedButCurrent"`
	ActiveAfterMoveOut  int `json:"activeAfterMoveOut"`
	OverdueNotice       int `json:"overdueNotice"`
	SharedEmail         int `json:"sharedEmail"`
	NotInRoster         int `json:"notInRoster"`
}

// Report is a reconciliation: totals first, then the rows, most urgent
// category first.
type Report struct {
	Property      string      `json:"property"`
	RosterVersion int         `json:"rosterVersion"`
	Today         roster.Date `json:"today"`
	GeneratedAt   time.Time   `json:"generatedAt"`
	Connections   []string    `json:"connections"`
	Totals        Totals      `json:"totals"`
	Rows          []Row       `json:"rows"`
	// Links are the person-to-user links found (stored with the roster).
	Links []roster.Link `json:"-"`
	// NearMissEmails are the canonical roster emails with a near miss
	// and no link (for the resident's hint), sorted.
	NearMissEmails []string `json:"-"`
	// MoveOutPlan, when the caller sets it, is what the property's
	// move-out policy would do as this reconciliation stands (a
	// roster/moveout dry run, which builds on this package), written
	// after the rows in JSON.
	MoveOutPlan any `json:"moveOutPlan,omitempty"`
}

// Today is the date it is now in the IANA time zone tz (UTC when tz is
// empty).
func Today(tz string, now time.Time) (roster.Date, error) {
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return roster.Date{}, fmt.Errorf("reconcile: time zone %q: %w", tz, err)
		}
		loc = l
	}
	return roster.DateOf(now.In(loc)), nil
}

// Run lists every connection's users, then Builds the report. A
// connection that cannot be listed fails the run: a report missing a
// system would call its residents absent.
func Run(ctx context.Context, in Input, conns []Connection) (*Report, error) {
	listings := make([]Listing, 0, len(conns))
	for _, c := range conns {
		users, err := c.Directory.ListUsers(ctx)
		if err != nil {
			return nil, fmt.Errorf("reconcile %s: list the users of %s: %w", in.Property, c.Name, err)
		}
		listings = append(listings, Listing{Connection: c.Name, Users: users})
	}
	return Build(in, listings), nil
}

// dirUser is an access-system user with the connection it is in.
type dirUser struct {
	conn   string
	u      access.DirectoryUser
	folded string // FoldEmail(u.Email)
	linked bool   // some person's exact email, or a shared email's
}

// Build compares in's roster with the listings.
func Build(in Input, listings []Listing) *Report {
	r := &Report{Property: in.Property, RosterVersion: in.Version, Today: in.Today, GeneratedAt: time.Now().UTC(), Rows: []Row{}}
	// byEmail indexes each connection's users by folded email.
	byEmail := make([]map[string][]*dirUser, len(listings))
	var all []*dirUser
	for i, l := range listings {
		r.Connections = append(r.Connections, l.Connection)
		byEmail[i] = map[string][]*dirUser{}
		for _, u := range l.Users {
			d := &dirUser{conn: l.Connection, u: u, folded: identity.FoldEmail(u.Email)}
			if d.folded == "" {
				continue
			}
			byEmail[i][d.folded] = append(byEmail[i][d.folded], d)
			all = append(all, d)
		}
	}
	people := byPerson(in.People)
	r.Totals.People = len(people)
	shared := map[string][]roster.Person{}
	for _, p := range people {
		shared[p.CanonicalEmail] = append(shared[p.CanonicalEmail], p)
	}
	// First pass: exact links, so that near misses are sought only among
	// the users no one is linked to.
	type found struct {
		conn int
		d    *dirUser
	}
	links := make([][]found, len(people))
	ambiguous := make([][]string, len(people))
	for pi, p := range people {
		for i := range listings {
			ds := byEmail[i][p.CanonicalEmail]
			for _, d := range ds {
				d.linked = true
			}
			switch {
			case len(ds) == 1 && len(shared[p.CanonicalEmail]) == 1:
				links[pi] = append(links[pi], found{i, ds[0]})
			case len(ds) > 1:
				ambiguous[pi] = append(ambiguous[pi], listings[i].Connection)
			}
		}
	}
	var loose []*dirUser
	for _, d := range all {
		if !d.linked {
			loose = append(loose, d)
		}
	}
	near := newNearIndex(loose)
	counted := map[Category]map[string]bool{}
	add := func(row Row) {
		r.Rows = append(r.Rows, row)
		key := row.PersonKey
		if row.Category == NotInRoster {
			key = row.Connection + "/" + row.UserID
		}
		if counted[row.Category] == nil {
			counted[row.Category] = map[string]bool{}
		}
		counted[row.Category][key] = true
	}
	nearMissEmails := map[string]bool{}
	nearOf := map[string][]string{} // connection/user id -> the names it is a near miss of
	for pi, p := range people {
		base := Row{PersonKey: p.PersonKey(), Name: p.Name(), Unit: p.Unit, Email: p.Email, Status: p.Status, MoveOut: p.MoveOut, Line: p.Line}
		movedOut := p.Status == roster.StatusPast || (!p.MoveOut.IsZero() && p.MoveOut.Before(in.Today))
		wants := (p.Status == roster.StatusCurrent || p.Status == roster.StatusNotice) && !movedOut
		if p.Status == roster.StatusNotice && !p.MoveOut.IsZero() && p.MoveOut.Before(in.Today) {
			row := base
			row.Category = OverdueNotice
			row.Detail = fmt.Sprintf("still on notice in the PMS after the move-out date %s: process the move-out, or change the date if they stay", p.MoveOut)
			add(row)
		}
		if others := shared[p.CanonicalEmail]; len(others) > 1 {
			var names []string
			for _, o := range others {
				if o.PersonKey() != p.PersonKey() {
					names = append(names, nameOr(o))
				}
			}
			row := base
			row.Category = SharedEmail
			row.Detail = fmt.Sprintf("%s is also the email of %s: not linked to any access-system user until each person has their own email in the PMS", p.CanonicalEmail, strings.Join(names, ", "))
			add(row)
			continue
		}
		for _, f := range links[pi] {
			d := f.d
			r.Links = append(r.Links, roster.Link{PersonKey: p.PersonKey(), Connection: d.conn, UserID: d.u.ID, Email: d.u.Email})
			row := base
			row.Connection, row.UserID, row.AccessEmail, row.AccessStatus = d.conn, d.u.ID, d.u.Email, d.u.Status
			active := d.u.Status == access.StatusActive
			switch {
			case movedOut && active:
				row.Category = ActiveAfterMoveOut
				row.Detail = "still active in the access system after moving out" + moveOutOn(p) + ": suspend them there"
			case wants && !active:
				row.Category = SuspendedButCurrent
				row.Detail = "a current resident, but suspended in the access system: reactivate them there, or check why they were suspended"
			case wants && !d.u.HasEntries:
				row.Category = NoEntries
				row.Detail = "in the access system but with no door: give them their unit's access group"
			default:
				row.Category = Matched
				if d.u.Email != p.Email {
					row.Detail = "matched; the two systems write the email differently but equal once letter case is ignored"
				}
			}
			add(row)
		}
		if len(links[pi]) > 0 || !(wants || p.Status == roster.StatusFuture) {
			continue
		}
		row := base
		row.Category = NotInAccessSystem
		row.NearMisses = near.find(p.CanonicalEmail)
		for _, n := range row.NearMisses {
			nearOf[n.Connection+"/"+n.UserID] = append(nearOf[n.Connection+"/"+n.UserID], nameOr(p))
		}
		switch {
		case len(ambiguous[pi]) > 0:
			row.Detail = "several users of " + strings.Join(ambiguous[pi], ", ") + " have this email: keep one"
		case len(row.NearMisses) > 0:
			row.Detail = "no access-system user has this email, but one looks the same: correct the email in the PMS or in the access system so that they are equal"
			nearMissEmails[p.CanonicalEmail] = true
		case p.Status == roster.StatusFuture:
			row.Detail = "moves in" + onDate(p.MoveIn) + " and is not in the access system yet: add them before the move-in"
		default:
			row.Detail = "no access-system user has this email: add them, with this email, to the access system"
		}
		add(row)
	}
	for _, d := range all {
		if d.linked {
			continue
		}
		detail := "in the access system, not in the roster (staff, vendor, or a resident under another email): for information"
		if names := nearOf[d.conn+"/"+d.u.ID]; len(names) > 0 {
			detail = "not in the roster as written; looks like the email of " + strings.Join(names, ", ") + " (see above)"
		}
		add(Row{Category: NotInRoster, Connection: d.conn, UserID: d.u.ID, AccessEmail: d.u.Email, AccessStatus: d.u.Status, Name: d.u.Name, Detail: detail})
	}
	sort.SliceStable(r.Rows, func(i, j int) bool {
		a, b := r.Rows[i], r.Rows[j]
		if a.Category != b.Category {
			return categoryOrder[a.Category] < categoryOrder[b.Category]
		}
		if a.Unit != b.Unit {
			return a.Unit < b.Unit
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Connection < b.Connection
	})
	t := &r.Totals
	t.Matched = len(counted[Matched])
	t.NotInAccessSystem = len(counted[NotInAccessSystem])
	t.WithNearMiss = len(nearMissEmails)
	t.NoEntries = len(counted[NoEntries])
	t.SuspendedButCurrent = len(counted[SuspendedButCurrent])
	t.ActiveAfterMoveOut = len(counted[ActiveAfterMoveOut])
	t.OverdueNotice = len(counted[OverdueNotice])
	t.SharedEmail = len(counted[SharedEmail])
	t.NotInRoster = len(counted[NotInRoster])
	for e := range nearMissEmails {
		r.NearMissEmails = append(r.NearMissEmails, e)
	}
	slices.Sort(r.NearMissEmails)
	return r
}

// byPerson is one row per person (the most permissive of a renewal's or
// transfer's rows), in PersonKey order.
func byPerson(rows []roster.Person) []roster.Person {
	m := roster.ByPerson(rows)
	out := make([]roster.Person, 0, len(m))
	for _, p := range m {
		if p.CanonicalEmail != "" {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PersonKey() < out[j].PersonKey() })
	return out
}

func nameOr(p roster.Person) string {
	if n := p.Name(); n != "" {
		return n
	}
	return p.PersonKey()
}

func moveOutOn(p roster.Person) string {
	if p.MoveOut.IsZero() {
		return ""
	}
	return " on " + p.MoveOut.String()
}

func onDate(d roster.Date) string {
	if d.IsZero() {
		return ""
	}
	return " on " + d.String()
}
