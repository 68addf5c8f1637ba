// Package pmspull pulls a property's resident roster from its
// property-management system (the properties file's pms: block; Buildium
// for now) into the roster store, as the scheduled pull and `cloudkey
// roster pull` both do: incremental from the last successful pull's
// cursor, merged into the current roster (a delta never drops the
// residents it does not mention), saved as a new version when something
// changed, then reconciled with the property's access systems, then
// handed to the AfterRoster hook (the move-out policy).
//
// The last pull's time, result and error are kept in Redis beside the
// roster (the same hash tag), with the cursor: a failed pull keeps the
// cursor, so the next one asks again for what it missed.
package pmspull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/buildium"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

// CursorMargin is subtracted from the time a pull starts to make the next
// pull's cursor: Buildium stamps changes with its own clock, and a change
// made while the pull ran must be asked for again. A row pulled twice is
// merged, not duplicated.
const CursorMargin = 2 * time.Minute

// Results of a pull.
const (
	ResultOK     = "ok"
	ResultFailed = "failed"
)

// Directories gives a property's time zone and its access systems'
// user directories, for the reconciliation after a pull.
type Directories func(ctx context.Context, property string) (timeZone string, conns []reconcile.Connection, err error)

// Config configures a Puller.
type Config struct {
	Redis   redis.UniversalClient
	Rosters *rosterredis.Store
	// Directories, when set, reconciles the roster after each pull.
	Directories Directories
	// AfterRoster, when set, runs after each successful pull and
	// reconciliation, with the property's id: the move-out policy
	// (recomputed from the latest roster on every run). Its error fails
	// the pull's status; the roster and cursor stay saved.
	AfterRoster func(ctx context.Context, property string) error
	// HTTPClient calls the PMS (nil: the client's own).
	HTTPClient *http.Client
	// PageSize is each list request's page (0: the PMS's largest).
	PageSize int
	// Logger receives each pull's outcome, never a secret (nil: none).
	Logger *slog.Logger
	// Now is the clock of cursors and statuses (nil: time.Now).
	Now func() time.Time
}

// Puller pulls rosters. Safe for concurrent use.
type Puller struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
}

// New returns a Puller.
func New(cfg Config) (*Puller, error) {
	if cfg.Redis == nil || cfg.Rosters == nil {
		return nil, errors.New("pmspull: Redis and the roster store are required")
	}
	p := &Puller{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// Status is the last pull of a property, as GetProperty shows it.
type Status struct {
	At     time.Time `json:"at"`
	Result string    `json:"result"`
	// Error says why the pull failed (the PMS refused the key, was
	// unreachable, the reconciliation failed); empty when it worked.
	Error string `json:"error,omitempty"`
	// Full is a pull of every lease (the first, or after the pms block
	// or the roster's source changed); else only what changed since the
	// cursor.
	Full bool `json:"full"`
	// Version is the roster version the pull saved; 0 when nothing
	// changed (or it failed).
	Version int `json:"version,omitempty"`
	People  int `json:"people"`
	Added   int `json:"added"`
	Changed int `json:"changed"`
	Removed int `json:"removed"`
	// Skipped counts the rows left out (no email...).
	Skipped int `json:"skipped"`
	// Requests counts the PMS requests made.
	Requests int `json:"requests"`
	// Cursor is where the next incremental pull starts: kept by a failed
	// pull.
	Cursor time.Time `json:"cursor,omitzero"`
	// Source is the pms block the cursor belongs to (system, url and
	// property ids): another one pulls in full.
	Source string `json:"source,omitempty"`
}

func statusKey(property string) string { return "ck:v1:{roster:" + property + "}:pms" }

// Status returns the property's last pull; ok is false before the first.
func (p *Puller) Status(ctx context.Context, propertyID string) (Status, bool, error) {
	b, err := p.cfg.Redis.Get(ctx, statusKey(propertyID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("pmspull: read the last pull of %s: %w", propertyID, err)
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, false, fmt.Errorf("pmspull: the last pull of %s is corrupt: %w", propertyID, err)
	}
	return s, true, nil
}

// Statuses returns the last pull of each property that has one, in one
// round trip (they share no slot, so a pipeline of GETs).
func (p *Puller) Statuses(ctx context.Context, ids []string) (map[string]Status, error) {
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := p.cfg.Redis.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = pipe.Get(ctx, statusKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("pmspull: read the last pulls: %w", err)
	}
	out := make(map[string]Status, len(ids))
	for i, c := range cmds {
		b, err := c.Bytes()
		if err != nil {
			continue
		}
		var s Status
		if json.Unmarshal(b, &s) == nil {
			out[ids[i]] = s
		}
	}
	return out, nil
}

// source names what a cursor is valid for.
func source(c *property.PMS) string {
	ids := make([]string, len(c.PropertyIDs))
	for i, id := range c.PropertyIDs {
		ids[i] = strconv.Itoa(int(id))
	}
	return c.System + " " + c.URL + " " + strings.Join(ids, ",")
}

// Pull pulls prop's roster now, saves and reconciles it, runs
// AfterRoster, and records the outcome (returned, with the error when
// it failed).
func (p *Puller) Pull(ctx context.Context, prop property.Property) (Status, error) {
	if prop.PMS == nil {
		return Status{}, fmt.Errorf("pmspull: property %s has no pms block", prop.ID)
	}
	if err := rosterredis.CheckProperty(prop.ID); err != nil {
		return Status{}, err
	}
	started := p.now()
	prev, _, err := p.Status(ctx, prop.ID)
	if err != nil {
		return Status{}, err
	}
	st := Status{At: started.UTC(), Result: ResultOK, Cursor: prev.Cursor, Source: prev.Source}
	fail := func(stage string, err error) (Status, error) {
		err = fmt.Errorf("%s: %w", stage, err)
		st.Result, st.Error = ResultFailed, err.Error()
		p.record(ctx, prop.ID, st)
		p.log.Error("roster pull failed; the next scheduled pull tries again", "property", prop.ID, "full", st.Full, "err", err)
		return st, fmt.Errorf("roster pull of %s: %w", prop.ID, err)
	}

	cur, hasRoster, err := p.cfg.Rosters.Current(ctx, prop.ID)
	if err != nil {
		return fail("read the roster", err)
	}
	src := source(prop.PMS)
	st.Full = prev.Cursor.IsZero() || prev.Source != src || !hasRoster || cur.Source != roster.SourceBuildium
	var since time.Time
	if !st.Full {
		since = prev.Cursor
	}
	var res buildium.Result
	switch prop.PMS.System {
	case property.Buildium:
		client, err := buildium.New(buildium.Config{URL: prop.PMS.URL, ClientID: prop.PMS.ClientID, ClientSecret: prop.PMS.ClientSecret,
			PropertyIDs: prop.PMS.PropertyIDs, HTTPClient: p.cfg.HTTPClient, PageSize: p.cfg.PageSize, Logger: p.log})
		if err != nil {
			return fail("buildium", err)
		}
		res, err = client.Fetch(ctx, since)
		st.Requests = res.Requests
		if err != nil {
			return fail("pull", err)
		}
	default:
		return fail("pull", fmt.Errorf("pms system %q is not supported", prop.PMS.System))
	}

	assembled := roster.Assemble(res.People)
	issues := append(res.Issues, assembled.Issues...)
	for _, i := range issues {
		if i.Skipped {
			st.Skipped++
		}
	}
	if st.Full && len(assembled.People) == 0 {
		// An empty roster would read as everyone moved out.
		return fail("pull", errors.New("the PMS listed nobody with an email for these property ids; nothing was stored"))
	}
	next := cur.People
	if st.Full {
		next = assembled.People
	} else {
		next = roster.Merge(cur.People, assembled.People)
	}
	cursor := started.Add(-CursorMargin).UTC()
	if d := roster.Compare(cur.People, next); !hasRoster || !d.Empty() {
		origin := "incremental"
		if st.Full {
			origin = "full"
		}
		v, err := p.cfg.Rosters.Save(ctx, prop.ID, rosterredis.Snapshot{Source: roster.SourceBuildium, Origin: origin,
			People: assembled.People, Incremental: !st.Full, Issues: issues, Cursor: cursor})
		if err != nil {
			return fail("save the roster", err)
		}
		st.Version, st.People, st.Added, st.Changed, st.Removed = v.Number, v.People, v.Added, v.Changed, v.Removed
	} else {
		st.People = len(next)
	}
	st.Cursor, st.Source = cursor, src

	if p.cfg.Directories != nil {
		tz, conns, err := p.cfg.Directories(ctx, prop.ID)
		if err == nil {
			_, err = reconcile.Reconcile(ctx, p.cfg.Rosters, prop.ID, tz, conns, started)
		}
		if err != nil {
			return fail("reconcile", err)
		}
	}
	if p.cfg.AfterRoster != nil {
		if err := p.cfg.AfterRoster(ctx, prop.ID); err != nil {
			return fail("after the roster", err)
		}
	}
	p.record(ctx, prop.ID, st)
	p.log.Info("roster pulled", "property", prop.ID, "full", st.Full, "version", st.Version, "people", st.People,
		"added", st.Added, "changed", st.Changed, "removed", st.Removed, "skipped", st.Skipped, "requests", st.Requests)
	return st, nil
}

// record stores st as the property's last pull; a failure to is logged
// (the next pull then asks again from the older cursor).
func (p *Puller) record(ctx context.Context, propertyID string, st Status) {
	b, err := json.Marshal(st)
	if err == nil {
		err = p.cfg.Redis.Set(context.WithoutCancel(ctx), statusKey(propertyID), b, 0).Err()
	}
	if err != nil {
		p.log.Warn("roster pull: its outcome not recorded", "property", propertyID, "err", err)
	}
}
