// Package tenant keeps a building's tenant contacts, the people a property
// manager lets register visitors from the tenant app's visitor-registration
// tile, and which buildings each contact has that tile for. Contacts arrive
// by CSV, the same three-column file the property manager gives Envoy
// (full name, email, phone); grants are made one by one. Every call is
// scoped (the org argument): a contact of one scope is invisible to every
// other. A property's scope is PropertyScope's: the default property keeps
// its access-system organisation's (the keys written before properties),
// every other property has one of its own.
//
// It also keeps the property manager's building setup (Buildings): which
// organisation a building belongs to and which Envoy location its visitor
// events come from, so the tile can serve a building by its own id.
//
// Contacts and buildings are kept behind the ContactStore and
// BuildingStore interfaces; their Redis implementations are in
// tenant/tenantredis, built by internal/setup. This
// package must not import server/, gen/ or grpc, and new storage goes
// behind an interface here with its Redis code in tenantredis.
//
// # CSV import
//
// The first record is the header. Columns are found by name, compared
// case-insensitively with punctuation and spacing ignored and an optional
// "Tenant Contact" prefix dropped, so Envoy's "Tenant Contact Full Name"
// works as well as "Full Name" or "Name" (see the synonyms in csv.go). All
// three columns are required, in any order; a missing one refuses the file
// naming it. Any other column is ignored with a warning, so a file exported
// with extra columns (company, floor) still imports.
//
// Each data record is checked on its own and, when bad, listed by line
// number and reason:
//   - line numbers are the physical lines of the file, the header being
//     line 1; a record whose quoted field spans several lines is reported
//     at the line where it starts;
//   - a record with more or fewer fields than the header is bad;
//   - the name is trimmed, its inner whitespace (including newlines in a
//     quoted field) collapsed to single spaces, and must be non-empty and at
//     most MaxNameLen characters;
//   - the email is canonicalised by identity.CanonicalEmail (the form the
//     app's tokens carry), so "Ada@Example.com " and "ada@example.com" are
//     the same contact; a second record with the same email is bad and
//     names the line of the first;
//   - the phone may be empty (many contacts have none and the tile does not
//     need one); when present it is stored in E.164 (see NormalizePhone).
//     A number that is possible but not valid (the HqO seed's own
//     "(555) 555-5555") is kept with a warning "line N: ..." in the
//     report; one that is not even possible makes the record bad;
//   - the optional Buildings column (also "Building", "Visitor
//     Registration", "Grant Tile", "Tile") lists building ids separated by
//     ";", "|", "," or spaces: the contact gets the visitor-registration
//     tile for each, written in the same transaction as the contacts
//     (ImportReport.Granted counts them; grants are only added). A building
//     ImportOptions.KnownBuilding does not know makes the record bad,
//     naming it;
//   - a record whose fields are all blank (a spreadsheet's trailing ",,")
//     is skipped with a warning rather than reported.
//
// By default an import is all or nothing: one bad record and nothing is
// written (ErrBadRows). ImportOptions.GoodRowsOnly writes the good records
// and still reports the bad ones. Re-importing the same file changes
// nothing and reports every contact unchanged. ImportOptions.RemoveMissing
// deletes the organisation's contacts, and their grants, that the file does
// not list; a contact whose email appears on a bad record is kept, since
// the property manager did list it.
//
// A file that is empty or has only the header is refused (ErrInvalidCSV)
// rather than read as "no contacts", so that a truncated export cannot
// empty an organisation through RemoveMissing.
//
// Limits: MaxFileBytes and MaxRows refuse a file before anything is
// written; at most MaxBadRowsListed bad records are listed (all are
// counted).
//
// # Storage and what is guaranteed
//
// This is how tenantredis.Contacts keeps contacts; another ContactStore
// must give the same guarantees. Keys live under the store's prefix, with
// the organisation as a Redis Cluster hash tag so that one organisation's
// keys share a slot and can be changed in one transaction:
//
//	{prefix}tenant:{ORG}:contacts         hash  email → contact JSON
//	{prefix}tenant:{ORG}:index            zset  emails, score 0 (ordered listing)
//	{prefix}tenant:{ORG}:grants:EMAIL     set   building ids
//
// An import reads the contacts hash under WATCH, works out what to create,
// update and remove, and writes all of it in one MULTI/EXEC. Redis applies
// a transaction whole or not at all: a connection or process failure before
// EXEC leaves the previous contacts untouched, and a concurrent change to
// the organisation's contacts makes EXEC fail, after which the import is
// worked out again on the new state (a few times, then ErrConflict). So an
// all-or-nothing import is never left half-written. Two caveats: Redis does
// not roll back a command that fails while EXEC runs, but the only such
// failure here would be a key of the wrong type, which nothing creates; and
// what survives a Redis crash after EXEC depends on Redis's persistence
// settings.
//
// Grant checks that the contact exists and adds the grant in one Lua
// script, and removing a contact deletes its grants in the same
// transaction, so a grant never outlives its contact. Granted, which the
// tile calls on every request, is one SISMEMBER.
package tenant
