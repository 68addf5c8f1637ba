package server

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/visitor"
)

// guestServer adapts guest passes to GuestService.
type guestServer struct {
	pb.UnimplementedGuestServiceServer
	visitors *visitor.Service
}

func (s *guestServer) GetPass(ctx context.Context, req *pb.GetPassRequest) (*pb.GetPassResponse, error) {
	if s.visitors == nil {
		return nil, status.Error(codes.FailedPrecondition, "visitor integration is not configured")
	}
	v, err := s.visitors.PassView(ctx, req.GetToken())
	if err != nil {
		return nil, err
	}
	return passPB(v), nil
}

func (s *guestServer) GuestUnlock(ctx context.Context, req *pb.GuestUnlockRequest) (*pb.GuestUnlockResponse, error) {
	if s.visitors == nil {
		return nil, status.Error(codes.FailedPrecondition, "visitor integration is not configured")
	}
	if strings.TrimSpace(req.GetEntryId()) == "" {
		return nil, badField("entry_id", "must not be empty")
	}
	r, err := s.visitors.GuestUnlock(ctx, req.GetToken(), req.GetEntryId())
	if err != nil {
		return nil, err
	}
	return &pb.GuestUnlockResponse{Result: &pb.UnlockResult{
		EntryId: r.EntryID, Status: unlockStatusPB[r.Status], Message: r.Message, LatencyMs: r.Latency.Milliseconds(),
	}}, nil
}

var passStatePB = map[visitor.State]pb.PassState{
	visitor.StateUpcoming: pb.PassState_PASS_STATE_UPCOMING,
	visitor.StateActive:   pb.PassState_PASS_STATE_ACTIVE,
	visitor.StateEnded:    pb.PassState_PASS_STATE_ENDED,
}

func passPB(v visitor.View) *pb.GetPassResponse {
	out := &pb.GetPassResponse{
		State: passStatePB[v.State], Message: v.Message, VisitorName: v.VisitorName,
		LocationName: v.LocationName, LogoUrl: v.LogoURL, Instructions: v.Instructions, TimeZone: v.TimeZone,
	}
	if !v.Start.IsZero() {
		out.StartsAt, out.EndsAt = timestamppb.New(v.Start), timestamppb.New(v.End)
	}
	for _, e := range v.Entries {
		out.Entries = append(out.Entries, &pb.GuestEntry{Id: e.ID, Name: e.Name})
	}
	return out
}
