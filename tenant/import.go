package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxTxAttempts bounds how often an import is worked out again after a
// concurrent change to the organisation's contacts. Imports are rare;
// losing this often means something is writing in a loop.
const maxTxAttempts = 8

// batch bounds the fields or keys in one queued command, so that a large
// import is many moderate commands inside one transaction rather than one
// command with a hundred thousand arguments.
const batch = 1000

// Import reads a CSV of contacts for org from r and writes them as opts
// says (see the package documentation for the rules). It returns the
// report with every error that concerns the file, so the caller can show
// why: ErrInvalidCSV (and ErrTooLarge too, for the limits) when the file is
// refused as a whole, ErrBadRows when bad records mean nothing was written.
// With any error nothing was written, except that when the connection to
// Redis fails while EXEC is under way the import may have been applied, but
// then whole.
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
	p, err := parseCSV(data, region)
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
	for range maxTxAttempts {
		rep := p.report
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			return s.apply(ctx, tx, org, p, opts, &rep)
		}, s.contactsKey(org))
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return p.report, fmt.Errorf("tenant: import into organisation %s: %w", org, err)
		}
		return rep, nil
	}
	return p.report, fmt.Errorf("tenant: import into organisation %s: %w", org, ErrConflict)
}

// apply compares the file with org's contacts, read under WATCH, and
// writes the difference in one MULTI/EXEC, counting in rep.
func (s *Store) apply(ctx context.Context, tx *redis.Tx, org string, p parsed, opts ImportOptions, rep *ImportReport) error {
	existing, err := tx.HGetAll(ctx, s.contactsKey(org)).Result()
	if err != nil {
		return fmt.Errorf("read contacts: %w", err)
	}
	now := s.now().UTC().Truncate(time.Second)
	var set []any         // field, value, field, value… for HSET
	var created []redis.Z // new members of the index
	for _, e := range p.good {
		old, had := existing[e.email]
		var r record
		if had {
			// A value that no longer decodes is overwritten: the file is
			// the truth about the contact.
			if json.Unmarshal([]byte(old), &r) == nil && r.Name == e.name && r.Phone == e.phone {
				rep.Unchanged++
				continue
			}
			rep.Updated++
		} else {
			rep.Created++
			r.CreatedAt = now
			created = append(created, redis.Z{Member: e.email})
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = now
		}
		r.Name, r.Phone, r.UpdatedAt = e.name, e.phone, now
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode contact %s: %w", e.email, err)
		}
		set = append(set, e.email, string(v))
	}
	var removed []string
	if opts.RemoveMissing {
		for email := range existing {
			if !p.listed[email] {
				removed = append(removed, email)
			}
		}
	}
	rep.Removed = len(removed)
	if len(set) == 0 && len(removed) == 0 {
		return nil // nothing to write; the WATCH is simply released
	}
	_, err = tx.TxPipelined(ctx, func(q redis.Pipeliner) error {
		for part := range slices.Chunk(set, 2*batch) {
			q.HSet(ctx, s.contactsKey(org), part...)
		}
		for part := range slices.Chunk(created, batch) {
			q.ZAdd(ctx, s.indexKey(org), part...)
		}
		for part := range slices.Chunk(removed, batch) {
			q.HDel(ctx, s.contactsKey(org), part...)
			members := make([]any, len(part))
			keys := make([]string, len(part))
			for i, e := range part {
				members[i], keys[i] = e, s.grantsKey(org, e)
			}
			q.ZRem(ctx, s.indexKey(org), members...)
			q.Del(ctx, keys...)
		}
		return nil
	})
	return err
}
