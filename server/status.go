package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/unlock"
)

// ReasonRateLimited is the ErrorInfo reason of a call over a rate limit.
const ReasonRateLimited = "RATE_LIMITED"

// errorDomain is the google.rpc.ErrorInfo domain of cloudkey's errors.
const errorDomain = "cloudkey"

// toStatus maps a domain error to its gRPC status. It is the one place
// where cloudkey's errors become codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var inv *unlock.InvalidArgumentError
	var notEntry *unlock.EntryNotFoundError
	var limited *ratelimit.LimitedError
	switch {
	case errors.As(err, &limited):
		return withDetails(codes.ResourceExhausted, err.Error(),
			&errdetails.RetryInfo{RetryDelay: durationpb.New(limited.RetryAfter.Round(time.Millisecond))},
			info(ReasonRateLimited, "scope", limited.Scope))
	case errors.As(err, &inv):
		return withDetails(codes.InvalidArgument, err.Error(), &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: inv.Field, Description: inv.Reason}},
		})
	case errors.As(err, &notEntry):
		return withDetails(codes.NotFound, err.Error(), info(unlock.ReasonEntryNotFound, "entry_id", notEntry.EntryID))
	case errors.Is(err, unlock.ErrUserNotFound):
		return withDetails(codes.NotFound, err.Error(), info(unlock.ReasonUserNotFound))
	case errors.Is(err, unlock.ErrUserDisabled):
		return withDetails(codes.PermissionDenied, err.Error(), info(unlock.ReasonUserDisabled))
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the deadline passed before the access system answered")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the request was cancelled")
	case errors.Is(err, unlock.ErrUnavailable):
		return withDetails(codes.Unavailable, unlock.ErrUnavailable.Error(), info(unlock.ReasonAccessUnavailable))
	}
	return status.Error(codes.Internal, "internal error")
}

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
