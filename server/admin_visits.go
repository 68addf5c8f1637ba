package server

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/visitor"
)

// ApproveVisit releases a visit held by Envoy's block list review, as a
// manager's decision (visitor.Service.Approve).
func (s *adminServer) ApproveVisit(ctx context.Context, req *pb.ApproveVisitRequest) (*pb.ApproveVisitResponse, error) {
	property, err := s.authorize(ctx, req.GetProperty(), req.GetLocationId())
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.GetEntryId()) == "" {
		return nil, badField("entry_id", "must not be empty")
	}
	out, err := s.visitors.Approve(ctx, property, req.GetLocationId(), req.GetEntryId())
	switch {
	case errors.Is(err, visitor.ErrNotHeld):
		return nil, status.Error(codes.FailedPrecondition, "entry_id: the visit is not held for block-list review, so there is nothing to approve")
	case errors.Is(err, visitor.ErrNoVisit):
		return nil, status.Error(codes.NotFound, "entry_id: no visit is known for this entry at this location")
	case err != nil:
		return nil, about(err, "location_id", req.GetLocationId())
	}
	return &pb.ApproveVisitResponse{
		Action: string(out.Action), Reason: out.Reason, PassId: out.PassID, InviteId: out.InviteID,
	}, nil
}
