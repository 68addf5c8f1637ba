package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/tenant"
)

func (s *adminServer) SetBuilding(ctx context.Context, req *pb.SetBuildingRequest) (*pb.SetBuildingResponse, error) {
	property, err := s.propertyOf(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	if s.buildings == nil {
		return nil, status.Error(codes.FailedPrecondition, "buildings are not configured")
	}
	b, err := s.buildings.Put(ctx, tenant.Building{
		ID: req.GetBuildingId(), Name: req.GetBuilding().GetName(),
		LocationID: req.GetBuilding().GetLocationId(), Org: s.tenantScope(property),
	})
	if err != nil {
		return nil, failing("", "building", err)
	}
	return &pb.SetBuildingResponse{Building: buildingPB(b, property)}, nil
}

func (s *adminServer) ListBuildings(ctx context.Context, req *pb.ListBuildingsRequest) (*pb.ListBuildingsResponse, error) {
	property, err := s.propertyOf(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	if s.buildings == nil {
		return nil, status.Error(codes.FailedPrecondition, "buildings are not configured")
	}
	bs, err := s.buildings.List(ctx, s.tenantScope(property))
	if err != nil {
		return nil, failing("", "", err)
	}
	out := &pb.ListBuildingsResponse{}
	for _, b := range bs {
		out.Buildings = append(out.Buildings, buildingPB(b, property))
	}
	return out, nil
}

func buildingPB(b tenant.Building, property string) *pb.Building {
	return &pb.Building{BuildingId: b.ID, Name: b.Name, LocationId: b.LocationID, Org: tenant.ScopeOrg(b.Org), Property: property}
}

// tenantScope is where property's contacts and buildings are kept.
func (s *adminServer) tenantScope(property string) string {
	return tenant.PropertyScope(property, s.property, s.org)
}
