package tenant

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Import reads a CSV of contacts for org from r and writes them as opts
// says (see the package documentation for the rules). It returns the
// report with every error that concerns the file, so the caller can show
// why: ErrInvalidCSV (and ErrTooLarge too, for the limits) when the file is
// refused as a whole, ErrBadRows when bad records mean nothing was written.
// With any error nothing was written, except that when the connection to
// the store fails while it writes (Redis: while EXEC is under way) the
// import may have been applied, but then whole.
func (s *Store) Import(ctx context.Context, org string, r io.Reader, opts ImportOptions) (ImportReport, error) {
	if err := checkOrg(org); err != nil {
		return ImportReport{}, err
	}
	region, err := NormalizeRegion(opts.Region)
	if err != nil {
		return ImportReport{}, err
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return ImportReport{}, fmt.Errorf("tenant: read CSV: %w", err)
	}
	if len(data) > MaxFileBytes {
		return ImportReport{}, fmt.Errorf("tenant: %w: %w: the file is over %d MiB; split it", ErrInvalidCSV, ErrTooLarge, MaxFileBytes>>20)
	}
	p, err := parseCSV(data, region, opts.KnownBuilding)
	if err != nil {
		return p.report, err
	}
	if p.report.BadRowCount > 0 && (!opts.GoodRowsOnly || len(p.good) == 0) {
		why := "nothing was imported"
		if !opts.GoodRowsOnly {
			why += "; fix them, or import the good rows only"
		}
		return p.report, fmt.Errorf("tenant: import into organisation %s: %w: %d of %d rows are bad; %s",
			org, ErrBadRows, p.report.BadRowCount, p.report.Rows, why)
	}
	rep := p.report
	err = s.cs.Update(ctx, org, func(existing map[string]Contact) (ContactChanges, error) {
		rep = p.report
		return s.plan(existing, p, opts, &rep), nil
	})
	if err != nil {
		return p.report, fmt.Errorf("tenant: import into organisation %s: %w", org, err)
	}
	return rep, nil
}

// plan compares the file with org's existing contacts and returns what to
// create, update and remove, counting in rep.
func (s *Store) plan(existing map[string]Contact, p parsed, opts ImportOptions, rep *ImportReport) ContactChanges {
	now := s.now().UTC().Truncate(time.Second)
	var ch ContactChanges
	for _, e := range p.good {
		if len(e.buildings) > 0 {
			if ch.Grants == nil {
				ch.Grants = map[string][]string{}
			}
			ch.Grants[e.email] = e.buildings
			rep.Granted += len(e.buildings)
		}
		c, had := existing[e.email]
		if had {
			// A value that no longer decodes (empty Name) is overwritten:
			// the file is the truth about the contact.
			if c.Name == e.name && c.Phone == e.phone {
				rep.Unchanged++
				continue
			}
			rep.Updated++
		} else {
			rep.Created++
			c = Contact{Email: e.email, CreatedAt: now}
		}
		if c.CreatedAt.IsZero() {
			c.CreatedAt = now
		}
		c.Name, c.Phone, c.UpdatedAt = e.name, e.phone, now
		if had {
			ch.Updated = append(ch.Updated, c)
		} else {
			ch.Created = append(ch.Created, c)
		}
	}
	if opts.RemoveMissing {
		for email := range existing {
			if !p.listed[email] {
				ch.Removed = append(ch.Removed, email)
			}
		}
	}
	rep.Removed = len(ch.Removed)
	return ch
}
