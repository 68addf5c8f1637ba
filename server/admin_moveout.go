package server

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/unlock"
)

// The move-out policy (roster/moveout): its settings, a dry run and a run
// now. The scheduled runs are the runner's caller's (setup).

// moveOutReady resolves the request's property and checks that the
// policy is served.
func (s *adminServer) moveOutReady(ctx context.Context, requested string) (string, error) {
	property, err := s.propertyOf(ctx, requested)
	if err != nil {
		return "", err
	}
	if s.moveouts == nil {
		return "", status.Error(codes.FailedPrecondition, "the move-out policy is not configured (it needs Redis and the access systems)")
	}
	return property, nil
}

func (s *adminServer) GetMoveOutPolicy(ctx context.Context, req *pb.GetMoveOutPolicyRequest) (*pb.GetMoveOutPolicyResponse, error) {
	property, err := s.moveOutReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	p, ok, err := s.moveouts.Store().Policy(ctx, property)
	if err != nil {
		return nil, failing("move-out policy: ", "", err)
	}
	return &pb.GetMoveOutPolicyResponse{Policy: moveOutPolicyPB(p), IsDefault: !ok}, nil
}

func (s *adminServer) SetMoveOutPolicy(ctx context.Context, req *pb.SetMoveOutPolicyRequest) (*pb.SetMoveOutPolicyResponse, error) {
	property, err := s.moveOutReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	if req.Mode == nil && req.GraceDays == nil && req.Cutoff == nil && req.MaxSuspendShare == nil {
		return nil, badField("mode", "set at least one of mode, grace_days, cutoff and max_suspend_share")
	}
	store := s.moveouts.Store()
	p, _, err := store.Policy(ctx, property)
	if err != nil {
		return nil, failing("move-out policy: ", "", err)
	}
	if req.Mode != nil {
		if p.Mode, err = moveout.ParseMode(req.GetMode()); err != nil {
			return nil, failing("move-out policy: ", "mode", err)
		}
	}
	if req.GraceDays != nil {
		p.GraceDays = int(req.GetGraceDays())
	}
	if req.Cutoff != nil {
		if p.Cutoff, err = moveout.ParseCutoff(req.GetCutoff()); err != nil {
			return nil, failing("move-out policy: ", "cutoff", err)
		}
	}
	if req.MaxSuspendShare != nil {
		p.MaxSuspendShare = req.GetMaxSuspendShare()
	}
	before, existed, err := store.SetPolicy(ctx, property, p, time.Now())
	if err != nil {
		return nil, failing("move-out policy: ", "", err)
	}
	after, _, err := store.Policy(ctx, property)
	if err != nil {
		return nil, failing("move-out policy: ", "", err)
	}
	s.record(ctx, property, unlock.KindSettingsChanged, "moveout-policy", "move-out policy: "+policyChanges(before, after, existed))
	return &pb.SetMoveOutPolicyResponse{Policy: moveOutPolicyPB(after), Previous: moveOutPolicyPB(before)}, nil
}

// policyChanges says which fields changed: "mode: report → auto".
func policyChanges(before, after moveout.Policy, existed bool) string {
	fields := func(p moveout.Policy) [][2]string {
		return [][2]string{{"mode", string(p.Mode)}, {"grace_days", strconv.Itoa(p.GraceDays)}, {"cutoff", p.CutoffString()},
			{"max_suspend_share", strconv.FormatFloat(p.MaxSuspendShare, 'f', -1, 64)}}
	}
	was, now := fields(before), fields(after)
	var parts []string
	for i := range now {
		if was[i][1] != now[i][1] {
			parts = append(parts, fmt.Sprintf("%s: %s → %s", now[i][0], was[i][1], now[i][1]))
		}
	}
	msg := strings.Join(parts, "; ")
	if msg == "" {
		msg = "no change"
	}
	if !existed {
		msg += " (from the default)"
	}
	return msg
}

func (s *adminServer) PlanMoveOuts(ctx context.Context, req *pb.PlanMoveOutsRequest) (*pb.PlanMoveOutsResponse, error) {
	property, err := s.moveOutReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, reportDeadline)
	defer cancel()
	r, err := s.moveouts.Run(ctx, property, true)
	if err != nil {
		return nil, failing("move-out plan: ", "", err)
	}
	return &pb.PlanMoveOutsResponse{Run: moveOutRunPB(r)}, nil
}

func (s *adminServer) RunMoveOuts(ctx context.Context, req *pb.RunMoveOutsRequest) (*pb.RunMoveOutsResponse, error) {
	property, err := s.moveOutReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	// The run goes on if the caller leaves: stopping between a
	// suspension and its record would forget who cloudkey suspended.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), moveout.DefaultLockTTL)
	defer cancel()
	r, err := s.moveouts.Run(ctx, property, false)
	if err != nil {
		return nil, failing("move-out run: ", "", err)
	}
	return &pb.RunMoveOutsResponse{Run: moveOutRunPB(r)}, nil
}

// runMoveOutsAfterImport runs the property's policy once a roster import
// is stored, when the policy is auto (a report-mode run would only
// compute a plan no one reads). Its failure does not fail the import:
// the scheduled runs try again.
func (s *adminServer) runMoveOutsAfterImport(ctx context.Context, property string) {
	if s.moveouts == nil {
		return
	}
	p, _, err := s.moveouts.Store().Policy(ctx, property)
	if err != nil || p.Mode != moveout.ModeAuto {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), moveout.DefaultLockTTL)
	defer cancel()
	r, err := s.moveouts.Run(ctx, property, false)
	if err != nil {
		s.log.Warn("move-out run after a roster import failed", "property", property, "err", err)
		return
	}
	s.log.Info("move-out run after a roster import", "property", property, "roster_version", r.RosterVersion,
		"changes", len(r.Changes), "failed", r.Failed, "guard_tripped", r.Guard.Tripped)
}

func moveOutPolicyPB(p moveout.Policy) *pb.MoveOutPolicy {
	out := &pb.MoveOutPolicy{Mode: string(p.Mode), GraceDays: int32(p.GraceDays), Cutoff: p.CutoffString(), MaxSuspendShare: p.MaxSuspendShare}
	if !p.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(p.UpdatedAt)
	}
	return out
}

func moveOutRunPB(r moveout.Result) *pb.MoveOutRun {
	out := &pb.MoveOutRun{
		Property: r.Property, Policy: moveOutPolicyPB(r.Policy), DryRun: r.DryRun, Applied: r.Applied, At: timestamppb.New(r.At),
		TimeZone: r.TimeZone, RosterVersion: int32(r.RosterVersion), Skipped: r.Skipped, Failed: int32(r.Failed),
		Guard:   &pb.MoveOutGuard{Tripped: r.Guard.Tripped, Suspensions: int32(r.Guard.Suspensions), Allowed: int32(r.Guard.Allowed), Linked: int32(r.Guard.Linked)},
		Changes: moveOutChangesPB(r.Changes), Held: moveOutChangesPB(r.Held), Pending: moveOutChangesPB(r.Pending),
	}
	for _, o := range r.Overrides {
		out.Overrides = append(out.Overrides, &pb.MoveOutOverride{PersonKey: o.PersonKey, Name: o.Name, Unit: o.Unit,
			Connection: o.Connection, UserId: o.UserID, Email: o.Email, SuspendedAt: timestamppb.New(o.SuspendedAt), Reason: o.Reason})
	}
	return out
}

func moveOutChangesPB(cs []moveout.Change) []*pb.MoveOutChange {
	out := make([]*pb.MoveOutChange, 0, len(cs))
	for _, c := range cs {
		m := &pb.MoveOutChange{Action: string(c.Action), PersonKey: c.PersonKey, Name: c.Name, Unit: c.Unit, Connection: c.Connection,
			UserId: c.UserID, Email: c.Email, Reason: c.Reason, RosterVersion: int32(c.RosterVersion), Done: c.Done, Error: c.Error}
		if !c.Due.IsZero() {
			m.Due = timestamppb.New(c.Due)
		}
		out = append(out, m)
	}
	return out
}
