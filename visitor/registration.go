package visitor

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// Registration is a visitor registered with cloudkey directly (by a tenant
// contact in the tile) rather than through Envoy. It becomes an invite and
// takes exactly the path an Envoy invite_created takes: the same settings,
// window, refusals, pass and link.
type Registration struct {
	// Property is the building's property ("": the default property): the
	// location's settings must be its.
	Property        string
	Location        string // the building's Envoy location id
	FullName        string
	Email, Phone    string // at least one; the link goes to Email, else Phone
	VisitorType     string
	ExpectedArrival time.Time
	Host            string // the registering contact's email
	// BuildingName is the tenant building's name, shown on the guest
	// page and in the messages; empty: the property's name.
	BuildingName string
}

// ErrInvalidRegistration matches errors naming a bad registration field.
var ErrInvalidRegistration = errors.New("invalid visitor registration")

// FieldError names the registration field that is wrong.
type FieldError struct{ Field, Problem string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Is makes a FieldError match ErrInvalidRegistration.
func (e *FieldError) Is(target error) bool { return target == ErrInvalidRegistration }

// Registered is one of a host's registrations.
type Registered struct {
	InviteID string
	Visit    VisitInfo
}

// inviteIDPrefix keeps cloudkey's invite ids apart from Envoy's numeric ones.
const inviteIDPrefix = "ck-"

// Register turns r into an invite and handles it as Envoy's invite_created.
// It returns the invite id (for Cancel) and the outcome (ISSUED, or
// REFUSED with the reason).
func (s *Service) Register(ctx context.Context, r Registration) (string, Outcome, error) {
	if err := r.validate(s.now()); err != nil {
		return "", Outcome{}, err
	}
	// A building of one property never registers visitors at another's
	// location (the settings would issue passes to its doors).
	st, err := s.Settings(ctx, r.Property, r.Location)
	if err != nil && !errors.Is(err, ErrNoSettings) {
		return "", Outcome{}, err
	}
	// A connected Envoy location registers the visitor there; the pass
	// then comes from Envoy's invite_created (tile_envoy.go).
	if inv, ok := s.envoyFor(r.Property, r.Location); ok && err == nil {
		return s.registerInEnvoy(ctx, inv, r, st)
	}
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Outcome{}, fmt.Errorf("visitor: invite id: %w", err)
	}
	id := inviteIDPrefix + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
	ev := envoy.Event{
		Name: envoy.InviteCreated, Location: envoy.Location{ID: r.Location, Name: strings.TrimSpace(r.BuildingName)},
		Type: envoy.TypeInvite, ID: id,
		FullName: r.FullName, Email: r.Email, Phone: r.Phone, Flow: r.VisitorType,
		ExpectedArrival: r.ExpectedArrival,
	}
	out := Outcome{At: s.now().UTC(), Event: "tile_registration", Location: r.Location, InviteID: id}
	host := identity.FoldEmail(r.Host)
	out, err = s.invite(WithActor(ctx, "tile:"+host), ev, out, true, host)
	if err != nil {
		return "", out, err
	}
	if err := s.noteHost(ctx, id, host); err != nil {
		return id, out, fmt.Errorf("visitor: note the host of %s: %w", id, err)
	}
	if err := s.store.AddRegistration(ctx, r.Location, host, id, r.ExpectedArrival, s.cfg.Retention); err != nil {
		return id, out, fmt.Errorf("visitor: remember registration for %s: %w", host, err)
	}
	return id, out, nil
}

// Registrations lists host's registrations at location whose expected
// arrival is after since, soonest first.
func (s *Service) Registrations(ctx context.Context, location, host string, since time.Time) ([]Registered, error) {
	ids, err := s.store.Registrations(ctx, location, identity.FoldEmail(host), since, 200)
	if err != nil {
		return nil, fmt.Errorf("visitor: list registrations: %w", err)
	}
	out := make([]Registered, 0, len(ids))
	for _, id := range ids {
		v, err := s.Visit(ctx, id, "")
		if errors.Is(err, ErrNoVisit) {
			continue // refused before a visit was kept, or expired
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Registered{InviteID: id, Visit: v})
	}
	return out, nil
}

// Cancel ends the pass of one of host's registrations at once, as Envoy's
// invite_removed does. A host can cancel only their own registrations.
func (s *Service) Cancel(ctx context.Context, location, host, inviteID string) (Outcome, error) {
	if ok, err := s.store.HasRegistration(ctx, location, identity.FoldEmail(host), inviteID); err == nil && !ok {
		return Outcome{}, fmt.Errorf("%w: invite %q is not one of yours", ErrNoVisit, inviteID)
	} else if err != nil {
		return Outcome{}, fmt.Errorf("visitor: cancel: %w", err)
	}
	if err := s.cancelInEnvoy(ctx, location, inviteID); err != nil {
		return Outcome{}, err
	}
	ev := envoy.Event{Name: envoy.InviteRemoved, Location: envoy.Location{ID: location}, Type: envoy.TypeInvite, ID: inviteID}
	out := Outcome{At: s.now().UTC(), Event: "tile_cancellation", Location: location, InviteID: inviteID}
	return s.onInviteRemoved(ctx, ev, out)
}

func (r *Registration) validate(now time.Time) error {
	r.FullName = strings.Join(strings.Fields(r.FullName), " ")
	r.Email, r.Phone = strings.TrimSpace(r.Email), strings.TrimSpace(r.Phone)
	r.VisitorType = strings.TrimSpace(r.VisitorType)
	switch {
	case r.Location == "":
		return &FieldError{"building_id", "must not be empty"}
	case r.FullName == "" || len(r.FullName) > 200:
		return &FieldError{"full_name", "must be 1 to 200 characters"}
	case r.Email == "" && r.Phone == "":
		return &FieldError{"email", "give the visitor's email or phone"}
	case r.Email != "" && !strings.Contains(r.Email, "@"):
		return &FieldError{"email", "is not an email address"}
	case r.VisitorType == "":
		return &FieldError{"visitor_type", "must not be empty"}
	case r.ExpectedArrival.IsZero():
		return &FieldError{"expected_arrival", "must be given"}
	case r.ExpectedArrival.Before(now.Add(-time.Hour)):
		return &FieldError{"expected_arrival", "is in the past"}
	case r.ExpectedArrival.After(now.Add(365 * 24 * time.Hour)):
		return &FieldError{"expected_arrival", "is more than a year away"}
	case r.Host == "":
		return &FieldError{"host", "must not be empty"}
	}
	r.Email = identity.FoldEmail(r.Email)
	return nil
}

// VisitorTypes are the types a tile may offer at property's location:
// those mapped to an entry, less the blocked ones, sorted.
func (s *Service) VisitorTypes(ctx context.Context, property, location string) ([]string, error) {
	st, err := s.Settings(ctx, property, location)
	if err != nil {
		return nil, err
	}
	blocked := map[string]bool{}
	for _, b := range st.BlockedVisitorTypes {
		blocked[strings.ToLower(b)] = true
	}
	seen := map[string]bool{}
	var out []string
	for _, m := range st.Entries {
		for _, t := range m.VisitorTypes {
			if !blocked[strings.ToLower(t)] && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
