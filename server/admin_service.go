package server

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/unlock"
)

// CacheAdmin drops cached access data.
type CacheAdmin interface {
	Invalidate(ctx context.Context, email string) error
	InvalidateAll(ctx context.Context) (int64, error)
}

// AuditReader lists audited unlock attempts.
type AuditReader interface {
	List(ctx context.Context, f unlock.AuditFilter, limit int, cursor string) ([]unlock.AuditRecord, string, error)
}

// checkOrg refuses keys of other organisations.
func (s *adminServer) checkOrg(ctx context.Context) error {
	k, ok := callerAdmin(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "x-auth-apikey: missing")
	}
	if s.org == "" || k.Org != s.org {
		return status.Errorf(codes.PermissionDenied, "x-auth-apikey: the key is for organisation %s, not this one", k.Org)
	}
	return nil
}

func (s *adminServer) InvalidateCache(ctx context.Context, req *pb.InvalidateCacheRequest) (*pb.InvalidateCacheResponse, error) {
	if err := s.checkOrg(ctx); err != nil {
		return nil, err
	}
	if s.cache == nil {
		return nil, status.Error(codes.FailedPrecondition, "the cache is not configured")
	}
	switch {
	case req.GetAll() && req.GetEmail() != "":
		return nil, badField("email", "give an email or all, not both")
	case req.GetAll():
		n, err := s.cache.InvalidateAll(ctx)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "cache: %v", err)
		}
		return &pb.InvalidateCacheResponse{Invalidated: n}, nil
	}
	email, err := identity.CanonicalEmail(req.GetEmail())
	if err != nil {
		return nil, badField("email", err.Error())
	}
	if err := s.cache.Invalidate(ctx, email); err != nil {
		return nil, status.Errorf(codes.Unavailable, "cache: %v", err)
	}
	return &pb.InvalidateCacheResponse{Invalidated: 1}, nil
}

var auditResults = map[string]bool{"": true, "OK": true, "DENIED": true, "TIMEOUT": true, "UNAVAILABLE": true, "ERROR": true}

func (s *adminServer) ListAuditEvents(ctx context.Context, req *pb.ListAuditEventsRequest) (*pb.ListAuditEventsResponse, error) {
	if err := s.checkOrg(ctx); err != nil {
		return nil, err
	}
	if s.audit == nil {
		return nil, status.Error(codes.FailedPrecondition, "the audit log is not configured")
	}
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = 50
	case size < 0 || size > 500:
		return nil, badField("page_size", "must be 1 to 500")
	}
	result := strings.ToUpper(strings.TrimSpace(req.GetResult()))
	if !auditResults[result] {
		return nil, badField("result", "must be OK, DENIED, TIMEOUT, UNAVAILABLE or ERROR")
	}
	f := unlock.AuditFilter{User: strings.TrimSpace(req.GetUser()), EntryID: req.GetEntryId(), Result: result}
	if f.User != "" && !strings.HasPrefix(f.User, "guest:") {
		email, err := identity.CanonicalEmail(f.User)
		if err != nil {
			return nil, badField("user", "an email or guest:<pass id>")
		}
		f.User = email
	}
	if req.GetSince() != nil {
		f.Since = req.GetSince().AsTime()
	}
	if req.GetUntil() != nil {
		f.Until = req.GetUntil().AsTime()
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return nil, badField("until", "is before since")
	}
	recs, next, err := s.audit.List(ctx, f, size, req.GetPageToken())
	if err != nil {
		if errors.Is(err, unlock.ErrBadCursor) {
			return nil, badField("page_token", "not a token from a previous page")
		}
		return nil, status.Errorf(codes.Unavailable, "audit: %v", err)
	}
	out := &pb.ListAuditEventsResponse{NextPageToken: next}
	for _, r := range recs {
		out.Events = append(out.Events, &pb.AuditEvent{
			Id: r.ID, At: timestamppb.New(r.At), User: r.User, EntryId: r.EntryID,
			Result: r.Result, Message: r.Message, LatencyUs: r.Latency.Microseconds(),
		})
	}
	return out, nil
}
