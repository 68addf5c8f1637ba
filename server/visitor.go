package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/visitor"
)

// adminServer adapts visitor settings to AdminService.
type adminServer struct {
	pb.UnimplementedAdminServiceServer
	visitors  *visitor.Service
	cache     CacheAdmin
	audit     AuditReader
	contacts  *tenant.Store
	buildings *tenant.Buildings
	org       string // the organisation this cloudkey serves
}

// authorize refuses keys of other organisations and checks the location.
func (s *adminServer) authorize(ctx context.Context, location string) error {
	if err := s.checkOrg(ctx); err != nil {
		return err
	}
	if strings.TrimSpace(location) == "" {
		return badField("location_id", "must not be empty")
	}
	if s.visitors == nil {
		return status.Error(codes.FailedPrecondition, "visitor integration is not configured")
	}
	return nil
}

func (s *adminServer) GetVisitorSettings(ctx context.Context, req *pb.GetVisitorSettingsRequest) (*pb.GetVisitorSettingsResponse, error) {
	if err := s.authorize(ctx, req.GetLocationId()); err != nil {
		return nil, err
	}
	st, err := s.visitors.Settings(ctx, req.GetLocationId())
	if errors.Is(err, visitor.ErrNoSettings) {
		return nil, withDetails(codes.NotFound, err.Error(), info("NO_SETTINGS", "location_id", req.GetLocationId()))
	}
	if err != nil {
		return nil, err
	}
	return &pb.GetVisitorSettingsResponse{Settings: settingsPB(st)}, nil
}

func (s *adminServer) UpdateVisitorSettings(ctx context.Context, req *pb.UpdateVisitorSettingsRequest) (*pb.UpdateVisitorSettingsResponse, error) {
	if err := s.authorize(ctx, req.GetLocationId()); err != nil {
		return nil, err
	}
	if req.GetSettings() == nil {
		return nil, badField("settings", "must be given")
	}
	res, err := s.visitors.UpdateSettings(ctx, req.GetLocationId(), settingsFromPB(req.GetSettings()))
	out := updateResultPB(res)
	var invalid *visitor.InvalidSettingsError
	if errors.As(err, &invalid) {
		// The whole Rhombus-style answer travels as a status detail, with
		// the failed ids as field violations.
		br := &errdetails.BadRequest{}
		for _, id := range res.FailedIDs {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: id, Description: res.ErrorMsg})
		}
		for _, m := range res.MisconfiguredEntries {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: "settings.entries." + m.EntryID, Description: m.Reason})
		}
		st, derr := status.New(codes.InvalidArgument, "settings not saved: "+res.ErrorMsg).WithDetails(br, out)
		if derr != nil {
			return nil, status.Error(codes.InvalidArgument, "settings not saved: "+res.ErrorMsg)
		}
		return nil, st.Err()
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

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

func badField(field, reason string) error {
	return withDetails(codes.InvalidArgument, fmt.Sprintf("%s: %s", field, reason), &errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: reason}},
	})
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

func settingsPB(st visitor.Settings) *pb.VisitorSettings {
	out := &pb.VisitorSettings{
		InviteOnly:             st.InviteOnly,
		AdvanceAccess:          durationpb.New(st.AdvanceAccess),
		AccessDuration:         durationpb.New(st.AccessDuration),
		BlockedVisitorTypes:    st.BlockedVisitorTypes,
		LogoUrl:                st.LogoURL,
		AdditionalInstructions: st.Instructions,
		TimeZone:               st.TimeZone,
		Protect: &pb.ProtectSettings{
			Enabled:                st.Protect.Enabled,
			EmployeeAccessDuration: durationpb.New(st.Protect.EmployeeAccessDuration),
			ExcludedEmployees:      st.Protect.ExcludedEmployees,
		},
	}
	if !st.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(st.UpdatedAt)
	}
	for _, m := range st.Entries {
		out.Entries = append(out.Entries, &pb.EntryVisitorTypes{EntryId: m.EntryID, VisitorTypes: m.VisitorTypes, Name: m.Name})
	}
	return out
}

func settingsFromPB(in *pb.VisitorSettings) visitor.Settings {
	st := visitor.Settings{
		InviteOnly:          in.GetInviteOnly(),
		AdvanceAccess:       in.GetAdvanceAccess().AsDuration(),
		AccessDuration:      in.GetAccessDuration().AsDuration(),
		BlockedVisitorTypes: in.GetBlockedVisitorTypes(),
		LogoURL:             in.GetLogoUrl(),
		Instructions:        in.GetAdditionalInstructions(),
		TimeZone:            in.GetTimeZone(),
		Protect: visitor.ProtectSettings{
			Enabled:                in.GetProtect().GetEnabled(),
			EmployeeAccessDuration: in.GetProtect().GetEmployeeAccessDuration().AsDuration(),
			ExcludedEmployees:      in.GetProtect().GetExcludedEmployees(),
		},
	}
	for _, e := range in.GetEntries() {
		st.Entries = append(st.Entries, visitor.EntryMapping{EntryID: e.GetEntryId(), VisitorTypes: e.GetVisitorTypes()})
	}
	return st
}

func updateResultPB(r visitor.UpdateResult) *pb.UpdateVisitorSettingsResponse {
	out := &pb.UpdateVisitorSettingsResponse{
		Error: r.Error, ErrorMsg: r.ErrorMsg, Warnings: r.Warnings, FailedIds: r.FailedIDs,
	}
	for _, m := range r.MisconfiguredEntries {
		out.MisconfiguredEntries = append(out.MisconfiguredEntries, &pb.MisconfiguredEntry{EntryId: m.EntryID, Reason: m.Reason})
	}
	if !r.Error {
		out.Settings = settingsPB(r.Settings)
	}
	return out
}
