package unlock

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// UnknownPropertyError: the caller's token names a property this
// deployment does not serve.
type UnknownPropertyError struct{ Property string }

func (e *UnknownPropertyError) Error() string {
	return fmt.Sprintf("the token's properties claim names %q, which this deployment does not serve", e.Property)
}

// Portfolio is the resident use cases over every property a deployment
// serves: a caller acts on the properties their token names (the
// platform vouches for them), or on the default property when it names
// none. A property outside the token's is never asked, so an answer never
// tells whether a user or a door exists there: another property's entry
// id is refused exactly as an id that exists nowhere. Safe for concurrent
// use.
//
// Properties are added, replaced and removed while it serves (Set,
// Remove): each call loads the set once, an immutable snapshot, so a call
// in flight keeps the Services it started with and finishes on them
// within its deadline.
type Portfolio struct {
	set atomic.Pointer[portfolioSet]
	mu  sync.Mutex // serialises Set and Remove
	// defID is the default property's id: fixed, it cannot be removed.
	defID string
}

// portfolioSet is the properties served at one moment; never changed
// once published.
type portfolioSet struct {
	def   *Service // props' default, kept apart: most calls need nothing else
	props map[string]*Service
}

// NewPortfolio returns the portfolio of props (by property id) whose
// default property is def.
func NewPortfolio(def string, props map[string]*Service) (*Portfolio, error) {
	if props[def] == nil {
		return nil, fmt.Errorf("unlock: the default property %q is not among the properties served", def)
	}
	p := &Portfolio{defID: def}
	p.set.Store(&portfolioSet{def: props[def], props: maps.Clone(props)})
	return p, nil
}

// Set serves svc as property id from now on, in place of the one it
// replaces, if any (calls in flight finish on that one).
func (p *Portfolio) Set(id string, svc *Service) error {
	if svc == nil {
		return fmt.Errorf("unlock: property %q: no service", id)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.set.Load()
	next := &portfolioSet{def: old.def, props: maps.Clone(old.props)}
	next.props[id] = svc
	if id == p.defID {
		next.def = svc
	}
	p.set.Store(next)
	return nil
}

// Remove stops serving property id; calls in flight on it finish. The
// default property cannot be removed.
func (p *Portfolio) Remove(id string) error {
	if id == p.defID {
		return fmt.Errorf("unlock: property %q is the default property; it cannot be removed", id)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.set.Load()
	if old.props[id] == nil {
		return nil
	}
	next := &portfolioSet{def: old.def, props: maps.Clone(old.props)}
	delete(next.props, id)
	p.set.Store(next)
	return nil
}

// Has reports whether property id is served.
func (p *Portfolio) Has(id string) bool { return p.set.Load().props[id] != nil }

// scope returns the services of the properties named (nil: the default).
func (p *portfolioSet) scope(properties []string) ([]*Service, error) {
	if properties == nil {
		return []*Service{p.def}, nil
	}
	out := make([]*Service, len(properties))
	for i, id := range properties {
		if out[i] = p.props[id]; out[i] == nil {
			return nil, &UnknownPropertyError{Property: id}
		}
	}
	return out, nil
}

// one returns the single service of a scope of one property: the common
// case, served by the property's Service as it is.
func (p *portfolioSet) one(properties []string) (*Service, bool) {
	switch {
	case properties == nil:
		return p.def, true
	case len(properties) == 1:
		s := p.props[properties[0]]
		return s, s != nil
	}
	return nil, false
}

// each runs f on every service of scope concurrently and waits.
func each(svcs []*Service, f func(i int, s *Service)) {
	var wg sync.WaitGroup
	for i, s := range svcs[1:] {
		wg.Go(func() { f(i+1, s) })
	}
	f(0, svcs[0])
	wg.Wait()
}

// Me is Service.Me over the caller's properties: connected when any
// property has the user active, each system's answer naming its
// property.
func (p *Portfolio) Me(ctx context.Context, email string, properties []string) (Me, error) {
	set := p.set.Load()
	if s, ok := set.one(properties); ok {
		return s.Me(ctx, email)
	}
	svcs, err := set.scope(properties)
	if err != nil {
		return Me{}, err
	}
	mes := make([]Me, len(svcs))
	errs := make([]error, len(svcs))
	each(svcs, func(i int, s *Service) { mes[i], errs[i] = s.Me(ctx, email) })
	out := Me{Email: email}
	for i, m := range mes {
		switch {
		case errs[i] != nil:
			continue
		case m.Connected:
			errs[i] = nil
			out.EntryCount += m.EntryCount
			if out.Name == "" {
				out.Name = m.Name
			}
		case m.Reason == ReasonUserDisabled:
			errs[i] = ErrUserDisabled
		default:
			errs[i] = ErrUserNotFound
		}
		out.Systems = append(out.Systems, m.Systems...)
	}
	return out.summarize(combine(len(errs), func(i int) error { return errs[i] }))
}

// PortfolioListing is a Listing over several properties.
type PortfolioListing struct {
	// Version is the one property's listing version, zero over several
	// (derive afresh).
	Version ListingVersion
	parts   []Listing // nil for one property's: one
	one     Listing
}

// Entries returns the listing's entries, favourites first, then by name.
func (l PortfolioListing) Entries() []Entry {
	if l.parts == nil {
		return l.one.Entries()
	}
	var out []Entry
	for _, p := range l.parts {
		out = append(out, p.Entries()...)
	}
	sortEntries(out)
	return out
}

// Listing is Service.Listing over the caller's properties: the union of
// the properties where the user is active; unknown only when no property
// knows the email, disabled only when every property that knows it has
// the user disabled.
func (p *Portfolio) Listing(ctx context.Context, email string, properties []string) (PortfolioListing, error) {
	return p.set.Load().listing(ctx, email, properties)
}

func (p *portfolioSet) listing(ctx context.Context, email string, properties []string) (PortfolioListing, error) {
	if s, ok := p.one(properties); ok {
		l, err := s.Listing(ctx, email)
		if err != nil {
			return PortfolioListing{}, err
		}
		return PortfolioListing{Version: l.Version, one: l}, nil
	}
	svcs, err := p.scope(properties)
	if err != nil {
		return PortfolioListing{}, err
	}
	ls := make([]Listing, len(svcs))
	errs := make([]error, len(svcs))
	each(svcs, func(i int, s *Service) { ls[i], errs[i] = s.Listing(ctx, email) })
	if err := combine(len(errs), func(i int) error { return errs[i] }); err != nil {
		return PortfolioListing{}, err
	}
	var out PortfolioListing
	for i, l := range ls {
		if errs[i] == nil {
			out.parts = append(out.parts, l)
		}
	}
	return out, nil
}

// Entries lists email's entries in the caller's properties.
func (p *Portfolio) Entries(ctx context.Context, email string, properties []string) ([]Entry, error) {
	l, err := p.Listing(ctx, email, properties)
	if err != nil {
		return nil, err
	}
	return l.Entries(), nil
}

// owner returns the service among svcs whose connection claims entryID:
// a namespaced id's property, else the one with bare ids; nil when none.
func owner(svcs []*Service, entryID string) *Service {
	var bare *Service
	for _, s := range svcs {
		for _, c := range s.conns {
			if c.Bare {
				bare = s
			} else if strings.HasPrefix(entryID, c.idPrefix) {
				return s
			}
		}
	}
	return bare
}

// SetFavorite marks or unmarks one of email's entries in the caller's
// properties.
func (p *Portfolio) SetFavorite(ctx context.Context, email string, properties []string, entryID string, on bool) (Entry, error) {
	return p.set.Load().setFavorite(ctx, email, properties, entryID, on)
}

func (p *portfolioSet) setFavorite(ctx context.Context, email string, properties []string, entryID string, on bool) (Entry, error) {
	if s, ok := p.one(properties); ok {
		return s.SetFavorite(ctx, email, entryID, on)
	}
	svcs, err := p.scope(properties)
	if err != nil {
		return Entry{}, err
	}
	if strings.TrimSpace(entryID) == "" {
		return Entry{}, &InvalidArgumentError{Field: "entry_id", Reason: "must not be empty"}
	}
	s := owner(svcs, entryID)
	if s == nil {
		if _, err := p.listing(ctx, email, properties); err != nil {
			return Entry{}, err
		}
		return Entry{}, &EntryNotFoundError{EntryID: entryID}
	}
	e, err := s.SetFavorite(ctx, email, entryID, on)
	if errors.Is(err, ErrUserNotFound) || errors.Is(err, ErrUserDisabled) {
		// Unknown there but maybe known in another of the caller's
		// properties: the entry is simply not theirs.
		if _, lerr := p.listing(ctx, email, properties); lerr != nil {
			return Entry{}, lerr
		}
		return Entry{}, &EntryNotFoundError{EntryID: entryID}
	}
	return e, err
}

// Unlock opens email's entries in the caller's properties: the ids are
// grouped by property, each group opened by its property's Service
// concurrently under the call's one deadline. A property where the user
// is unknown or disabled answers DENIED for its entries (audited), and
// the call fails as with one property only when no property has the user
// active.
func (p *Portfolio) Unlock(ctx context.Context, email string, properties []string, entryIDs []string) ([]Result, error) {
	return p.set.Load().unlock(ctx, email, properties, entryIDs)
}

func (p *portfolioSet) unlock(ctx context.Context, email string, properties []string, entryIDs []string) ([]Result, error) {
	if s, ok := p.one(properties); ok {
		return s.Unlock(ctx, email, entryIDs)
	}
	svcs, err := p.scope(properties)
	if err != nil {
		return nil, err
	}
	if err := ValidateUnlock(entryIDs); err != nil {
		return nil, err
	}
	ctx, cancel := p.def.engine.WithDeadline(ctx)
	defer cancel()
	groups, unclaimed := groupIDs(entryIDs, func(id string) (*Service, bool) {
		s := owner(svcs, id)
		return s, s != nil
	})
	results := make([]Result, len(entryIDs))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() {
			var rs []Result
			if rs, errs[i] = g.owner.Unlock(ctx, email, g.ids); errs[i] == nil {
				g.place(results, rs)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, ErrUserNotFound) && !errors.Is(err, ErrUserDisabled) {
			return nil, err
		}
	}
	if !slices.Contains(errs, nil) {
		if _, err := p.listing(ctx, email, properties); err != nil {
			return nil, err
		}
	}
	for i, g := range groups {
		if errs[i] != nil { // not theirs at that property: as an id that exists nowhere
			p.def.engine.denyUnclaimed(ctx, email, g.owner.property(), g.placed, results)
		}
	}
	// An id no property of the caller's claims is audited at the first
	// of them: never at a property the caller's token does not name.
	p.def.engine.denyUnclaimed(ctx, email, svcs[0].property(), unclaimed, results)
	return results, nil
}

// InvalidateProperty drops email's views in property's connections.
func (p *Portfolio) InvalidateProperty(ctx context.Context, property, email string) error {
	s := p.set.Load().props[property]
	if s == nil {
		return &UnknownPropertyError{Property: property}
	}
	return s.Invalidate(ctx, email)
}

// Connections returns property's connections (without their systems);
// ok is false when it is not served.
func (p *Portfolio) Connections(property string) (conns []Connection, ok bool) {
	s := p.set.Load().props[property]
	if s == nil {
		return nil, false
	}
	for _, c := range s.conns {
		cn := c.Connection
		cn.System = nil
		conns = append(conns, cn)
	}
	return conns, true
}

// Invalidate drops email's views in every property.
func (p *Portfolio) Invalidate(ctx context.Context, email string) error {
	var errs []error
	for _, s := range p.set.Load().props {
		if err := s.Invalidate(ctx, email); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
