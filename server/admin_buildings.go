package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/tenant"
)

func (s *adminServer) SetBuilding(ctx context.Context, req *pb.SetBuildingRequest) (*pb.SetBuildingResponse, error) {
	if err := s.checkOrg(ctx); err != nil {
		return nil, err
	}
	if s.buildings == nil {
		return nil, status.Error(codes.FailedPrecondition, "buildings are not configured")
	}
	b, err := s.buildings.Put(ctx, tenant.Building{
		ID: req.GetBuildingId(), Name: req.GetBuilding().GetName(),
		LocationID: req.GetBuilding().GetLocationId(), Org: s.org,
	})
	if err != nil {
		return nil, failing("", "building", err)
	}
	return &pb.SetBuildingResponse{Building: buildingPB(b)}, nil
}

func (s *adminServer) ListBuildings(ctx context.Context, _ *pb.ListBuildingsRequest) (*pb.ListBuildingsResponse, error) {
	if err := s.checkOrg(ctx); err != nil {
		return nil, err
	}
	if s.buildings == nil {
		return nil, status.Error(codes.FailedPrecondition, "buildings are not configured")
	}
	bs, err := s.buildings.List(ctx, s.org)
	if err != nil {
		return nil, failing("", "", err)
	}
	out := &pb.ListBuildingsResponse{}
	for _, b := range bs {
		out.Buildings = append(out.Buildings, buildingPB(b))
	}
	return out, nil
}

func buildingPB(b tenant.Building) *pb.Building {
	return &pb.Building{BuildingId: b.ID, Name: b.Name, LocationId: b.LocationID, Org: b.Org}
}
