package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
)

// PropertyEditor changes the properties stored, which every replica
// serves within a second. Its errors match propertyredis.ErrExists,
// ErrNotFound and ErrDefault.
type PropertyEditor interface {
	// Stored returns a property as stored, secrets included (the API
	// never returns them).
	Stored(ctx context.Context, id string) (property.Property, bool, error)
	Create(ctx context.Context, p property.Property) error
	Update(ctx context.Context, p property.Property) error
	Remove(ctx context.Context, id string) error
}

// ConnectionChecker proves a connection live: reachable, its credentials
// accepted, its organisation known. The error says why not.
type ConnectionChecker interface {
	CheckConnection(ctx context.Context, c property.Connection) error
}

// mayEdit refuses keys that may not change property id: a portfolio key
// may change any, a property key its own, a key made before properties
// the default property; create and delete (id "") are the portfolio's.
func (s *adminServer) mayEdit(ctx context.Context, id string) error {
	k, ok := callerAdmin(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "x-auth-apikey: missing")
	}
	switch {
	case k.Portfolio:
		return nil
	case id == "":
	case k.Property != "" && k.Property == id:
		return nil
	case k.Property == "" && s.org != "" && k.Org == s.org && id == s.property:
		return nil
	}
	return status.Error(codes.PermissionDenied, "x-auth-apikey: this key may not change that property; a portfolio key may")
}

func (s *adminServer) editing() error {
	if s.editor == nil || s.checker == nil {
		return status.Error(codes.FailedPrecondition, "properties cannot be changed on this server")
	}
	return nil
}

func (s *adminServer) CreateProperty(ctx context.Context, req *pb.CreatePropertyRequest) (*pb.CreatePropertyResponse, error) {
	if err := s.mayEdit(ctx, ""); err != nil {
		return nil, err
	}
	if err := s.editing(); err != nil {
		return nil, err
	}
	if req.GetProperty() == nil {
		return nil, badField("property", "must be given")
	}
	p := propertyFromPB(req.GetProperty())
	if err := validProperty(&p); err != nil {
		return nil, err
	}
	if _, ok, err := s.editor.Stored(ctx, p.ID); err == nil && ok {
		return nil, status.Errorf(codes.AlreadyExists, "property.property_id: property %q exists", p.ID)
	}
	if err := s.checkLive(ctx, p); err != nil {
		return nil, err
	}
	if err := s.editor.Create(ctx, p); err != nil {
		return nil, editError(err, p.ID)
	}
	return &pb.CreatePropertyResponse{Property: s.served(p)}, nil
}

func (s *adminServer) UpdateProperty(ctx context.Context, req *pb.UpdatePropertyRequest) (*pb.UpdatePropertyResponse, error) {
	id := strings.TrimSpace(req.GetPropertyId())
	if err := s.mayEdit(ctx, id); err != nil {
		return nil, err
	}
	if err := s.editing(); err != nil {
		return nil, err
	}
	switch {
	case id == "":
		return nil, badField("property_id", "name the property")
	case req.GetProperty() == nil:
		return nil, badField("property", "must be given")
	case req.GetProperty().GetPropertyId() != "" && req.GetProperty().GetPropertyId() != id:
		return nil, badField("property.property_id", "is not the property named; an id cannot change")
	}
	old, ok, err := s.editor.Stored(ctx, id)
	if err != nil {
		return nil, failing("properties: ", "", err)
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "property_id: no property %q for this key", id)
	}
	p := propertyFromPB(req.GetProperty())
	p.ID = id
	p.Envoy = old.Envoy // the properties file's; the admin API does not edit it
	// The pms block is the properties file's: the API neither shows its
	// secret nor takes it, so an update keeps it.
	p.PMS = old.PMS
	// A connection given without its secret keeps the stored one of the
	// same name: secrets are never read back, so they need not be resent.
	for i := range p.Access {
		c := &p.Access[i]
		name := c.Name
		if name == "" {
			name = c.System
		}
		for _, o := range old.Access {
			if c.Secret == "" && o.Name == name && o.System == c.System {
				c.Secret = o.Secret
			}
		}
	}
	if err := validProperty(&p); err != nil {
		return nil, err
	}
	if err := s.checkLive(ctx, p); err != nil {
		return nil, err
	}
	if err := s.editor.Update(ctx, p); err != nil {
		return nil, editError(err, id)
	}
	p.Default = old.Default
	return &pb.UpdatePropertyResponse{Property: s.served(p)}, nil
}

func (s *adminServer) DeleteProperty(ctx context.Context, req *pb.DeletePropertyRequest) (*pb.DeletePropertyResponse, error) {
	if err := s.mayEdit(ctx, ""); err != nil {
		return nil, err
	}
	if err := s.editing(); err != nil {
		return nil, err
	}
	id := strings.TrimSpace(req.GetPropertyId())
	if id == "" {
		return nil, badField("property_id", "name the property")
	}
	if err := s.editor.Remove(ctx, id); err != nil {
		return nil, editError(err, id)
	}
	return &pb.DeletePropertyResponse{}, nil
}

// checkLive checks every connection of p live; the first failing one is
// FAILED_PRECONDITION naming it and why.
func (s *adminServer) checkLive(ctx context.Context, p property.Property) error {
	for i, c := range p.Access {
		if err := s.checker.CheckConnection(ctx, c); err != nil {
			return status.Errorf(codes.FailedPrecondition, "property.access[%d] (%s): %v; nothing was saved", i, c, err)
		}
	}
	return nil
}

// served is p as the admin API shows it: the replica serving it now, or
// p's settings when it is not yet among them.
func (s *adminServer) served(p property.Property) *pb.Property {
	if s.properties != nil {
		for _, ps := range s.properties.Properties() {
			if ps.ID == p.ID {
				return propertyPB(ps)
			}
		}
	}
	ps := PropertyStatus{ID: p.ID, Name: p.Name, TimeZone: p.TimeZone, Default: p.Default}
	for _, c := range p.Access {
		ps.Connections = append(ps.Connections, ConnectionStatus{ID: c.ID(p), Name: c.Name, System: c.System, URL: c.URL,
			Org: c.Org, Email: c.Email, Places: c.Places, SecretSet: c.Secret != ""})
	}
	return propertyPB(ps)
}

func editError(err error, id string) error {
	switch {
	case errors.Is(err, propertyredis.ErrExists):
		return status.Errorf(codes.AlreadyExists, "property.property_id: property %q exists", id)
	case errors.Is(err, propertyredis.ErrNotFound):
		return status.Errorf(codes.NotFound, "property_id: no property %q for this key", id)
	case errors.Is(err, propertyredis.ErrDefault):
		return status.Errorf(codes.FailedPrecondition, "property_id: %q is the default property; it cannot be removed", id)
	}
	return failing("properties: ", "", err)
}

func propertyFromPB(in *pb.PropertyInput) property.Property {
	p := property.Property{ID: in.GetPropertyId(), Name: in.GetName(), TimeZone: in.GetTimeZone()}
	for _, c := range in.GetAccess() {
		secret := c.GetPassword()
		if c.GetSystem() == property.Kisi {
			secret = c.GetApiKey()
		}
		p.Access = append(p.Access, property.Connection{System: c.GetSystem(), Name: c.GetName(), URL: c.GetUrl(),
			Org: c.GetOrg(), Email: c.GetEmail(), Places: c.GetPlaces(), Secret: secret})
	}
	return p
}

// validProperty is property.Validate answering INVALID_ARGUMENT with the
// request's field name ("property.access[1].url").
func validProperty(p *property.Property) error {
	err := property.Validate(p)
	var fe *property.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	field := map[string]string{"id": "property_id", "timezone": "time_zone"}[fe.Field]
	if field == "" {
		field = fe.Field
	}
	if fe.Conn >= 0 {
		if fe.Field == "secret" {
			field = "password"
			if p.Access[fe.Conn].System == property.Kisi {
				field = "api_key"
			}
		}
		field = fmt.Sprintf("access[%d].%s", fe.Conn, field)
	}
	return badField("property."+field, fe.Reason)
}
