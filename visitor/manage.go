package visitor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
)

// The manager's view: a property's passes listed by location, state and
// time, and ended by hand.

// PassIndexEntry is where a pass is listed for managers: its property
// and location, by start.
type PassIndexEntry struct {
	Property, Location string
	PassID             string
	Start              time.Time
	// Prune: entries that started before it are dropped from the index;
	// their visits have expired.
	Prune time.Time
}

// PassIndex is the part of a Store that lists passes for managers
// (visitorredis.Store has it). It is optional: a Store without it cannot
// serve ListPasses and EndPass.
type PassIndex interface {
	// IndexedPasses returns up to q.Limit of q.Property's passes (at
	// q.Location, or at any of its locations when ""), whose start is in
	// [q.Min, q.Max] (zero: unbounded), ordered by start then visit key,
	// after q.After (zero: from the first).
	IndexedPasses(ctx context.Context, q IndexQuery) ([]IndexedPass, error)
	// PassVisit returns the visit key of pass passID.
	PassVisit(ctx context.Context, passID string) (visitKey string, ok bool, err error)
	// Visits reads visits by key; an absent one is nil.
	Visits(ctx context.Context, keys []string) ([][]byte, error)
}

// IndexQuery selects indexed passes.
type IndexQuery struct {
	Property, Location string
	Min, Max           time.Time
	After              IndexedPass
	Limit              int
}

// IndexedPass is one index entry.
type IndexedPass struct {
	VisitKey string
	Start    int64 // Unix seconds: the index's order
}

// indexEntry is v's index entry, or nil when it has no pass.
func (s *Service) indexEntry(v *visit) *PassIndexEntry {
	if v.Pass == nil {
		return nil
	}
	return &PassIndexEntry{
		Property: s.property(v.Pass.Property), Location: v.Location, PassID: v.Pass.ID, Start: v.Pass.Start,
		Prune: s.now().Add(-s.cfg.Retention - passLookback),
	}
}

// passLookback is how long before a window's start a pass overlapping
// it may have started: the longest advance access plus the longest
// duration, and a day for a visitor signing in late.
const passLookback = MaxAdvanceAccess + MaxAccessDuration + 24*time.Hour

// Issuance is how a pass came to be.
type Issuance string

// Issuances.
const (
	IssuedInvite Issuance = "INVITE"  // an Envoy invite
	IssuedSignIn Issuance = "SIGN_IN" // a walk-in's sign-in at Envoy
	IssuedTile   Issuance = "TILE"    // a tenant contact's registration in the tile
)

// LinkState is where a pass's link is.
type LinkState string

// Delivery states, as the pass records them.
const (
	// LinkNotSent: no link went out (no email or phone, or the window
	// was over when the pass was issued).
	LinkNotSent LinkState = "NOT_SENT"
	// LinkSent: the notifier took the link.
	LinkSent LinkState = "SENT"
	// LinkRetrying: sending failed for now; the next event for the
	// visit sends it again.
	LinkRetrying LinkState = "RETRYING"
	// LinkFailed: the notifier cannot reach this recipient; not retried.
	LinkFailed LinkState = "FAILED"
)

// Delivery is what a pass records of its link's delivery.
type Delivery struct {
	State LinkState
	// Channel is "email" or "sms" (a phone-only visitor), "" when not sent.
	Channel string
	Error   string
}

// PassSummary is one pass in the manager's view (never its link token).
type PassSummary struct {
	PassID       string
	VisitKey     string // "inv:{inviteID}" or "ent:{entryID}"
	Property     string
	Location     string
	LocationName string
	VisitorName  string
	VisitorType  string
	// Host is the tenant contact who registered the visitor in the tile;
	// "" for Envoy invites and walk-ins.
	Host       string
	State      State
	Start, End time.Time
	IssuedAt   time.Time
	Issued     Issuance
	Delivery   Delivery
	EndedAt    time.Time // when it was ended early (sign-out, removal, a manager)
	EndReason  string
	Entries    []PassEntry
	// EnvoyHost and EnvoyHostEmail are the employee the visitor comes to
	// see, as Envoy's events name them (an entry's host, an invite's
	// inviter).
	EnvoyHost, EnvoyHostEmail string
}

// PassQuery selects passes for ListPasses.
type PassQuery struct {
	Property string // "" the default property
	Location string // "" every location of the property
	State    State  // "" any
	// From and To: passes whose window overlaps [From, To); zero is
	// unbounded.
	From, To time.Time
	Limit    int    // 1 to MaxPassPage; 0 is DefaultPassPage
	Cursor   string // from the previous page; "" the first
}

// PassPage is one page of passes.
type PassPage struct {
	Passes []PassSummary // by start, then visit key
	// Next is the next page's cursor, "" after the last. A page may hold
	// fewer than Limit passes when many did not match; carry on while
	// Next is set.
	Next string
}

// Page sizes of ListPasses.
const (
	DefaultPassPage = 50
	MaxPassPage     = 200
	// maxPassScan bounds the index entries one page reads.
	maxPassScan = 2000
)

// ErrBadPassQuery: a ListPasses query that cannot be answered (bad
// cursor, state, limit or window); the message names the field.
var ErrBadPassQuery = errors.New("visitor: bad pass query")

// errNoPassIndex: the store cannot list passes.
var errNoPassIndex = errors.New("visitor: the store keeps no pass index")

// ListPasses lists q.Property's passes (at q.Location, or at all of its
// locations) in q.State overlapping [q.From, q.To), by start. A location
// of another property is ErrOtherProperty. Passes saved before the index
// existed are not listed (they age out with the retention period).
func (s *Service) ListPasses(ctx context.Context, q PassQuery) (PassPage, error) {
	idx, ok := s.store.(PassIndex)
	if !ok {
		return PassPage{}, errNoPassIndex
	}
	q.Property = s.property(q.Property)
	switch {
	case q.Limit == 0:
		q.Limit = DefaultPassPage
	case q.Limit < 0 || q.Limit > MaxPassPage:
		return PassPage{}, fmt.Errorf("%w: page_size: must be 1 to %d", ErrBadPassQuery, MaxPassPage)
	}
	switch q.State {
	case "", StateUpcoming, StateActive, StateEnded:
	default:
		return PassPage{}, fmt.Errorf("%w: state: must be UPCOMING, ACTIVE or ENDED", ErrBadPassQuery)
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return PassPage{}, fmt.Errorf("%w: to: must be after from", ErrBadPassQuery)
	}
	after, err := decodePassCursor(q.Cursor)
	if err != nil {
		return PassPage{}, err
	}
	if q.Location != "" {
		if _, err := s.Settings(ctx, q.Property, q.Location); errors.Is(err, ErrOtherProperty) {
			return PassPage{}, err
		} else if err != nil && !errors.Is(err, ErrNoSettings) {
			return PassPage{}, err
		}
	}
	now := s.now()
	iq := IndexQuery{Property: q.Property, Location: q.Location, After: after}
	if !q.From.IsZero() {
		iq.Min = q.From.Add(-passLookback)
	}
	// Scores are whole seconds (rounded down): the bounds are too, and
	// the exact checks are made on each pass below.
	if !q.To.IsZero() {
		iq.Max = q.To
	}
	// The state bounds the start too: an upcoming pass starts after now,
	// an active one started by now.
	switch q.State {
	case StateUpcoming:
		if iq.Min.Before(now) {
			iq.Min = now.Truncate(time.Second)
		}
	case StateActive:
		if iq.Max.IsZero() || iq.Max.After(now) {
			iq.Max = now
		}
	}
	var page PassPage
	for scanned := 0; scanned < maxPassScan; {
		iq.Limit = min(2*(q.Limit-len(page.Passes))+10, maxPassScan-scanned)
		entries, err := idx.IndexedPasses(ctx, iq)
		if err != nil {
			return PassPage{}, fmt.Errorf("visitor: list passes: %w", err)
		}
		keys := make([]string, len(entries))
		for i, e := range entries {
			keys[i] = e.VisitKey
		}
		raw, err := idx.Visits(ctx, keys)
		if err != nil {
			return PassPage{}, fmt.Errorf("visitor: read passes: %w", err)
		}
		for i, e := range entries {
			scanned++
			iq.After = e
			if raw[i] == nil {
				continue // expired since it was indexed
			}
			v := new(visit)
			if json.Unmarshal(raw[i], v) != nil || v.Pass == nil || s.property(v.Pass.Property) != q.Property {
				continue
			}
			p := s.summary(v, now)
			if (q.State != "" && p.State != q.State) ||
				(!q.From.IsZero() && !p.End.After(q.From)) || (!q.To.IsZero() && !p.Start.Before(q.To)) {
				continue
			}
			page.Passes = append(page.Passes, p)
			if len(page.Passes) == q.Limit {
				page.Next = encodePassCursor(e)
				return page, nil
			}
		}
		if len(entries) < iq.Limit {
			return page, nil // the index has no more
		}
	}
	page.Next = encodePassCursor(iq.After)
	return page, nil
}

// summary is v's pass as the manager sees it at now; v has a pass.
func (s *Service) summary(v *visit, now time.Time) PassSummary {
	p := v.Pass
	out := PassSummary{
		PassID: p.ID, VisitKey: v.Key, Property: s.property(p.Property),
		Location: v.Location, LocationName: v.LocationName,
		VisitorName: v.Name, VisitorType: v.Flow, Host: v.Host, EnvoyHost: v.EnvoyHost, EnvoyHostEmail: v.EnvoyHostEmail,
		State: StateActive, Start: p.Start, End: p.End, IssuedAt: p.IssuedAt,
		Issued: IssuedInvite, Entries: slices.Clone(p.Entries),
	}
	switch {
	case passEnded(v, now):
		out.State = StateEnded
	case now.Before(p.Start):
		out.State = StateUpcoming
	}
	if v.Ended {
		out.EndedAt, out.EndReason = v.EndedAt, v.EndReason
	}
	switch {
	case v.Host != "" || strings.HasPrefix(v.InviteID, inviteIDPrefix):
		out.Issued = IssuedTile
	case strings.HasPrefix(v.Key, "ent:"):
		out.Issued = IssuedSignIn
	}
	out.Delivery = delivery0(p)
	return out
}

// delivery0 reads the delivery state the pass records: NotifiedTo is set
// before sending and cleared by a failure to be retried; a permanent
// failure keeps it with the error.
func delivery0(p *pass) Delivery {
	if len(p.Deliveries) > 0 {
		return deliveryOf(p.Deliveries)
	}
	d := Delivery{State: LinkNotSent, Error: p.NotifyError}
	to := p.NotifiedTo
	switch {
	case to != "" && p.NotifyError == "":
		d.State = LinkSent
	case to != "":
		d.State = LinkFailed
	case p.NotifyError != "":
		d.State = LinkRetrying
	}
	switch {
	case to == "":
	case strings.Contains(to, "@"):
		d.Channel = "email"
	default:
		d.Channel = "sms"
	}
	return d
}

func encodePassCursor(e IndexedPass) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(e.Start, 10) + " " + e.VisitKey))
}

func decodePassCursor(c string) (IndexedPass, error) {
	if c == "" {
		return IndexedPass{}, nil
	}
	bad := fmt.Errorf("%w: page_token: not one ListPasses returned", ErrBadPassQuery)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) > 300 {
		return IndexedPass{}, bad
	}
	start, key, ok := strings.Cut(string(b), " ")
	n, err := strconv.ParseInt(start, 10, 64)
	if !ok || err != nil || key == "" {
		return IndexedPass{}, bad
	}
	return IndexedPass{Start: n, VisitKey: key}, nil
}

// EndPass ends property's pass passID at once, as a sign-out does: the
// guest page then says it has ended and guest unlock is refused. by says
// who ended it (recorded as the end reason, the decision and the audit).
// A pass of another property, or none, is ErrNoVisit; ending an ended
// pass changes nothing.
func (s *Service) EndPass(ctx context.Context, property, passID, by string) (PassSummary, error) {
	idx, ok := s.store.(PassIndex)
	if !ok {
		return PassSummary{}, errNoPassIndex
	}
	property = s.property(property)
	notFound := fmt.Errorf("%w: pass %q", ErrNoVisit, passID)
	key, ok, err := idx.PassVisit(ctx, passID)
	if err != nil {
		return PassSummary{}, fmt.Errorf("visitor: find pass %s: %w", passID, err)
	}
	if !ok {
		return PassSummary{}, notFound
	}
	var out PassSummary
	err = s.transact(WithActor(ctx, by), []string{key}, func(t *txn) error {
		v, err := t.visit(key)
		if err != nil {
			return err
		}
		if v == nil || v.Pass == nil || v.Pass.ID != passID || s.property(v.Pass.Property) != property {
			return notFound
		}
		o := Outcome{At: s.now().UTC(), Event: "manager_end", Location: v.Location, InviteID: v.InviteID, EntryID: v.EntryID}
		if res := s.end(t, v, o, "ended by "+by); res.Action == ActionEnded {
			t.decide(v, res)
		}
		out = s.summary(v, s.now())
		return nil
	})
	if err != nil {
		return PassSummary{}, err
	}
	return out, nil
}

// noteHost records on a tile registration's visit who registered it, for
// the manager's view.
func (s *Service) noteHost(ctx context.Context, inviteID, host string) error {
	key := "inv:" + inviteID
	return s.transact(ctx, []string{key}, func(t *txn) error {
		v, err := t.visit(key)
		if err != nil || v == nil || v.Host != "" {
			return err
		}
		v.Host = identity.FoldEmail(host)
		t.put(v)
		return nil
	})
}

// actorKey carries who acts, for the audit.
type actorKey struct{}

// WithActor returns ctx saying who acts (an admin key, a tenant contact):
// pass issuance and ending done under it are audited as theirs, and
// Envoy's otherwise.
func WithActor(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, actorKey{}, who)
}

// actor is who acts in ctx: WithActor's, else "envoy" (events).
func actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "envoy"
}

// deliveryOf sums up a link's messages (one per recipient, with the
// delivery system's status): failed when any was refused or undelivered
// (its reason as the error), retrying when one waits to be sent again,
// else sent; the channels joined ("email,sms").
func deliveryOf(msgs []sent) Delivery {
	d := Delivery{State: LinkSent}
	var channels []string
	for _, m := range msgs {
		channels = append(channels, m.Channel)
		switch m.Status {
		case DeliveryFailed, "undelivered":
			d.State = LinkFailed
			d.Error = strings.TrimSpace(fmt.Sprintf("%s: %s", m.Channel, m.Reason))
			if m.ErrorCode != 0 {
				d.Error += fmt.Sprintf(" (%d)", m.ErrorCode)
			}
		case DeliveryRetrying:
			if d.State != LinkFailed {
				d.State = LinkRetrying
			}
		}
	}
	d.Channel = strings.Join(channels, ",")
	return d
}

// EndPropertyPasses ends, as EndPass does and in by's name, every pass of
// property that has not ended: a removed property's guests open nothing
// more, and their guest pages say so. It returns how many it ended.
func (s *Service) EndPropertyPasses(ctx context.Context, property, by string) (int, error) {
	n := 0
	for _, st := range []State{StateActive, StateUpcoming} {
		q := PassQuery{Property: property, State: st, Limit: MaxPassPage}
		for {
			page, err := s.ListPasses(ctx, q)
			if err != nil {
				return n, err
			}
			for _, p := range page.Passes {
				if _, err := s.EndPass(ctx, property, p.PassID, by); err != nil {
					return n, fmt.Errorf("visitor: end pass %s: %w", p.PassID, err)
				}
				n++
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
	}
	return n, nil
}
