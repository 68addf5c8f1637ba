package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

// RosterDirectories gives a property's access systems, as reconciliation
// reads them (setup's live properties).
type RosterDirectories interface {
	// Directories returns the property's IANA time zone ("" for UTC) and
	// each of its connections' directories; ok is false when the property
	// is not served.
	Directories(property string) (timeZone string, conns []reconcile.Connection, ok bool)
}

// maxRosterBody bounds a roster CSV over the admin API (the gateway's
// bound too).
const maxRosterBody = maxImportBody

// reportDeadline bounds reading every access system's users for a
// report (a large Openpath organisation needs one request per user).
const reportDeadline = 5 * time.Minute

// rosterReady resolves the request's property and checks that rosters are
// served.
func (s *adminServer) rosterReady(ctx context.Context, requested string) (string, error) {
	property, err := s.propertyOf(ctx, requested)
	if err != nil {
		return "", err
	}
	if s.rosters == nil {
		return "", status.Error(codes.FailedPrecondition, "rosters are not configured (they need Redis)")
	}
	return property, nil
}

func (s *adminServer) ImportRoster(ctx context.Context, req *pb.ImportRosterRequest) (*pb.ImportRosterResponse, error) {
	property, err := s.rosterReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	data := req.GetCsv().GetData()
	switch {
	case len(data) == 0:
		return nil, badField("csv", "empty: send the roster CSV as the body (Content-Type: text/csv)")
	case len(data) > maxRosterBody:
		return nil, badField("csv", fmt.Sprintf("larger than %d bytes", maxRosterBody))
	}
	im, err := roster.ParseCSV(bytes.NewReader(data), roster.CSVOptions{})
	if err != nil {
		return nil, badField("csv", err.Error())
	}
	out := &pb.ImportRosterResponse{HeaderLine: int32(im.HeaderLine), Rows: int32(im.Rows), People: int32(len(im.People)), DryRun: req.GetDryRun()}
	for _, i := range im.Issues {
		out.Issues = append(out.Issues, &pb.RosterIssue{Line: int32(i.Line), Kind: string(i.Kind), Skipped: i.Skipped, Reason: i.Reason})
	}
	if len(im.People) == 0 {
		return nil, rosterRefused(im.Issues, out)
	}
	if req.GetDryRun() {
		return out, nil
	}
	origin := req.GetOrigin()
	if origin == "" {
		origin = "admin API"
	}
	v, err := s.rosters.Save(ctx, property, rosterredis.Snapshot{Source: roster.SourceCSV, Origin: origin, People: im.People, Issues: im.Issues})
	if err != nil {
		return nil, failing("roster: ", "", err)
	}
	out.Version, out.People = int32(v.Number), int32(v.People)
	out.Added, out.Updated, out.Removed = int32(v.Added), int32(v.Changed), int32(v.Removed)
	out.Unchanged = int32(v.People - v.Added - v.Changed)
	s.runMoveOutsAfterImport(ctx, property)
	return out, nil
}

// rosterRefused is the answer to a roster with no usable row: each row
// to fix as a field violation csv.line[N], and the report as a detail.
func rosterRefused(issues []roster.Issue, rep *pb.ImportRosterResponse) error {
	br := &errdetails.BadRequest{}
	for _, i := range issues {
		if i.Kind.Expected() {
			continue
		}
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: "csv.line[" + strconv.Itoa(i.Line) + "]", Description: i.Reason,
		})
	}
	msg := "csv: no row has a person with an email; nothing was stored"
	if len(br.FieldViolations) == 0 {
		br.FieldViolations = []*errdetails.BadRequest_FieldViolation{{Field: "csv", Description: msg}}
	}
	return withDetails(codes.InvalidArgument, msg, br, rep)
}

func (s *adminServer) GetRosterReport(ctx context.Context, req *pb.GetRosterReportRequest) (*httpbody.HttpBody, error) {
	property, err := s.rosterReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	format := req.GetFormat()
	if format != "" && format != "json" && format != "csv" {
		return nil, badField("format", `must be "json" or "csv"`)
	}
	if s.directories == nil {
		return nil, status.Error(codes.FailedPrecondition, "reports need the access systems, which this server does not give")
	}
	tz, conns, ok := s.directories.Directories(property)
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "property: %s is not served now", property)
	}
	ctx, cancel := context.WithTimeout(ctx, reportDeadline)
	defer cancel()
	r, err := reconcile.Reconcile(ctx, s.rosters, property, tz, conns, time.Now())
	switch {
	case errors.Is(err, reconcile.ErrNoRoster):
		return nil, status.Error(codes.FailedPrecondition, reconcile.ErrNoRoster.Error())
	case err != nil:
		return nil, failing("roster report: ", "", err)
	}
	if format != "csv" {
		s.addMoveOutPlan(ctx, property, tz, r)
	}
	var b bytes.Buffer
	out := &httpbody.HttpBody{ContentType: "application/json"}
	if format == "csv" {
		out.ContentType = "text/csv"
		err = r.WriteCSV(&b)
	} else {
		err = r.WriteJSON(&b)
	}
	if err != nil {
		return nil, err
	}
	out.Data = b.Bytes()
	return out, nil
}

func (s *adminServer) ListRosterVersions(ctx context.Context, req *pb.ListRosterVersionsRequest) (*pb.ListRosterVersionsResponse, error) {
	property, err := s.rosterReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	vs, err := s.rosters.Versions(ctx, property)
	if err != nil {
		return nil, failing("roster: ", "", err)
	}
	out := &pb.ListRosterVersionsResponse{}
	for _, v := range vs {
		out.Versions = append(out.Versions, &pb.RosterVersion{
			Number: int32(v.Number), CreatedAt: timestamppb.New(v.CreatedAt), Source: v.Source, Origin: v.Origin,
			People: int32(v.People), Added: int32(v.Added), Updated: int32(v.Changed), Removed: int32(v.Removed), Previous: int32(v.Previous),
		})
	}
	return out, nil
}

// addMoveOutPlan adds to a JSON report what the property's move-out
// policy would do as it stands (the changes due now and those pending),
// from the report's own reconciliation: no access system is read again.
// A report without it is still a report, so a failure is only logged.
func (s *adminServer) addMoveOutPlan(ctx context.Context, property, tz string, r *reconcile.Report) {
	if s.moveouts == nil {
		return
	}
	cur, ok, err := s.rosters.Current(ctx, property)
	if err == nil && ok && cur.Version == r.RosterVersion {
		var plan moveout.Result
		if plan, err = s.moveouts.PlanFor(ctx, property, tz, cur.People, r); err == nil {
			r.MoveOutPlan = plan
			return
		}
	}
	if err != nil {
		s.log.Warn("roster report: no move-out plan", "property", property, "err", err)
	}
}
