package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/roster"
)

var today = roster.Date{Year: 2026, Month: 12, Day: 2}

func person(t *testing.T, id, unit, email string, st roster.Status, moveOut roster.Date) roster.Person {
	t.Helper()
	p := roster.Person{Source: roster.SourceCSV, PersonID: id, Unit: unit, FirstName: "P" + id, Status: st, MoveOut: moveOut}
	if err := p.SetEmail(email); err != nil {
		t.Fatal(err)
	}
	return p
}

func user(id, email string, st access.Status, entries bool) access.DirectoryUser {
	return access.DirectoryUser{ID: id, Email: email, Name: "U" + id, Status: st, HasEntries: entries}
}

const (
	op = "p.openpath"
	ks = "p.kisi"
)

// summary is a row in a comparable form: category, person or user, connection, near misses.
func summary(r Row) string {
	who := r.PersonKey
	if who == "" {
		who = "user:" + r.UserID
	}
	s := string(r.Category) + " " + who
	if r.Connection != "" {
		s += " @" + r.Connection
	}
	for _, n := range r.NearMisses {
		s += fmt.Sprintf(" ~%s:%s(%s)", n.Connection, n.Email, n.Kind)
	}
	return s
}

func TestBuild(t *testing.T) {
	past := roster.Date{Year: 2026, Month: 11, Day: 30}
	later := roster.Date{Year: 2027, Month: 1, Day: 31}
	tests := []struct {
		name     string
		people   func(t *testing.T) []roster.Person
		listings []Listing
		want     []string
		links    []string // personKey>connection:userID
		hints    []string
	}{
		{
			name: "matched in one system is enough",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{person(t, "1", "1A", "a@x.com", roster.StatusCurrent, roster.Date{})}
			},
			listings: []Listing{{op, []access.DirectoryUser{user("10", "A@X.com", access.StatusActive, true)}}, {ks, nil}},
			want:     []string{"matched id:1 @p.openpath"},
			links:    []string{"id:1>p.openpath:10"},
		},
		{
			name: "near misses of every kind, never linked",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{
					person(t, "1", "1A", "gi.na@x.com", roster.StatusCurrent, roster.Date{}),
					person(t, "2", "1B", "bob+home@x.com", roster.StatusCurrent, roster.Date{}),
					person(t, "3", "1C", "caroline@x.com", roster.StatusNotice, later),
					person(t, "4", "1D", "d.an+x@x.com", roster.StatusCurrent, roster.Date{}),
					person(t, "5", "1E", "zoë@x.com", roster.StatusCurrent, roster.Date{}),
					person(t, "6", "1F", "nobody@x.com", roster.StatusCurrent, roster.Date{}),
				}
			},
			listings: []Listing{
				{op, []access.DirectoryUser{user("11", "gina@x.com", access.StatusActive, true), user("12", "bob@x.com", access.StatusActive, true)}},
				{ks, []access.DirectoryUser{user("13", "karoline@x.co", access.StatusActive, true), user("14", "dan@x.com", access.StatusActive, true), user("15", "ZOË@x.com", access.StatusActive, true)}},
			},
			want: []string{
				"not_in_access_system id:1 ~p.openpath:gina@x.com(dots)",
				"not_in_access_system id:2 ~p.openpath:bob@x.com(plus_tag)",
				"not_in_access_system id:3 ~p.kisi:karoline@x.co(typo)",
				"not_in_access_system id:4 ~p.kisi:dan@x.com(dots_and_plus_tag)",
				"not_in_access_system id:5 ~p.kisi:ZOË@x.com(case)",
				"not_in_access_system id:6",
				"not_in_roster user:11 @p.openpath",
				"not_in_roster user:12 @p.openpath",
				"not_in_roster user:13 @p.kisi",
				"not_in_roster user:14 @p.kisi",
				"not_in_roster user:15 @p.kisi",
			},
			hints: []string{"bob+home@x.com", "caroline@x.com", "d.an+x@x.com", "gi.na@x.com", "zoë@x.com"},
		},
		{
			name: "a swap of two letters is one typo",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{person(t, "1", "1A", "j@gmail.com", roster.StatusCurrent, roster.Date{})}
			},
			listings: []Listing{{op, []access.DirectoryUser{user("11", "j@gmial.com", access.StatusActive, true)}}},
			want:     []string{"not_in_access_system id:1 ~p.openpath:j@gmial.com(typo)", "not_in_roster user:11 @p.openpath"},
			hints:    []string{"j@gmail.com"},
		},
		{
			name: "short names two letters apart are two people",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{person(t, "1", "1A", "dana@x.com", roster.StatusFuture, roster.Date{})}
			},
			listings: []Listing{{op, []access.DirectoryUser{user("11", "gina@x.com", access.StatusActive, true)}}},
			want:     []string{"not_in_access_system id:1", "not_in_roster user:11 @p.openpath"},
		},
		{
			name: "a typo of three is not a near miss",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{person(t, "1", "1A", "carol@x.com", roster.StatusCurrent, roster.Date{})}
			},
			listings: []Listing{{op, []access.DirectoryUser{user("11", "karl@x.co", access.StatusActive, true)}}},
			want:     []string{"not_in_access_system id:1", "not_in_roster user:11 @p.openpath"},
		},
		{
			name: "a user linked to someone is not another's near miss",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{
					person(t, "1", "1A", "jon@x.com", roster.StatusCurrent, roster.Date{}),
					person(t, "2", "1B", "jan@x.com", roster.StatusCurrent, roster.Date{}),
				}
			},
			listings: []Listing{{op, []access.DirectoryUser{user("11", "jon@x.com", access.StatusActive, true)}}},
			want:     []string{"not_in_access_system id:2", "matched id:1 @p.openpath"},
			links:    []string{"id:1>p.openpath:11"},
		},
		{
			name: "status against the access system",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{
					person(t, "1", "1A", "noentries@x.com", roster.StatusCurrent, roster.Date{}),
					person(t, "2", "1B", "suspended@x.com", roster.StatusCurrent, roster.Date{}),
					person(t, "3", "1C", "gone@x.com", roster.StatusPast, past),
					person(t, "4", "1D", "overdue@x.com", roster.StatusNotice, past),
					person(t, "5", "1E", "gonequiet@x.com", roster.StatusPast, past),
					person(t, "6", "1F", "future@x.com", roster.StatusFuture, roster.Date{}),
					person(t, "7", "1G", "leaving@x.com", roster.StatusNotice, today),
				}
			},
			listings: []Listing{{op, []access.DirectoryUser{
				user("11", "noentries@x.com", access.StatusActive, false),
				user("12", "suspended@x.com", access.StatusSuspended, false),
				user("13", "gone@x.com", access.StatusActive, true),
				user("14", "overdue@x.com", access.StatusActive, true),
				user("15", "gonequiet@x.com", access.StatusSuspended, false),
				user("17", "leaving@x.com", access.StatusActive, true),
			}}},
			want: []string{
				"not_in_access_system id:6",
				"suspended_but_current id:2 @p.openpath",
				"no_entries id:1 @p.openpath",
				"active_after_move_out id:3 @p.openpath",
				"active_after_move_out id:4 @p.openpath",
				"overdue_notice id:4",
				"matched id:5 @p.openpath",
				"matched id:7 @p.openpath",
			},
			links: []string{"id:1>p.openpath:11", "id:2>p.openpath:12", "id:3>p.openpath:13", "id:4>p.openpath:14", "id:5>p.openpath:15", "id:7>p.openpath:17"},
		},
		{
			name: "a shared email is never linked",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{
					person(t, "1", "2A", "parks@x.com", roster.StatusCurrent, roster.Date{}),
					person(t, "2", "2A", "Parks@x.com", roster.StatusCurrent, roster.Date{}),
				}
			},
			listings: []Listing{{op, []access.DirectoryUser{user("11", "parks@x.com", access.StatusActive, true)}}},
			want:     []string{"shared_email id:1", "shared_email id:2"},
		},
		{
			name: "two users with one email are not linked",
			people: func(t *testing.T) []roster.Person {
				return []roster.Person{person(t, "1", "1A", "a@x.com", roster.StatusCurrent, roster.Date{})}
			},
			listings: []Listing{{op, []access.DirectoryUser{user("10", "a@x.com", access.StatusActive, true), user("11", "A@x.com", access.StatusActive, true)}}},
			want:     []string{"not_in_access_system id:1"},
		},
		{
			name: "a renewal is one person, the more permissive row",
			people: func(t *testing.T) []roster.Person {
				old := person(t, "1", "1A", "a@x.com", roster.StatusPast, past)
				old.HouseholdID = "L1"
				renewed := person(t, "1", "1A", "a@x.com", roster.StatusCurrent, roster.Date{})
				renewed.HouseholdID = "L2"
				return []roster.Person{old, renewed}
			},
			listings: []Listing{{op, []access.DirectoryUser{user("10", "a@x.com", access.StatusActive, true)}}},
			want:     []string{"matched id:1 @p.openpath"},
			links:    []string{"id:1>p.openpath:10"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(Input{Property: "p", Version: 3, People: tt.people(t), Today: today}, tt.listings)
			var got []string
			for _, row := range r.Rows {
				got = append(got, summary(row))
				if row.Detail == "" && row.Category != Matched {
					t.Errorf("row %s has no detail", summary(row))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			var links []string
			for _, l := range r.Links {
				links = append(links, l.PersonKey+">"+l.Connection+":"+l.UserID)
			}
			slices.Sort(links)
			if !slices.Equal(links, tt.links) {
				t.Errorf("links = %v, want %v", links, tt.links)
			}
			if !slices.Equal(r.NearMissEmails, tt.hints) {
				t.Errorf("near-miss emails = %v, want %v", r.NearMissEmails, tt.hints)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"abc", "abc", 0},
		{"abc", "abd", 1},
		{"abc", "ab", 1},
		{"carol@x.com", "karol@x.co", 2},
		{"carol@x.com", "karl@x.co", 3},
		{"gmail", "gmial", 1},
		{"ab", "ba", 1},
		{"abcd", "badc", 2},
		{"abcdef", "ab", 3},
		{"", "ab", 2},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b, MaxTypoDistance); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
