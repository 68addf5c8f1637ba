package server

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/visitor"
)

// adminServer serves AdminService: visitor settings, the cache, the audit
// log (here), tenant contacts (admin_contacts.go) and buildings
// (admin_buildings.go).
type adminServer struct {
	pb.UnimplementedAdminServiceServer
	visitors  *visitor.Service
	cache     CacheAdmin
	audit     AuditReader
	auditor   unlock.Auditor // admin changes; nil: not recorded
	contacts  *tenant.Store
	buildings *tenant.Buildings
	org       string // the default property's access-system organisation
	// property is the default property: what a portfolio key or a key
	// made before properties acts on when a request names none.
	property string
	// properties lists the properties served (ListProperties).
	properties PropertyDirectory
	editor     PropertyEditor
	checker    ConnectionChecker
	// rosters and directories serve the roster calls (admin_roster.go).
	rosters     *rosterredis.Store
	directories RosterDirectories
	// moveouts runs the move-out policy (admin_moveout.go); nil: its
	// calls are FAILED_PRECONDITION.
	moveouts *moveout.Runner
	log      *slog.Logger
}

// CacheAdmin drops a property's cached access data.
type CacheAdmin interface {
	// Invalidate drops email's views in property's connections.
	Invalidate(ctx context.Context, property, email string) error
	// InvalidateAll drops every user's views in property's connections
	// and says how many users' entries were dropped.
	InvalidateAll(ctx context.Context, property string) (int64, error)
}

// AuditReader lists audited unlock attempts.
type AuditReader interface {
	List(ctx context.Context, f unlock.AuditFilter, limit int, cursor string) ([]unlock.AuditRecord, string, error)
}

// propertyOf resolves the property an admin request acts on, from the
// caller's key and the request's property field (requested, "" when not
// given):
//   - a portfolio key: the property named, or the default one; a property
//     not served is NOT_FOUND;
//   - a property key: its own property, which it may name; naming another
//     is PERMISSION_DENIED whether that one exists or not, so a key learns
//     nothing outside its property (nor does a key whose property is no
//     longer served);
//   - a key made before properties for the organisation served: the
//     default property, as a key of it;
//   - a key of another organisation: PERMISSION_DENIED.
func (s *adminServer) propertyOf(ctx context.Context, requested string) (string, error) {
	k, ok := callerAdmin(ctx)
	if !ok {
		return "", status.Error(codes.Unauthenticated, "x-auth-apikey: missing")
	}
	requested = strings.TrimSpace(requested)
	own := k.Property
	switch {
	case k.Portfolio:
		if requested == "" {
			return s.property, nil
		}
		if !s.serves(requested) {
			return "", status.Errorf(codes.NotFound, "property: %q is not served here", requested)
		}
		return requested, nil
	case own == "" && s.org != "" && k.Org == s.org:
		own = s.property
	case own == "":
		return "", status.Errorf(codes.PermissionDenied, "x-auth-apikey: the key is for organisation %s, not this one", k.Org)
	}
	if requested != "" && requested != own {
		return "", status.Errorf(codes.PermissionDenied, "property: the key is for property %s only", own)
	}
	if !s.serves(own) {
		return "", status.Errorf(codes.PermissionDenied, "x-auth-apikey: the key's property %s is not served here", own)
	}
	return own, nil
}

// serves reports whether property id is served now (properties may come
// and go while the server runs, so it is asked every time).
func (s *adminServer) serves(id string) bool {
	if id == s.property {
		return true
	}
	return s.properties != nil && s.properties.Serves(id)
}

func (s *adminServer) InvalidateCache(ctx context.Context, req *pb.InvalidateCacheRequest) (*pb.InvalidateCacheResponse, error) {
	property, err := s.propertyOf(ctx, req.GetProperty())
	if err != nil {
		return nil, err
	}
	if s.cache == nil {
		return nil, status.Error(codes.FailedPrecondition, "the cache is not configured")
	}
	switch {
	case req.GetAll() && req.GetEmail() != "":
		return nil, badField("email", "give an email or all, not both")
	case req.GetAll():
		n, err := s.cache.InvalidateAll(ctx, property)
		if err != nil {
			return nil, failing("cache: ", "", err)
		}
		return &pb.InvalidateCacheResponse{Invalidated: n}, nil
	}
	email, err := identity.CanonicalEmail(req.GetEmail())
	if err != nil {
		return nil, badField("email", err.Error())
	}
	if err := s.cache.Invalidate(ctx, property, email); err != nil {
		return nil, failing("cache: ", "", err)
	}
	return &pb.InvalidateCacheResponse{Invalidated: 1}, nil
}

var auditResults = map[string]bool{"": true, "OK": true, "DENIED": true, "TIMEOUT": true, "UNAVAILABLE": true, "ERROR": true}

func (s *adminServer) ListAuditEvents(ctx context.Context, req *pb.ListAuditEventsRequest) (*pb.ListAuditEventsResponse, error) {
	property, err := s.propertyOf(ctx, req.GetProperty())
	if err != nil {
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
	kind := strings.ToLower(strings.TrimSpace(req.GetKind()))
	if kind != "" && !slices.Contains(unlock.Kinds, kind) {
		return nil, badField("kind", "must be one of "+strings.Join(unlock.Kinds, ", "))
	}
	// Records written before properties name none: the default property's.
	f := unlock.AuditFilter{User: strings.TrimSpace(req.GetUser()), EntryID: req.GetEntryId(), Result: result,
		Property: property, Unnamed: property == s.property, Kind: kind}
	// Emails are canonicalised; actors of other kinds ("guest:<pass id>",
	// "admin:<name>/<id>", "tile:<email>", "envoy") are matched as given.
	if f.User != "" && !strings.Contains(f.User, ":") && f.User != "envoy" {
		email, err := identity.CanonicalEmail(f.User)
		if err != nil {
			return nil, badField("user", "an email, guest:<pass id>, admin:<key name>/<key id>, tile:<email> or envoy")
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
		return nil, failing("audit: ", "page_token", err)
	}
	out := &pb.ListAuditEventsResponse{NextPageToken: next}
	for _, r := range recs {
		out.Events = append(out.Events, &pb.AuditEvent{
			Id: r.ID, At: timestamppb.New(r.At), User: r.User, EntryId: r.EntryID,
			Result: r.Result, Message: r.Message, LatencyUs: r.Latency.Microseconds(), System: r.System,
			Property: property, Kind: r.Kind,
		})
	}
	return out, nil
}

// authorize resolves the request's property (requested) and checks the
// location.
func (s *adminServer) authorize(ctx context.Context, requested, location string) (string, error) {
	property, err := s.propertyOf(ctx, requested)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(location) == "" {
		return "", badField("location_id", "must not be empty")
	}
	if s.visitors == nil {
		return "", status.Error(codes.FailedPrecondition, "visitor integration is not configured")
	}
	return property, nil
}

func (s *adminServer) GetVisitorSettings(ctx context.Context, req *pb.GetVisitorSettingsRequest) (*pb.GetVisitorSettingsResponse, error) {
	property, err := s.authorize(ctx, req.GetProperty(), req.GetLocationId())
	if err != nil {
		return nil, err
	}
	st, err := s.visitors.Settings(ctx, property, req.GetLocationId())
	if err != nil {
		return nil, about(err, "location_id", req.GetLocationId())
	}
	return &pb.GetVisitorSettingsResponse{Settings: settingsPB(st), EnvoyConnection: s.envoyState(property, req.GetLocationId())}, nil
}

func (s *adminServer) UpdateVisitorSettings(ctx context.Context, req *pb.UpdateVisitorSettingsRequest) (*pb.UpdateVisitorSettingsResponse, error) {
	property, err := s.authorize(ctx, req.GetProperty(), req.GetLocationId())
	if err != nil {
		return nil, err
	}
	if req.GetSettings() == nil {
		return nil, badField("settings", "must be given")
	}
	// What was there, for the audit's before and after.
	var before *pb.VisitorSettings
	if st, err := s.visitors.Settings(ctx, property, req.GetLocationId()); err == nil {
		before = settingsPB(st)
	}
	res, err := s.visitors.UpdateSettings(ctx, property, req.GetLocationId(), settingsFromPB(req.GetSettings()))
	if err != nil {
		return nil, err // refused settings: their result travels as a status detail
	}
	out := updateResultPB(res)
	if !res.Error {
		s.record(ctx, property, unlock.KindSettingsChanged, req.GetLocationId(), settingsChanges(before, out.GetSettings()))
	}
	return out, nil
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
	if st.SignInMaxDuration > 0 {
		out.SignInMaxDuration = durationpb.New(st.SignInMaxDuration)
	}
	out.Enabled = st.Enabled
	for email, h := range st.Hosts {
		if out.Hosts == nil {
			out.Hosts = map[string]*pb.VisitorHostSettings{}
		}
		out.Hosts[email] = &pb.VisitorHostSettings{GuestsEnabled: h.GuestsEnabled}
	}
	if !st.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(st.UpdatedAt)
	}
	for _, m := range st.Entries {
		out.Entries = append(out.Entries, &pb.EntryVisitorTypes{EntryId: m.EntryID, VisitorTypes: m.VisitorTypes, Name: m.Name, RemoteUnlock: m.RemoteUnlock})
	}
	return out
}

func settingsFromPB(in *pb.VisitorSettings) visitor.Settings {
	st := visitor.Settings{
		InviteOnly:          in.GetInviteOnly(),
		AdvanceAccess:       in.GetAdvanceAccess().AsDuration(),
		AccessDuration:      in.GetAccessDuration().AsDuration(),
		SignInMaxDuration:   in.GetSignInMaxDuration().AsDuration(),
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
		st.Entries = append(st.Entries, visitor.EntryMapping{EntryID: e.GetEntryId(), VisitorTypes: e.GetVisitorTypes(), RemoteUnlock: e.RemoteUnlock})
	}
	st.Enabled = in.Enabled // nil when omitted: on
	for email, h := range in.GetHosts() {
		if st.Hosts == nil {
			st.Hosts = map[string]visitor.HostSettings{}
		}
		st.Hosts[email] = visitor.HostSettings{GuestsEnabled: h.GuestsEnabled} // a null value: allowed
	}
	return st
}

func updateResultPB(r visitor.UpdateResult) *pb.UpdateVisitorSettingsResponse {
	out := &pb.UpdateVisitorSettingsResponse{
		Error: r.Error, ErrorMsg: r.ErrorMsg, Warnings: r.Warnings, FailedIds: r.FailedIDs,
	}
	for _, m := range r.MisconfiguredEntries {
		out.MisconfiguredEntries = append(out.MisconfiguredEntries, &pb.MisconfiguredEntry{
			EntryId: m.EntryID, Reason: m.Reason, OtherLocations: m.OtherLocations, Warning: m.Warning,
		})
	}
	for _, v := range r.Violations {
		out.Violations = append(out.Violations, &pb.SettingsViolation{Field: v.Field, Problem: v.Problem})
	}
	if !r.Error {
		out.Settings = settingsPB(r.Settings)
	}
	return out
}
