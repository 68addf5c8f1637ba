package server

import (
	"context"

	"google.golang.org/grpc"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/unlock"
)

// residentServer adapts unlock.Portfolio to the generated gRPC interface:
// convert and delegate, nothing else.
type residentServer struct {
	pb.UnimplementedResidentServiceServer
	svc *unlock.Portfolio
	// answers keeps each user's encoded ListEntries answer (encoded.go).
	answers *encodedAnswers
	// answerMemory bounds answers (bytes; 0: DefaultAnswerMemory).
	answerMemory int64
	// listInfo and listNext are listEntriesHandler's, made once.
	listInfo *grpc.UnaryServerInfo
	listNext grpc.UnaryHandler
	// nearMisses, when set, tells a resident who is not found that the
	// building's records spell their email differently (spelling.go);
	// defaultProperty is what a token naming no property acts on.
	nearMisses      NearMissLookup
	defaultProperty string
}

func (s *residentServer) GetMe(ctx context.Context, _ *pb.GetMeRequest) (*pb.GetMeResponse, error) {
	me, err := s.svc.Me(ctx, callerEmail(ctx), callerProperties(ctx))
	if err != nil {
		return nil, s.explainNotFound(ctx, err)
	}
	if me.Reason == unlock.ReasonUserNotFound && s.spelledDifferently(ctx) {
		me.Message = SpellingMessage
	}
	out := &pb.GetMeResponse{
		Email: me.Email, Connected: me.Connected, Reason: me.Reason,
		Message: me.Message, Name: me.Name, EntryCount: int32(me.EntryCount),
		Systems: make([]*pb.SystemStatus, len(me.Systems)),
	}
	for i, a := range me.Systems {
		out.Systems[i] = &pb.SystemStatus{Property: a.Property, Connection: a.Connection, System: a.System, Connected: a.Connected,
			Reason: a.Reason, Message: a.Message, EntryCount: int32(a.EntryCount)}
	}
	return out, nil
}

// ListEntries completes the generated interface; the servers answer
// ListEntries through listEntriesHandler (encoded.go), which shares one
// encoded answer per cached view. This returns a copy the caller may keep.
func (s *residentServer) ListEntries(ctx context.Context, _ *pb.ListEntriesRequest) (*pb.ListEntriesResponse, error) {
	m, err := s.listEntries(ctx)
	if err != nil {
		return nil, err
	}
	return m.ProtoReflect().Interface().(*pb.ListEntriesResponse), nil // a new message
}

func (s *residentServer) SetFavorite(ctx context.Context, req *pb.SetFavoriteRequest) (*pb.SetFavoriteResponse, error) {
	e, err := s.svc.SetFavorite(ctx, callerEmail(ctx), callerProperties(ctx), req.GetEntryId(), req.GetFavorite())
	if err != nil {
		return nil, s.explainNotFound(ctx, err)
	}
	return &pb.SetFavoriteResponse{Entry: entryPB(e)}, nil
}

func (s *residentServer) Unlock(ctx context.Context, req *pb.UnlockRequest) (*pb.UnlockResponse, error) {
	rs, err := s.svc.Unlock(ctx, callerEmail(ctx), callerProperties(ctx), req.GetEntryIds())
	if err != nil {
		return nil, s.explainNotFound(ctx, err)
	}
	out := &pb.UnlockResponse{Results: make([]*pb.UnlockResult, len(rs))}
	for i, r := range rs {
		out.Results[i] = &pb.UnlockResult{
			EntryId: r.EntryID, Status: unlockStatusPB[r.Status],
			Message: r.Message, LatencyMs: r.Latency.Milliseconds(),
		}
	}
	return out, nil
}

var unlockStatusPB = map[unlock.Status]pb.UnlockStatus{
	unlock.OK:          pb.UnlockStatus_UNLOCK_STATUS_OK,
	unlock.Denied:      pb.UnlockStatus_UNLOCK_STATUS_DENIED,
	unlock.Timeout:     pb.UnlockStatus_UNLOCK_STATUS_TIMEOUT,
	unlock.Unavailable: pb.UnlockStatus_UNLOCK_STATUS_UNAVAILABLE,
	unlock.Error:       pb.UnlockStatus_UNLOCK_STATUS_ERROR,
}

func entryPB(e unlock.Entry) *pb.Entry {
	return &pb.Entry{Id: e.ID, Name: e.Name, Zone: e.Zone, Site: e.Site, Favorite: e.Favorite,
		System: e.System, Restriction: e.Restriction, Property: e.Property}
}
