package visitor

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/visitor/envoy"
	"github.com/cloudkey/cloudkey/visitor/envoyapi"
)

// Tile → Envoy (issue 16). When a building's Envoy location is connected
// (Config.Envoy), a tile registration is not a pass of its own: it
// creates the invite in Envoy, and the pass comes from Envoy's
// invite_created webhook like any invite's, so the visitor has one pass
// and one link, and Envoy's sign-in joins it and its sign-out ends it.
//
// The invite carries a correlation tag in its user-data
// (envoyapi.TagField). Under that tag cloudkey keeps the tile's contact
// details before the invite is created: Envoy's invite payload carries
// no phone, and invite_created may arrive before Envoy answers the POST.

// EnvoyInvites is what the tile uses of Envoy's REST API;
// *envoyapi.Client is one.
type EnvoyInvites interface {
	// Flows lists the location's flows (its visitor types).
	Flows(ctx context.Context, locationID string) ([]envoyapi.Flow, error)
	// CreateInvite registers the visitor; Envoy then sends invite_created.
	CreateInvite(ctx context.Context, in envoyapi.NewInvite) (envoyapi.Invite, error)
	// DeleteInvite cancels an invite (envoyapi.ErrNotFound: already gone).
	DeleteInvite(ctx context.Context, id string) error
	// State is the connection's state for the settings answer.
	State() envoyapi.State
}

// TagStore keeps the tile registrations' contact details under their
// correlation tags (opaque JSON), for a time.
type TagStore interface {
	PutTag(ctx context.Context, tag string, data []byte, ttl time.Duration) error
	Tag(ctx context.Context, tag string) (data []byte, ok bool, err error)
	DeleteTag(ctx context.Context, tag string) error
}

// ActionPending: the tile registered the visitor in Envoy and the pass is
// not issued yet: it comes with Envoy's invite_created (invite only on)
// or the visitor's sign-in at the front desk (invite only off).
const ActionPending Action = "PENDING"

// ErrEnvoyUnavailable: Envoy did not register (or cancel) the visitor:
// it failed, refused the connection's credentials or did not answer in
// time. Nothing was registered (or cancelled); the tile may try again.
// The cause is logged for the manager, who sees the connection's state
// in the visitor settings.
var ErrEnvoyUnavailable = errors.New("the building's visitor system (Envoy) did not answer; nothing was changed: try again in a minute")

// Messages the tile shows for a registration sent to Envoy.
const (
	pendingInvite = "registered in Envoy; the guest link is sent as soon as Envoy confirms the invite"
	pendingSignIn = "registered in Envoy; the guest link is sent when the visitor signs in at the front desk"
)

// envoyAttempts and envoyBackoff: an Envoy call is tried up to
// envoyAttempts times, waiting envoyBackoff, then twice that, between
// tries, when the failure may pass (see retryable).
const (
	envoyAttempts = 3
	envoyBackoff  = 200 * time.Millisecond
)

// tileTag is what cloudkey keeps under a registration's tag.
type tileTag struct {
	Location     string `json:"location"`
	Host         string `json:"host"` // the contact's canonical email
	Name         string `json:"name"`
	Email        string `json:"email,omitempty"`
	Phone        string `json:"phone,omitempty"`
	BuildingName string `json:"building,omitempty"`
}

// envoyFor is the Envoy connection of property's location.
func (s *Service) envoyFor(property, location string) (EnvoyInvites, bool) {
	if s.cfg.Envoy == nil {
		return nil, false
	}
	inv, ok := s.cfg.Envoy(s.property(property), location)
	return inv, ok && inv != nil
}

// EnvoyState is the Envoy connection state of property's location; ok is
// false when the location has no Envoy connection.
func (s *Service) EnvoyState(property, location string) (envoyapi.State, bool) {
	inv, ok := s.envoyFor(property, location)
	if !ok {
		return envoyapi.State{}, false
	}
	return inv.State(), true
}

// registerInEnvoy is Register at a location connected to Envoy: keep the
// contact details under a new tag, create the invite with the tag, index
// it under its host. On failure the tag is removed and nothing else was
// written.
func (s *Service) registerInEnvoy(ctx context.Context, inv EnvoyInvites, r Registration, st Settings) (string, Outcome, error) {
	host := identity.FoldEmail(r.Host)
	out := Outcome{At: s.now().UTC(), Event: "tile_registration", Location: r.Location, Visitor: r.FullName}
	var flows []envoyapi.Flow
	err := s.retry(ctx, true, func(ctx context.Context) (err error) {
		flows, err = inv.Flows(ctx, r.Location)
		return err
	})
	if err != nil {
		return "", out, s.envoyFailed(ctx, "list the flows", r.Location, err)
	}
	flowID := ""
	for _, f := range flows {
		if !f.EmployeeCentric && f.Enabled && strings.EqualFold(strings.TrimSpace(f.Name), r.VisitorType) {
			flowID = f.ID
			break
		}
	}
	if flowID == "" {
		return "", out, &FieldError{"visitor_type", quote(r.VisitorType) + " is not a visitor type of the building's Envoy location"}
	}

	tag, err := newTag()
	if err != nil {
		return "", out, err
	}
	data, _ := json.Marshal(tileTag{Location: r.Location, Host: host, Name: r.FullName,
		Email: r.Email, Phone: r.Phone, BuildingName: strings.TrimSpace(r.BuildingName)})
	// Kept until a day after the expected arrival: Envoy may redeliver
	// invite_created, or send invite_updated, until the visit.
	ttl := max(r.ExpectedArrival.Sub(s.now()), 0) + 24*time.Hour
	if err := s.store.PutTag(ctx, tag, data, ttl); err != nil {
		return "", out, fmt.Errorf("visitor: keep the registration's contact details: %w", err)
	}
	notify := false // cloudkey sends the guest link itself
	var created envoyapi.Invite
	err = s.retry(ctx, false, func(ctx context.Context) (err error) {
		created, err = inv.CreateInvite(ctx, envoyapi.NewInvite{
			LocationID: r.Location, FlowID: flowID, FullName: r.FullName, Email: r.Email, Phone: r.Phone,
			ExpectedArrival: r.ExpectedArrival, UserData: map[string]string{envoyapi.TagField: tag}, NotifyVisitor: &notify,
		})
		return err
	})
	if err != nil {
		s.forgetTag(ctx, tag)
		return "", out, s.envoyFailed(ctx, "create the invite", r.Location, err)
	}
	out.InviteID = created.ID
	if err := s.indexRegistration(ctx, r.Location, host, created.ID, r.ExpectedArrival); err != nil {
		return created.ID, out, err
	}
	out.Action, out.Reason = ActionPending, pendingSignIn
	if !st.InviteOnly {
		return created.ID, out, nil
	}
	out.Reason = pendingInvite
	// invite_created may have come first: say what it decided.
	if v, err := s.Visit(ctx, created.ID, ""); err == nil && len(v.Decisions) > 0 {
		last := v.Decisions[len(v.Decisions)-1]
		out.Action, out.Reason, out.PassID = last.Action, last.Reason, last.PassID
	}
	return created.ID, out, nil
}

// indexRegistration notes the host on the invite's visit and lists the
// invite among the host's registrations; both are idempotent, done by
// whichever of the POST's answer and invite_created comes first, and
// again by the other.
func (s *Service) indexRegistration(ctx context.Context, location, host, inviteID string, arrival time.Time) error {
	if err := s.noteHost(ctx, inviteID, host); err != nil {
		return fmt.Errorf("visitor: note the host of %s: %w", inviteID, err)
	}
	if err := s.store.AddRegistration(ctx, location, host, inviteID, arrival, s.cfg.Retention); err != nil {
		return fmt.Errorf("visitor: remember registration for %s: %w", host, err)
	}
	return nil
}

// forgetTag removes a tag whose invite was not created, even when the
// request's context has ended; if that fails too, the tag expires.
func (s *Service) forgetTag(ctx context.Context, tag string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.store.DeleteTag(ctx, tag); err != nil {
		s.log.WarnContext(ctx, "visitor: cannot remove a failed registration's tag; it expires", "err", err)
	}
}

// envoyFailed logs why Envoy failed, for the manager, and returns the
// tile's error.
func (s *Service) envoyFailed(ctx context.Context, what, location string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("visitor: Envoy: %s: %w", what, ctx.Err())
	}
	s.log.WarnContext(ctx, "visitor: Envoy failed a tile request", "call", what, "location", location, "err", err)
	return fmt.Errorf("%w (Envoy could not %s)", ErrEnvoyUnavailable, what)
}

// retry runs call, each try bounded by AccessTimeout, until it succeeds,
// fails for good, or envoyAttempts tries were made. idempotent says that
// a try whose answer was lost may be repeated; a creation is repeated only
// when Envoy cannot have made it (see retryable).
func (s *Service) retry(ctx context.Context, idempotent bool, call func(context.Context) error) error {
	wait := envoyBackoff
	for attempt := 1; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, s.cfg.AccessTimeout)
		err := call(tctx)
		cancel()
		if err == nil || attempt == envoyAttempts || ctx.Err() != nil || !retryable(err, idempotent) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// retryable reports whether an Envoy call that failed with err may be
// tried again: Envoy busy (429) or unavailable (502, 503, 504), or the
// connection refused; and, for an idempotent call, any other server
// error, a transport failure or a try that timed out. A creation that
// timed out or got a 500 is not repeated: Envoy may have made the invite,
// and a second one would be a second pass.
func retryable(err error, idempotent bool) bool {
	var api *envoyapi.APIError
	if errors.As(err, &api) {
		switch api.HTTPStatus {
		case 429, 502, 503, 504:
			return true
		}
		return idempotent && api.Temporary()
	}
	if errors.Is(err, envoyapi.ErrUnauthorized) || errors.Is(err, envoyapi.ErrNotFound) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return idempotent
}

func newTag() (string, error) {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("visitor: correlation tag: %w", err)
	}
	return "ckt-" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:])), nil
}

// fromTile completes an Envoy invite event with the tile registration its
// tag names: the contact details Envoy's payload lacks (the phone), the
// tenant building's name, and who registered it. host is "" for an
// invite not from the tile (no tag, an unknown or expired one, or one of
// another location). A store failure is an error, so that Envoy
// redelivers the event rather than the pass going without its phone.
func (s *Service) fromTile(ctx context.Context, ev *envoy.Event) (host string, err error) {
	tag := envoyapi.Tag(ev.Payload)
	if tag == "" {
		return "", nil
	}
	b, ok, err := s.store.Tag(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("visitor: read the tile registration of invite %s: %w", ev.ID, err)
	}
	var t tileTag
	if !ok || json.Unmarshal(b, &t) != nil || t.Location != ev.Location.ID || t.Host == "" {
		return "", nil
	}
	if ev.FullName == "" {
		ev.FullName = t.Name
	}
	if ev.Email == "" {
		ev.Email = t.Email
	}
	if ev.Phone == "" {
		ev.Phone = t.Phone
	}
	if t.BuildingName != "" {
		ev.Location.Name = t.BuildingName
	}
	return t.Host, nil
}

// onEnvoyInvite handles invite_created and invite_updated: an invite from
// the tile is completed by its tag and registered under its host; then
// the invite takes the path of any Envoy invite.
func (s *Service) onEnvoyInvite(ctx context.Context, ev envoy.Event, out Outcome) (Outcome, error) {
	host, err := s.fromTile(ctx, &ev)
	if err != nil {
		return out, err
	}
	if host == "" {
		return s.onInvite(ctx, ev, out)
	}
	res, err := s.invite(WithActor(ctx, "tile:"+host), ev, out, false, host)
	if err != nil {
		return res, err
	}
	if err := s.indexRegistration(ctx, ev.Location.ID, host, ev.ID, ev.ExpectedArrival); err != nil {
		return res, err
	}
	return res, nil
}

// cancelInEnvoy deletes a tile registration's invite in Envoy, when its
// location is connected, before Cancel ends the pass: an invite already
// gone is done. cloudkey's own registrations (made without Envoy) have
// nothing there.
func (s *Service) cancelInEnvoy(ctx context.Context, location, inviteID string) error {
	if strings.HasPrefix(inviteID, inviteIDPrefix) {
		return nil
	}
	st, ok, err := s.loadSettings(ctx, location)
	if err != nil || !ok {
		return err
	}
	inv, ok := s.envoyFor(st.Property, location)
	if !ok {
		return nil
	}
	err = s.retry(ctx, true, func(ctx context.Context) error { return inv.DeleteInvite(ctx, inviteID) })
	if err != nil && !errors.Is(err, envoyapi.ErrNotFound) {
		return s.envoyFailed(ctx, "cancel the invite", location, err)
	}
	return nil
}
