package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/unlock"
)

// contactsReady resolves the request's property (requested) and checks
// that contacts are served; it returns the property and its tenant scope.
func (s *adminServer) contactsReady(ctx context.Context, requested string) (property, scope string, err error) {
	property, err = s.propertyOf(ctx, requested)
	if err != nil {
		return "", "", err
	}
	if s.contacts == nil {
		return "", "", status.Error(codes.FailedPrecondition, "tenant contacts are not configured")
	}
	return property, s.tenantScope(property), nil
}

// contactErr is a contacts store's error, about the request's field.
func contactErr(field string, err error) error { return failing("contacts: ", field, err) }

func (s *adminServer) ImportContacts(ctx context.Context, req *pb.ImportContactsRequest) (*pb.ImportContactsResponse, error) {
	property, scope, err := s.contactsReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	opts := tenant.ImportOptions{
		GoodRowsOnly: req.GetGoodRowsOnly(), RemoveMissing: req.GetRemoveMissing(), Region: req.GetRegion(),
	}
	if s.buildings != nil {
		// The Buildings column may name only buildings set up (SetBuilding).
		list, err := s.buildings.List(ctx, scope)
		if err != nil {
			return nil, failing("buildings: ", "", err)
		}
		known := make(map[string]bool, len(list))
		for _, b := range list {
			known[b.ID] = true
		}
		opts.KnownBuilding = func(id string) bool { return known[id] }
	}
	rep, err := s.contacts.Import(ctx, scope, bytes.NewReader(req.GetCsv().GetData()), opts)
	out := &pb.ImportContactsResponse{
		Rows: int32(rep.Rows), Created: int32(rep.Created), Updated: int32(rep.Updated),
		Unchanged: int32(rep.Unchanged), Removed: int32(rep.Removed),
		BadRowCount: int32(rep.BadRowCount), Warnings: rep.Warnings, Granted: int32(rep.Granted),
	}
	for _, b := range rep.BadRows {
		out.BadRows = append(out.BadRows, &pb.BadRow{Line: int32(b.Line), Reason: b.Reason})
	}
	if err != nil {
		// A refused file's report travels as a status detail.
		return nil, &callError{err: err, field: "csv", report: out, dependency: true, failed: "contacts: "}
	}
	s.record(ctx, property, unlock.KindContactsImported, "contacts",
		fmt.Sprintf("%d rows: %d created, %d updated, %d unchanged, %d removed, %d bad rows skipped, %d tile grants",
			rep.Rows, rep.Created, rep.Updated, rep.Unchanged, rep.Removed, rep.BadRowCount, rep.Granted))
	return out, nil
}

func (s *adminServer) ListContacts(ctx context.Context, req *pb.ListContactsRequest) (*pb.ListContactsResponse, error) {
	_, scope, err := s.contactsReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	if req.GetPageSize() < 0 || req.GetPageSize() > 1000 {
		return nil, badField("page_size", "must be 0 to 1000")
	}
	page, err := s.contacts.List(ctx, scope, req.GetPageToken(), int(req.GetPageSize()))
	if err != nil {
		return nil, contactErr("page_token", err)
	}
	out := &pb.ListContactsResponse{NextPageToken: page.Next, Total: int32(page.Total)}
	for _, c := range page.Contacts {
		out.Contacts = append(out.Contacts, &pb.Contact{Email: c.Email, FullName: c.Name, Phone: c.Phone, BuildingIds: c.Buildings})
	}
	return out, nil
}

func (s *adminServer) GrantTile(ctx context.Context, req *pb.GrantTileRequest) (*pb.GrantTileResponse, error) {
	property, scope, err := s.contactsReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	if err := s.contacts.Grant(ctx, scope, req.GetEmail(), req.GetBuildingId()); err != nil {
		return nil, contactErr("email", err)
	}
	s.record(ctx, property, unlock.KindTileGranted, strings.ToLower(strings.TrimSpace(req.GetEmail())), "building "+strings.TrimSpace(req.GetBuildingId()))
	return &pb.GrantTileResponse{}, nil
}

func (s *adminServer) RevokeTile(ctx context.Context, req *pb.RevokeTileRequest) (*pb.RevokeTileResponse, error) {
	property, scope, err := s.contactsReady(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	if err := s.contacts.Revoke(ctx, scope, req.GetEmail(), req.GetBuildingId()); err != nil {
		return nil, contactErr("email", err)
	}
	s.record(ctx, property, unlock.KindTileRevoked, strings.ToLower(strings.TrimSpace(req.GetEmail())), "building "+strings.TrimSpace(req.GetBuildingId()))
	return &pb.RevokeTileResponse{}, nil
}
