package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/visitor"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// The table's rules for the errors the admin, visitor and webhook handlers
// return (the resident ones are covered end to end).
func TestStatusTable(t *testing.T) {
	redis := errors.New("dial tcp: connection refused")
	tests := []struct {
		name   string
		err    error
		code   codes.Code
		msg    string
		reason string
		field  string
		meta   map[string]string
	}{
		{"no settings", about(fmt.Errorf("visitor: L1: %w", visitor.ErrNoSettings), "location_id", "L1"),
			codes.NotFound, "visitor: L1: the location has no visitor settings", ReasonNoSettings, "", map[string]string{"location_id": "L1"}},
		{"no visit", about(fmt.Errorf("%w: invite %q is not one of yours", visitor.ErrNoVisit, "v1"), "visitor_id", "v1"),
			codes.NotFound, "visitor_id: not one of your visitors", ReasonVisitorNotFound, "", map[string]string{"visitor_id": "v1"}},
		{"registration field", &visitor.FieldError{Field: "full_name", Problem: "must be 1 to 200 characters"},
			codes.InvalidArgument, "full_name: must be 1 to 200 characters", "", "full_name", nil},
		{"contact field", contactErr("email", fmt.Errorf("tenant: %w: bad", tenant.ErrInvalidArgument)),
			codes.InvalidArgument, "email: tenant: invalid argument: bad", "", "email", nil},
		{"contact not found", contactErr("email", fmt.Errorf("x: %w", tenant.ErrNotFound)),
			codes.NotFound, "x: contact not found", ReasonContactNotFound, "", map[string]string{}},
		{"contacts conflict", contactErr("csv", tenant.ErrConflict),
			codes.Aborted, tenant.ErrConflict.Error(), "", "", nil},
		{"contacts down", contactErr("email", redis),
			codes.Unavailable, "contacts: " + redis.Error(), "", "", nil},
		{"contacts deadline", contactErr("email", context.DeadlineExceeded),
			codes.Unavailable, "contacts: context deadline exceeded", "", "", nil},
		{"building invalid", failing("", "building", fmt.Errorf("%w: name", tenant.ErrInvalidBuilding)),
			codes.InvalidArgument, "building: invalid building: name", "", "building", nil},
		{"buildings down", failing("", "", redis), codes.Unavailable, redis.Error(), "", "", nil},
		{"bad cursor", failing("audit: ", "page_token", fmt.Errorf("%w: %q", unlock.ErrBadCursor, "x")),
			codes.InvalidArgument, "page_token: not a token from a previous page", "", "page_token", nil},
		{"tile grant unreadable", failing("cannot check your access now; try again: ", "building_id", redis),
			codes.Unavailable, "cannot check your access now; try again: " + redis.Error(), "", "", nil},
		{"malformed event", fmt.Errorf("%w: no id", envoy.ErrMalformed), codes.InvalidArgument, "malformed Envoy event: no id", "", "", nil},
		{"event in progress", visitor.ErrEventInProgress, codes.Aborted, visitor.ErrEventInProgress.Error(), "", "", nil},
		{"move-out policy field", failing("move-out policy: ", "", &moveout.FieldError{Field: "grace_days", Reason: "91 days is not 0 to 90"}),
			codes.InvalidArgument, "grace_days: 91 days is not 0 to 90", "", "grace_days", nil},
		{"move-out run busy", failing("move-out run: ", "", fmt.Errorf("moveout: hv: %w", moveout.ErrBusy)),
			codes.Aborted, moveout.ErrBusy.Error(), "", "", nil},
		{"move-out without a roster", failing("move-out run: ", "", fmt.Errorf("moveout: hv: %w", reconcile.ErrNoRoster)),
			codes.FailedPrecondition, reconcile.ErrNoRoster.Error(), "", "", nil},
		{"move-out property not served", failing("move-out run: ", "", fmt.Errorf("moveout: hv: %w", moveout.ErrNotServed)),
			codes.FailedPrecondition, "property: not served now", "", "", nil},
		{"move-out run down", failing("move-out run: ", "", redis), codes.Unavailable, "move-out run: " + redis.Error(), "", "", nil},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "the deadline passed before the access system answered", "", "", nil},
		{"cancelled", context.Canceled, codes.Canceled, "the request was cancelled", "", "", nil},
		{"unknown", redis, codes.Internal, "internal error", "", "", nil},
		{"a status stays", status.Error(codes.NotFound, "x"), codes.NotFound, "x", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(toStatus(tt.err))
			if st.Code() != tt.code || st.Message() != tt.msg {
				t.Fatalf("got %v %q, want %v %q", st.Code(), st.Message(), tt.code, tt.msg)
			}
			var reason, field string
			var meta map[string]string
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					reason, meta = d.GetReason(), d.GetMetadata()
				case *errdetails.BadRequest:
					field = d.GetFieldViolations()[0].GetField()
				}
			}
			if reason != tt.reason || field != tt.field || fmt.Sprint(meta) != fmt.Sprint(tt.meta) {
				t.Errorf("reason %q field %q meta %v, want %q %q %v", reason, field, meta, tt.reason, tt.field, tt.meta)
			}
		})
	}
}

func TestStatusTableImportReport(t *testing.T) {
	rep := &pb.ImportContactsResponse{Rows: 2, BadRows: []*pb.BadRow{{Line: 3, Reason: "no email"}}}
	err := &callError{err: fmt.Errorf("tenant: %w", tenant.ErrBadRows), field: "csv", report: rep, dependency: true, failed: "contacts: "}
	st := status.Convert(toStatus(err))
	if st.Code() != codes.InvalidArgument || st.Message() != "nothing imported: tenant: bad rows in CSV" {
		t.Fatalf("got %v %q", st.Code(), st.Message())
	}
	ds := st.Details()
	if len(ds) != 2 {
		t.Fatalf("details %v", ds)
	}
	if f := ds[0].(*errdetails.BadRequest).GetFieldViolations()[0]; f.GetField() != "csv.line[3]" || f.GetDescription() != "no email" {
		t.Errorf("violation %v", f)
	}
	if r := ds[1].(*pb.ImportContactsResponse); !r.GetRejected() || r.GetRows() != 2 {
		t.Errorf("report %v", r)
	}
}

func TestHTTPAnswer(t *testing.T) {
	tests := []struct {
		err  error
		code int
		msg  string
		ok   bool
	}{
		{fmt.Errorf("%w: x", envoy.ErrMalformed), http.StatusBadRequest, "malformed Envoy event: x", true},
		{visitor.ErrEventInProgress, http.StatusConflict, visitor.ErrEventInProgress.Error(), true},
		{errors.New("redis down"), http.StatusServiceUnavailable, "later", false},
		{context.DeadlineExceeded, http.StatusServiceUnavailable, "later", false},
		{context.Canceled, http.StatusServiceUnavailable, "later", false},
	}
	for _, tt := range tests {
		code, msg, ok := httpAnswer(tt.err, "later")
		if code != tt.code || msg != tt.msg || ok != tt.ok {
			t.Errorf("httpAnswer(%v) = %d %q %v, want %d %q %v", tt.err, code, msg, ok, tt.code, tt.msg, tt.ok)
		}
	}
}
