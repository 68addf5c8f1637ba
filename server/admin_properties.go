package server

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// PropertyStatus is a property served, with its connections' state, as
// the admin API shows it: no secret is in it.
type PropertyStatus struct {
	ID, Name, TimeZone string
	Default            bool
	Connections        []ConnectionStatus
	// PMS is the roster's property-management system; nil when none.
	PMS *PMSStatus
}

// PMSStatus is a property's pms block without its secret, and its last
// pull.
type PMSStatus struct {
	System, URL string
	PropertyIDs []int32
	Every       time.Duration
	SecretSet   bool
	// The last pull: zero LastPullAt before the first.
	LastPullAt     time.Time
	LastPullResult string
	LastPullError  string
	LastPullVer    int
	// NextPullAt is when the next pull is due; zero when unknown.
	NextPullAt time.Time
}

// ConnectionStatus is one access-system connection of a property.
type ConnectionStatus struct {
	ID, Name, System, URL, Org, Email string
	Places                            []int64
	BreakerState                      string
	// SecretSet says a secret is stored; the secret is never shown.
	SecretSet bool
	// LastError is why the connection failed at its last use, and when;
	// empty while it works.
	LastError   string
	LastErrorAt time.Time
}

// PropertyDirectory lists the properties served, the default first, and
// answers whether one is served (asked on every admin request naming a
// property, so without listing every property's status).
type PropertyDirectory interface {
	Properties() []PropertyStatus
	Serves(id string) bool
}

// mayView reports which properties the caller's key may see: a portfolio
// key every one, a property key its own, a key made before properties
// the default property; a key of another organisation is refused.
func (s *adminServer) mayView(ctx context.Context) (func(id string) bool, error) {
	k, ok := callerAdmin(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "x-auth-apikey: missing")
	}
	switch {
	case k.Portfolio:
		return func(string) bool { return true }, nil
	case k.Property != "":
		return func(id string) bool { return id == k.Property }, nil
	case s.org != "" && k.Org == s.org:
		return func(id string) bool { return id == s.property }, nil
	}
	return nil, status.Errorf(codes.PermissionDenied, "x-auth-apikey: the key is for organisation %s, not this one", k.Org)
}

func (s *adminServer) ListProperties(ctx context.Context, _ *pb.ListPropertiesRequest) (*pb.ListPropertiesResponse, error) {
	may, err := s.mayView(ctx)
	if err != nil {
		return nil, err
	}
	out := &pb.ListPropertiesResponse{}
	if s.properties == nil {
		return out, nil
	}
	for _, p := range s.properties.Properties() {
		if may(p.ID) {
			out.Properties = append(out.Properties, propertyPB(p))
		}
	}
	return out, nil
}

func (s *adminServer) GetProperty(ctx context.Context, req *pb.GetPropertyRequest) (*pb.GetPropertyResponse, error) {
	may, err := s.mayView(ctx)
	if err != nil {
		return nil, err
	}
	id := strings.TrimSpace(req.GetPropertyId())
	if id == "" {
		return nil, badField("property_id", "name the property")
	}
	if s.properties != nil && may(id) {
		for _, p := range s.properties.Properties() {
			if p.ID == id {
				return &pb.GetPropertyResponse{Property: propertyPB(p)}, nil
			}
		}
	}
	// Not served, or not the key's: the same answer, so a property key
	// learns nothing of other properties.
	return nil, status.Errorf(codes.NotFound, "property_id: no property %q for this key", id)
}

func propertyPB(p PropertyStatus) *pb.Property {
	out := &pb.Property{PropertyId: p.ID, Name: p.Name, TimeZone: p.TimeZone, Default: p.Default}
	for _, c := range p.Connections {
		out.Connections = append(out.Connections, &pb.PropertyConnection{
			ConnectionId: c.ID, System: c.System, Url: c.URL, Org: c.Org, Email: c.Email,
			Places: c.Places, BreakerState: c.BreakerState, Name: c.Name, SecretSet: c.SecretSet, LastError: c.LastError,
		})
		if !c.LastErrorAt.IsZero() {
			out.Connections[len(out.Connections)-1].LastErrorAt = timestamppb.New(c.LastErrorAt)
		}
	}
	if m := p.PMS; m != nil {
		out.Pms = &pb.PropertyPMS{System: m.System, Url: m.URL, PropertyIds: m.PropertyIDs, Every: durationpb.New(m.Every), SecretSet: m.SecretSet,
			LastPullResult: m.LastPullResult, LastPullError: m.LastPullError, LastPullVersion: int32(m.LastPullVer)}
		if !m.LastPullAt.IsZero() {
			out.Pms.LastPullAt = timestamppb.New(m.LastPullAt)
		}
		if !m.NextPullAt.IsZero() {
			out.Pms.NextPullAt = timestamppb.New(m.NextPullAt)
		}
	}
	return out
}
