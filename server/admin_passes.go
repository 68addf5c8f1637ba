package server

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/visitor"
)

// The manager's view of guest passes: ListPasses and EndPass.

// passesReady resolves the request's property and checks that visitors
// are served.
func (s *adminServer) passesReady(ctx context.Context, requested string) (string, error) {
	property, err := s.propertyOf(ctx, requested)
	if err != nil {
		return "", err
	}
	if s.visitors == nil {
		return "", status.Error(codes.FailedPrecondition, "visitor integration is not configured")
	}
	return property, nil
}

// adminActor names the calling admin key in audit records and end
// reasons: its name and id (never the key).
func adminActor(ctx context.Context) string {
	k, _ := callerAdmin(ctx)
	return "admin:" + k.Name + "/" + k.ID
}

var passStates = map[string]visitor.State{
	"": "", "UPCOMING": visitor.StateUpcoming, "ACTIVE": visitor.StateActive, "ENDED": visitor.StateEnded,
}

func (s *adminServer) ListPasses(ctx context.Context, req *pb.ListPassesRequest) (*pb.ListPassesResponse, error) {
	property, err := s.passesReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	q := visitor.PassQuery{
		Property: property, Location: strings.TrimSpace(req.GetLocationId()),
		Limit: int(req.GetPageSize()), Cursor: req.GetPageToken(),
	}
	state, ok := passStates[strings.ToUpper(strings.TrimSpace(req.GetState()))]
	if !ok {
		return nil, badField("state", "must be UPCOMING, ACTIVE or ENDED")
	}
	q.State = state
	if q.Limit < 0 || q.Limit > visitor.MaxPassPage {
		return nil, badField("page_size", "must be 1 to 200")
	}
	if req.GetFrom() != nil {
		q.From = req.GetFrom().AsTime()
	}
	if req.GetTo() != nil {
		q.To = req.GetTo().AsTime()
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.To.After(q.From) {
		return nil, badField("to", "must be after from")
	}
	scope := s.tenantScope(property)
	if b := strings.TrimSpace(req.GetBuildingId()); b != "" {
		if q.Location != "" {
			return nil, badField("building_id", "give a location_id or a building_id, not both")
		}
		if s.buildings == nil {
			return nil, badField("building_id", "buildings are not configured")
		}
		if q.Location, err = s.buildings.Location(ctx, scope, b); err != nil {
			return nil, failing("buildings: ", "building_id", err)
		}
	}
	page, err := s.visitors.ListPasses(ctx, q)
	switch {
	case errors.Is(err, visitor.ErrBadPassQuery):
		return nil, badField("page_token", "not one ListPasses returned")
	case err != nil:
		return nil, about(err, "location_id", q.Location)
	}
	buildings, err := s.buildingsByLocation(ctx, scope)
	if err != nil {
		return nil, err
	}
	out := &pb.ListPassesResponse{NextPageToken: page.Next}
	for _, p := range page.Passes {
		out.Passes = append(out.Passes, guestPassPB(p, buildings[p.Location]))
	}
	return out, nil
}

func (s *adminServer) EndPass(ctx context.Context, req *pb.EndPassRequest) (*pb.EndPassResponse, error) {
	property, err := s.passesReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	id := strings.TrimSpace(req.GetPassId())
	if id == "" || len(id) > 64 {
		return nil, badField("pass_id", "must be a pass id from ListPasses")
	}
	p, err := s.visitors.EndPass(ctx, property, id, adminActor(ctx))
	switch {
	case errors.Is(err, visitor.ErrNoVisit):
		return nil, status.Errorf(codes.NotFound, "pass_id: no pass %q at this property", id)
	case err != nil:
		return nil, failing("visitors: ", "pass_id", err)
	}
	buildings, err := s.buildingsByLocation(ctx, s.tenantScope(property))
	if err != nil {
		return nil, err
	}
	return &pb.EndPassResponse{Pass: guestPassPB(p, buildings[p.Location])}, nil
}

// buildingsByLocation maps Envoy locations to the ids of the buildings
// set up on them (a building without a location is its own).
func (s *adminServer) buildingsByLocation(ctx context.Context, scope string) (map[string][]string, error) {
	out := map[string][]string{}
	if s.buildings == nil {
		return out, nil
	}
	list, err := s.buildings.List(ctx, scope)
	if err != nil {
		return nil, failing("buildings: ", "", err)
	}
	for _, b := range list {
		loc := b.LocationID
		if loc == "" {
			loc = b.ID
		}
		out[loc] = append(out[loc], b.ID)
	}
	return out, nil
}

func guestPassPB(p visitor.PassSummary, buildings []string) *pb.GuestPass {
	out := &pb.GuestPass{
		PassId: p.PassID, VisitorName: p.VisitorName, VisitorType: p.VisitorType, Host: p.Host,
		LocationId: p.Location, LocationName: p.LocationName, BuildingIds: buildings,
		Start: timestamppb.New(p.Start), End: timestamppb.New(p.End), IssuedAt: timestamppb.New(p.IssuedAt),
		State: string(p.State), IssuedVia: string(p.Issued), Property: p.Property,
		Delivery:  &pb.PassDelivery{State: string(p.Delivery.State), Channel: p.Delivery.Channel, Error: p.Delivery.Error},
		EndReason: p.EndReason, EnvoyHost: p.EnvoyHost, EnvoyHostEmail: p.EnvoyHostEmail,
	}
	if !p.EndedAt.IsZero() {
		out.EndedAt = timestamppb.New(p.EndedAt)
	}
	for _, e := range p.Entries {
		out.Doors = append(out.Doors, &pb.PassDoor{EntryId: e.ID, Name: e.Name})
	}
	return out
}
