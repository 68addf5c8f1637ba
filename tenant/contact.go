package tenant

import (
	"errors"
	"time"
)

// Errors, for the transport to map to status codes. Every error a Store
// returns for a caller's mistake wraps one of them; anything else is a
// Redis failure (gRPC Unavailable or Internal).
var (
	// ErrInvalidArgument: a malformed organisation, email, building, region,
	// cursor or limit (gRPC InvalidArgument).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrInvalidCSV: the file as a whole is refused (empty, no contact rows,
	// a missing or repeated column, not UTF-8 text, too large); nothing was
	// written (gRPC InvalidArgument, with the message).
	ErrInvalidCSV = errors.New("invalid CSV")
	// ErrTooLarge: the file is over MaxFileBytes or MaxRows. An error that
	// wraps it wraps ErrInvalidCSV too (gRPC InvalidArgument; the message
	// says which limit).
	ErrTooLarge = errors.New("CSV too large")
	// ErrBadRows: some records are bad and nothing was written, either
	// because the import is all or nothing or because no record was good.
	// The ImportReport returned with it lists them (gRPC InvalidArgument,
	// with the report).
	ErrBadRows = errors.New("bad rows in CSV")
	// ErrNotFound: no such contact in the organisation (gRPC NotFound).
	ErrNotFound = errors.New("contact not found")
	// ErrConflict: the organisation's contacts kept changing under an
	// import; nothing was written and trying again is safe (gRPC Aborted).
	ErrConflict = errors.New("contacts changed concurrently; try again")
)

// Contact is a tenant contact of one organisation.
type Contact struct {
	Org   string // access-system organisation id
	Email string // canonical (identity.CanonicalEmail); the contact's key
	Name  string // full name, whitespace collapsed
	Phone string // E.164 ("+14155550123"), or empty when none was given
	// CreatedAt is when an import first added the contact; UpdatedAt when
	// an import last changed its name or phone.
	CreatedAt time.Time
	UpdatedAt time.Time
	// Buildings the contact has the visitor-registration tile for, sorted.
	// Filled by Get and List; not part of what an import compares.
	Buildings []string
}

// ImportOptions choose how an import treats bad records and contacts the
// file does not list.
type ImportOptions struct {
	// GoodRowsOnly writes the good records even when some are bad; by
	// default one bad record means nothing is written.
	GoodRowsOnly bool
	// RemoveMissing deletes the organisation's contacts (and their grants)
	// that the file does not list.
	RemoveMissing bool
	// Region is the ISO 3166-1 country code a phone number without a
	// leading "+" is read in. Default DefaultRegion.
	Region string
	// KnownBuilding reports whether a building id in the file's optional
	// Buildings column is one of the property's; a record naming another
	// is bad (so by default nothing is imported). nil accepts any
	// well-formed id.
	KnownBuilding func(building string) bool
}

// BadRow is a record that was not imported.
type BadRow struct {
	Line   int    // physical line in the file where the record starts; the header is line 1
	Reason string // for a person: what is wrong and with which value
}

// ImportReport says what an import did, or would have done: with
// ErrBadRows it lists why nothing was written.
type ImportReport struct {
	Rows      int // data records read, blank ones not counted
	Created   int
	Updated   int
	Unchanged int
	Removed   int
	// Granted counts the tile grants the Buildings column asked for,
	// written with the contacts (granting again is harmless).
	Granted int
	// BadRows lists at most MaxBadRowsListed bad records, in file order;
	// BadRowCount counts them all.
	BadRows     []BadRow
	BadRowCount int
	// Warnings are things that did not stop the import but that the
	// property manager may want to know (ignored columns, blank records,
	// "line N: ..." for a record kept with a possible-only phone number).
	Warnings []string
}
