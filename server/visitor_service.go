package server

import (
	"context"
	"errors"
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
	org       string
	limiter   RateLimiter // nil: no limits
}

// location is the Envoy location whose settings serve building.
func (s *visitorServer) location(ctx context.Context, building string) (string, error) {
	if s.buildings == nil {
		return building, nil
	}
	loc, err := s.buildings.Location(ctx, s.org, building)
	if err != nil {
		return "", failing("cannot read the building setup now; try again: ", "building_id", err)
	}
	return loc, nil
}

func (s *visitorServer) ready(building string) error {
	if s.visitors == nil || s.contacts == nil {
		return status.Error(codes.FailedPrecondition, "visitor registration is not configured")
	}
	if strings.TrimSpace(building) == "" {
		return badField("building_id", "must not be empty")
	}
	return nil
}

// granted checks the caller's grant for building.
func (s *visitorServer) granted(ctx context.Context, building string) (bool, error) {
	ok, err := s.contacts.Granted(ctx, s.org, callerEmail(ctx), building)
	if err != nil {
		return false, failing("cannot check your access now; try again: ", "building_id", err)
	}
	return ok, nil
}

// mayRegister refuses a caller without the grant for building.
func (s *visitorServer) mayRegister(ctx context.Context, building string) error {
	if err := s.ready(building); err != nil {
		return err
	}
	ok, err := s.granted(ctx, building)
	if err != nil {
		return err
	}
	if !ok {
		return status.Error(codes.PermissionDenied, MessageTileNotGranted)
	}
	return nil
}

func (s *visitorServer) GetTile(ctx context.Context, req *pb.GetTileRequest) (*pb.GetTileResponse, error) {
	if err := s.ready(req.GetBuildingId()); err != nil {
		return nil, err
	}
	ok, err := s.granted(ctx, req.GetBuildingId())
	if err != nil {
		return nil, err
	}
	if !ok {
		return &pb.GetTileResponse{Message: MessageTileNotGranted}, nil
	}
	loc, err := s.location(ctx, req.GetBuildingId())
	if err != nil {
		return nil, err
	}
	types, err := s.visitors.VisitorTypes(ctx, loc)
	if errors.Is(err, visitor.ErrNoSettings) || (err == nil && len(types) == 0) {
		return &pb.GetTileResponse{Message: "Visitor registration is not set up for this building yet. Ask your property manager."}, nil
	}
	if err != nil {
		return nil, err
	}
	out := &pb.GetTileResponse{Enabled: true, VisitorTypes: types}
	if c, err := s.contacts.Get(ctx, s.org, callerEmail(ctx)); err == nil {
		out.ContactName = c.Name
	}
	return out, nil
}

func (s *visitorServer) RegisterVisitor(ctx context.Context, req *pb.RegisterVisitorRequest) (*pb.RegisterVisitorResponse, error) {
	if err := s.mayRegister(ctx, req.GetBuildingId()); err != nil {
		return nil, err
	}
	email, phone := strings.TrimSpace(req.GetEmail()), strings.TrimSpace(req.GetPhone())
	var err error
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
	loc, err := s.location(ctx, req.GetBuildingId())
	if err != nil {
		return nil, err
	}
	types, err := s.visitors.VisitorTypes(ctx, loc)
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
		if err := s.limiter.AllowRegistration(ctx, callerEmail(ctx), req.GetBuildingId()); err != nil {
			return nil, err
		}
	}
	id, out, err := s.visitors.Register(ctx, visitor.Registration{
		Location: loc, FullName: req.GetFullName(), Email: email, Phone: phone,
		VisitorType: req.GetVisitorType(), ExpectedArrival: arrival, Host: callerEmail(ctx),
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
	if err := s.mayRegister(ctx, req.GetBuildingId()); err != nil {
		return nil, err
	}
	loc, err := s.location(ctx, req.GetBuildingId())
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
	if err := s.mayRegister(ctx, req.GetBuildingId()); err != nil {
		return nil, err
	}
	loc, err := s.location(ctx, req.GetBuildingId())
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
