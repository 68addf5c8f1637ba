package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/reconcile"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/visitor"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// This file is the one place where cloudkey's domain errors become
// statuses. Handlers return domain errors as they come (wrapped, when the
// status needs it, with what only the handler knows: see callError), and
// statusUnary passes every failed call's error through toStatus, which
// consults statusTable. The HTTP-only handlers (guest page, Envoy webhook)
// answer from the same table through httpAnswer.
//
// Not here: the refusals the transport itself makes before any domain
// code runs (authentication, an unconfigured service, a malformed request
// field: badField); they are statuses from the start.

// ReasonRateLimited is the ErrorInfo reason of a call over a rate limit.
const ReasonRateLimited = "RATE_LIMITED"

// The ErrorInfo reasons of the visitor and contacts errors.
const (
	ReasonNoSettings      = "NO_SETTINGS"
	ReasonVisitorNotFound = "VISITOR_NOT_FOUND"
	ReasonContactNotFound = "CONTACT_NOT_FOUND"
)

// errorDomain is the google.rpc.ErrorInfo domain of cloudkey's errors.
const errorDomain = "cloudkey"

// A statusRule maps the errors match accepts to a status.
type statusRule struct {
	match func(error) bool
	code  codes.Code
	// reason is the google.rpc.ErrorInfo reason; "" adds no ErrorInfo.
	reason string
	// answer gives the message and the details before the ErrorInfo; nil:
	// the error's own message and no other detail.
	answer func(err error, c *callError) (string, []protoadapt.MessageV1)
	// meta gives the ErrorInfo metadata; nil: the call's (callError.meta).
	meta func(err error) []string
}

// statusTable is every domain error cloudkey answers, first match wins.
// An error no rule matches is INTERNAL, "internal error" (and logged).
var statusTable = []statusRule{
	// Rate limits (internal/ratelimit).
	{match: isA[*ratelimit.LimitedError], code: codes.ResourceExhausted, reason: ReasonRateLimited,
		answer: func(err error, _ *callError) (string, []protoadapt.MessageV1) {
			l := asA[*ratelimit.LimitedError](err)
			return err.Error(), details(&errdetails.RetryInfo{RetryDelay: durationpb.New(l.RetryAfter.Round(time.Millisecond))})
		},
		meta: func(err error) []string { return []string{"scope", asA[*ratelimit.LimitedError](err).Scope} }},

	// ResidentService (resident).
	{match: isA[*unlock.InvalidArgumentError], code: codes.InvalidArgument,
		answer: func(err error, _ *callError) (string, []protoadapt.MessageV1) {
			inv := asA[*unlock.InvalidArgumentError](err)
			return err.Error(), details(violation(inv.Field, inv.Reason))
		}},
	{match: isA[*unlock.EntryNotFoundError], code: codes.NotFound, reason: unlock.ReasonEntryNotFound,
		meta: func(err error) []string { return []string{"entry_id", asA[*unlock.EntryNotFoundError](err).EntryID} }},
	{match: isA[*EmailSpellingError], code: codes.NotFound, reason: unlock.ReasonUserNotFound,
		meta: func(error) []string { return []string{"email_spelling", "differs"} }},
	{match: is(unlock.ErrUserNotFound), code: codes.NotFound, reason: unlock.ReasonUserNotFound},
	{match: is(unlock.ErrUserDisabled), code: codes.PermissionDenied, reason: unlock.ReasonUserDisabled},
	{match: isA[*unlock.UnknownPropertyError], code: codes.PermissionDenied, reason: unlock.ReasonUnknownProperty,
		meta: func(err error) []string { return []string{"property", asA[*unlock.UnknownPropertyError](err).Property} }},

	// AdminService visitor settings, VisitorService (visitor).
	{match: is(visitor.ErrNoSettings), code: codes.NotFound, reason: ReasonNoSettings}, // meta: location_id
	{match: is(visitor.ErrNoVisit), code: codes.NotFound, reason: ReasonVisitorNotFound, // meta: visitor_id
		answer: fixed("visitor_id: not one of your visitors")},
	{match: isA[*visitor.InvalidSettingsError], code: codes.InvalidArgument, answer: invalidSettings},
	{match: is(visitor.ErrOtherProperty), code: codes.PermissionDenied, answer: fixed("location_id: " + visitor.ErrOtherProperty.Error())},
	{match: is(visitor.ErrNoGuestAccess), code: codes.FailedPrecondition, answer: fixed(visitor.ErrNoGuestAccess.Error())},
	{match: is(visitor.ErrEnvoyUnavailable), code: codes.Unavailable, answer: fixed(visitor.ErrEnvoyUnavailable.Error())},
	{match: isA[*visitor.FieldError], code: codes.InvalidArgument,
		answer: func(err error, _ *callError) (string, []protoadapt.MessageV1) {
			fe := asA[*visitor.FieldError](err)
			return fieldMessage(fe.Field, fe.Problem), details(violation(fe.Field, fe.Problem))
		}},
	// The Envoy webhook (HTTP only: httpAnswer).
	{match: is(envoy.ErrMalformed), code: codes.InvalidArgument},
	{match: is(visitor.ErrEventInProgress), code: codes.Aborted}, // Envoy redelivers

	// AdminService contacts (tenant).
	{match: either(tenant.ErrInvalidCSV, tenant.ErrBadRows), code: codes.InvalidArgument, answer: importRefused},
	{match: is(tenant.ErrInvalidArgument), code: codes.InvalidArgument, answer: onField("")},
	{match: is(tenant.ErrNotFound), code: codes.NotFound, reason: ReasonContactNotFound},
	{match: is(tenant.ErrConflict), code: codes.Aborted},

	// AdminService buildings (building) and audit log (unlock).
	{match: is(tenant.ErrInvalidBuilding), code: codes.InvalidArgument, answer: onField("")},
	{match: is(unlock.ErrBadCursor), code: codes.InvalidArgument, answer: onField("not a token from a previous page")},

	// AdminService rosters and move-out policy (roster/reconcile,
	// roster/moveout).
	{match: isA[*moveout.FieldError], code: codes.InvalidArgument,
		answer: func(err error, _ *callError) (string, []protoadapt.MessageV1) {
			fe := asA[*moveout.FieldError](err)
			return fieldMessage(fe.Field, fe.Reason), details(violation(fe.Field, fe.Reason))
		}},
	{match: is(reconcile.ErrNoRoster), code: codes.FailedPrecondition, answer: fixed(reconcile.ErrNoRoster.Error())},
	{match: is(moveout.ErrNotServed), code: codes.FailedPrecondition, answer: fixed("property: not served now")},
	{match: is(moveout.ErrBusy), code: codes.Aborted, answer: fixed(moveout.ErrBusy.Error())},

	// A dependency's failure, as its handler named it (failing).
	{match: isDependency, code: codes.Unavailable,
		answer: func(err error, c *callError) (string, []protoadapt.MessageV1) { return c.failed + err.Error(), nil }},

	// Any call.
	{match: is(context.DeadlineExceeded), code: codes.DeadlineExceeded,
		answer: fixed("the deadline passed before the access system answered")},
	{match: is(context.Canceled), code: codes.Canceled, answer: fixed("the request was cancelled")},
	{match: is(unlock.ErrUnavailable), code: codes.Unavailable, reason: unlock.ReasonAccessUnavailable,
		answer: fixed(unlock.ErrUnavailable.Error())},
}

// toStatus maps a domain error to its gRPC status by statusTable; a status
// is returned as it is.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	c, _ := callOf(err)
	for _, r := range statusTable {
		if !r.match(err) {
			continue
		}
		msg, ds := err.Error(), []protoadapt.MessageV1(nil)
		if r.answer != nil {
			msg, ds = r.answer(err, c)
		}
		if r.reason != "" {
			meta := c.meta
			if r.meta != nil {
				meta = r.meta(err)
			}
			ds = append(ds, info(r.reason, meta...))
		}
		if len(ds) == 0 {
			return status.Error(r.code, msg)
		}
		return withDetails(r.code, msg, ds...)
	}
	return status.Error(codes.Internal, "internal error")
}

// httpAnswer is the answer of the HTTP-only handlers (the guest page, the
// Envoy webhook) to err: the status toStatus gives it, as HTTP
// (runtime.HTTPStatusFromCode), when it is the caller's to act on; else
// (ok false: the handler logs err) 503 with failed.
func httpAnswer(err error, failed string) (code int, msg string, ok bool) {
	st := status.Convert(toStatus(err))
	code = runtime.HTTPStatusFromCode(st.Code())
	if code >= 500 || st.Code() == codes.Canceled {
		return http.StatusServiceUnavailable, failed, false
	}
	return code, st.Message(), true
}

// callError is a domain error with what only its handler knows of the
// call, for statusTable: it decides no status itself.
type callError struct {
	err   error
	field string   // the request field the error is about (BadRequest)
	meta  []string // ErrorInfo metadata: key, value, ...
	// report is the refused request's report, sent as a status detail.
	report protoadapt.MessageV1
	// dependency: an error that no domain rule matches is the failure of
	// a dependency (Redis): UNAVAILABLE, failed + the error's message.
	dependency bool
	failed     string
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// about names the resource err is about in its ErrorInfo (key, value, ...).
func about(err error, kv ...string) error { return &callError{err: err, meta: kv} }

// failing marks err as a call's failure: the domain errors it may be are
// answered by statusTable, anything else is a failure of the dependency,
// UNAVAILABLE with the message prefix + err; field is the request field a
// domain error is about.
func failing(prefix, field string, err error) error {
	return &callError{err: err, field: field, dependency: true, failed: prefix}
}

func callOf(err error) (*callError, bool) {
	var c *callError
	if errors.As(err, &c) {
		return c, true
	}
	return &callError{}, false
}

func isDependency(err error) bool {
	c, ok := callOf(err)
	return ok && c.dependency
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

func either(a, b error) func(error) bool {
	return func(err error) bool { return errors.Is(err, a) || errors.Is(err, b) }
}

func isA[T error](err error) bool {
	var t T
	return errors.As(err, &t)
}

func asA[T error](err error) T {
	var t T
	errors.As(err, &t)
	return t
}

func fixed(msg string) func(error, *callError) (string, []protoadapt.MessageV1) {
	return func(error, *callError) (string, []protoadapt.MessageV1) { return msg, nil }
}

// onField answers as badField does on the call's field, with problem or,
// when it is "", the error's message.
func onField(problem string) func(error, *callError) (string, []protoadapt.MessageV1) {
	return func(err error, c *callError) (string, []protoadapt.MessageV1) {
		p := problem
		if p == "" {
			p = err.Error()
		}
		return fieldMessage(c.field, p), details(violation(c.field, p))
	}
}

// invalidSettings: the whole Rhombus-style answer travels as a status
// detail, with the failed ids as field violations.
func invalidSettings(err error, _ *callError) (string, []protoadapt.MessageV1) {
	res := asA[*visitor.InvalidSettingsError](err).Result
	// One violation per field at fault, each with its own problem only.
	br := &errdetails.BadRequest{}
	for _, v := range res.Violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Problem})
	}
	return "settings not saved: " + res.ErrorMsg, details(br, updateResultPB(res))
}

// importRefused: nothing was imported; the report (bad rows by line)
// travels as a status detail next to the field violations.
func importRefused(err error, c *callError) (string, []protoadapt.MessageV1) {
	rep, _ := c.report.(*pb.ImportContactsResponse)
	br := &errdetails.BadRequest{}
	for _, b := range rep.GetBadRows() {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: "csv.line[" + strconv.Itoa(int(b.GetLine())) + "]", Description: b.GetReason(),
		})
	}
	if len(br.FieldViolations) == 0 {
		br.FieldViolations = []*errdetails.BadRequest_FieldViolation{{Field: "csv", Description: err.Error()}}
	}
	ds := details(br)
	if rep != nil {
		rep.Rejected = true
		ds = append(ds, rep)
	}
	return "nothing imported: " + err.Error(), ds
}

// badField refuses a malformed request field; the transport's own check,
// not a domain error's mapping.
func badField(field, reason string) error {
	return withDetails(codes.InvalidArgument, fieldMessage(field, reason), violation(field, reason))
}

func fieldMessage(field, reason string) string { return fmt.Sprintf("%s: %s", field, reason) }

func violation(field, reason string) *errdetails.BadRequest {
	return &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: reason}}}
}

func details(ds ...protoadapt.MessageV1) []protoadapt.MessageV1 { return ds }

func info(reason string, kv ...string) *errdetails.ErrorInfo {
	md := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		md[kv[i]] = kv[i+1]
	}
	return &errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: md}
}

func withDetails(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil {
		return status.Error(c, msg)
	}
	return st.Err()
}
