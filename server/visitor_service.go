package server

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/visitor"
)

// MessageTileNotGranted is what a contact without the grant sees.
const MessageTileNotGranted = "Visitor registration is not enabled for your account. Ask your property manager."

// visitorServer adapts tenant contacts and visitor registration to
// VisitorService, the API under the tenant tile.
type visitorServer struct {
	pb.UnimplementedVisitorServiceServer
	visitors  *visitor.Service
	contacts  *tenant.Store
	buildings *tenant.Buildings
	org       string      // the default property's access-system organisation
	property  string      // the default property
	limiter   RateLimiter // nil: no limits
}

// tile is a tile request's building, resolved to its property.
type tile struct {
	property string
	scope    string // the property's tenant scope (tenant.PropertyScope)
	building string
	granted  bool // the caller has the building's tile
}

// tile resolves a tile request's building to its property: the property
// requested, which must be one of the caller's token's; else the token's
// one property (the default property for a token without the claim);
// else, for a token of several, the one where the caller has the
// building's grant (a building id is unique within a property, not
// across them). It checks the caller's grant there.
func (s *visitorServer) tile(ctx context.Context, requested, building string) (tile, error) {
	if s.visitors == nil || s.contacts == nil {
		return tile{}, status.Error(codes.FailedPrecondition, "visitor registration is not configured")
	}
	if strings.TrimSpace(building) == "" {
		return tile{}, badField("building_id", "must not be empty")
	}
	props := callerProperties(ctx)
	if props == nil {
		props = []string{s.property}
	}
	if requested = strings.TrimSpace(requested); requested != "" {
		if !slices.Contains(props, requested) {
			return tile{}, status.Errorf(codes.PermissionDenied, "property: %q is not one of your token's properties", requested)
		}
		props = []string{requested}
	}
	var found []tile
	for _, p := range props {
		t := tile{property: p, scope: tenant.PropertyScope(p, s.property, s.org), building: building}
		ok, err := s.contacts.Granted(ctx, t.scope, callerEmail(ctx), building)
		if err != nil {
			return tile{}, failing("cannot check your access now; try again: ", "building_id", err)
		}
		if t.granted = ok; ok || len(props) == 1 {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0: // a token of several properties, granted at none
		return tile{property: props[0], scope: tenant.PropertyScope(props[0], s.property, s.org), building: building}, nil
	case 1:
		return found[0], nil
	}
	return tile{}, badField("property", "building "+building+" is at several of your properties; name the property")
}

// buildingName is t's building's name for the guest page and messages;
// "" (the property's name is shown instead) when it has none or cannot be
// read now: a name is not worth refusing a registration for.
func (s *visitorServer) buildingName(ctx context.Context, t tile) string {
	if s.buildings == nil {
		return ""
	}
	b, err := s.buildings.Get(ctx, t.scope, t.building)
	if err != nil {
		return ""
	}
	return b.Name
}

// location is the Envoy location whose settings serve t's building.
func (s *visitorServer) location(ctx context.Context, t tile) (string, error) {
	if s.buildings == nil {
		return t.building, nil
	}
	loc, err := s.buildings.Location(ctx, t.scope, t.building)
	if err != nil {
		return "", failing("cannot read the building setup now; try again: ", "building_id", err)
	}
	return loc, nil
}

// mayRegister resolves the request's building and refuses a caller
// without its grant.
func (s *visitorServer) mayRegister(ctx context.Context, requested, building string) (tile, error) {
	t, err := s.tile(ctx, requested, building)
	if err != nil {
		return tile{}, err
	}
	if !t.granted {
		return tile{}, status.Error(codes.PermissionDenied, MessageTileNotGranted)
	}
	return t, nil
}

// notSetUp is what the tile shows at a building without visitor settings.
const notSetUp = "Visitor registration is not set up for this building yet. Ask your property manager."

func (s *visitorServer) GetTile(ctx context.Context, req *pb.GetTileRequest) (*pb.GetTileResponse, error) {
	t, err := s.tile(ctx, req.GetProperty(), req.GetBuildingId())
	if err != nil {
		return nil, err
	}
	if !t.granted {
		return &pb.GetTileResponse{Message: MessageTileNotGranted}, nil
	}
	loc, err := s.location(ctx, t)
	if err != nil {
		return nil, err
	}
	types, err := s.visitors.VisitorTypes(ctx, t.property, loc)
	if errors.Is(err, visitor.ErrNoSettings) || errors.Is(err, visitor.ErrOtherProperty) || (err == nil && len(types) == 0) {
		return &pb.GetTileResponse{Message: notSetUp}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &pb.GetTileResponse{Enabled: true, VisitorTypes: types}
	if c, err := s.contacts.Get(ctx, t.scope, callerEmail(ctx)); err == nil {
		out.ContactName = c.Name
	}
	return out, nil
}

func (s *visitorServer) RegisterVisitor(ctx context.Context, req *pb.RegisterVisitorRequest) (*pb.RegisterVisitorResponse, error) {
	t, err := s.mayRegister(ctx, req.GetProperty(), req.GetBuildingId())
	if err != nil {
		return nil, err
	}
	email, phone := strings.TrimSpace(req.GetEmail()), strings.TrimSpace(req.GetPhone())
	if email != "" {
		if email, err = identity.CanonicalEmail(email); err != nil {
			return nil, badField("email", err.Error())
		}
	}
	if phone != "" {
		if phone, err = tenant.NormalizePhone(phone, "US"); err != nil {
			return nil, badField("phone", err.Error())
		}
	}
	loc, err := s.location(ctx, t)
	if err != nil {
		return nil, err
	}
	types, err := s.visitors.VisitorTypes(ctx, t.property, loc)
	if errors.Is(err, visitor.ErrOtherProperty) {
		return nil, status.Error(codes.FailedPrecondition, notSetUp)
	}
	if err != nil && !errors.Is(err, visitor.ErrNoSettings) {
		return nil, err
	}
	if !containsFold(types, req.GetVisitorType()) {
		return nil, badField("visitor_type", "not one of this building's visitor types: "+strings.Join(types, ", "))
	}
	var arrival time.Time
	if req.GetExpectedArrival() != nil {
		arrival = req.GetExpectedArrival().AsTime()
	}
	// Last before the registration itself: only a granted contact's
	// well-formed registration spends the contact's and the building's
	// budgets, and a refused one issues no pass and sends no link.
	if s.limiter != nil {
		if err := s.limiter.AllowRegistration(ctx, t.property, callerEmail(ctx), t.building); err != nil {
			return nil, err
		}
	}
	id, out, err := s.visitors.Register(ctx, visitor.Registration{
		Property: t.property, Location: loc, FullName: req.GetFullName(), Email: email, Phone: phone,
		VisitorType: req.GetVisitorType(), ExpectedArrival: arrival, Host: callerEmail(ctx),
		BuildingName: s.buildingName(ctx, t),
	})
	if err != nil {
		return nil, err
	}
	return &pb.RegisterVisitorResponse{
		Action: string(out.Action), Reason: out.Reason,
		Visitor: &pb.Visitor{
			Id: id, FullName: req.GetFullName(), Email: email, Phone: phone, VisitorType: req.GetVisitorType(),
			ExpectedArrival: req.GetExpectedArrival(), State: visitState(nil, out.Action == visitor.ActionIssued),
		},
	}, nil
}

func (s *visitorServer) ListMyVisitors(ctx context.Context, req *pb.ListMyVisitorsRequest) (*pb.ListMyVisitorsResponse, error) {
	t, err := s.mayRegister(ctx, req.GetProperty(), req.GetBuildingId())
	if err != nil {
		return nil, err
	}
	loc, err := s.location(ctx, t)
	if err != nil {
		return nil, err
	}
	regs, err := s.visitors.Registrations(ctx, loc, callerEmail(ctx), time.Now().Add(-12*time.Hour))
	if err != nil {
		return nil, err
	}
	out := &pb.ListMyVisitorsResponse{}
	for _, r := range regs {
		out.Visitors = append(out.Visitors, visitorPB(r.InviteID, r.Visit))
	}
	return out, nil
}

func (s *visitorServer) CancelVisitor(ctx context.Context, req *pb.CancelVisitorRequest) (*pb.CancelVisitorResponse, error) {
	t, err := s.mayRegister(ctx, req.GetProperty(), req.GetBuildingId())
	if err != nil {
		return nil, err
	}
	loc, err := s.location(ctx, t)
	if err != nil {
		return nil, err
	}
	_, err = s.visitors.Cancel(ctx, loc, callerEmail(ctx), req.GetVisitorId())
	if err != nil {
		return nil, about(err, "visitor_id", req.GetVisitorId())
	}
	v, err := s.visitors.Visit(ctx, req.GetVisitorId(), "")
	if err != nil {
		return nil, err
	}
	return &pb.CancelVisitorResponse{Visitor: visitorPB(req.GetVisitorId(), v)}, nil
}

func visitorPB(id string, v visitor.VisitInfo) *pb.Visitor {
	out := &pb.Visitor{
		Id: id, FullName: v.VisitorName, Email: v.Email, Phone: v.Phone, VisitorType: v.VisitorType,
		State: visitState(&v, v.Pass != nil),
	}
	if !v.ExpectedArrival.IsZero() {
		out.ExpectedArrival = timestamppb.New(v.ExpectedArrival)
	}
	return out
}

func visitState(v *visitor.VisitInfo, hasPass bool) string {
	switch {
	case !hasPass:
		return "NO_PASS"
	case v == nil:
		return string(visitor.StateUpcoming)
	case v.Ended:
		return string(visitor.StateEnded)
	}
	return string(v.Pass.State)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, strings.TrimSpace(s)) {
			return true
		}
	}
	return false
}
