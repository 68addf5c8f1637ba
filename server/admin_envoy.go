package server

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// envoyState is the settings answer's Envoy connection state at
// property's location; nil when no Envoy connection serves it.
func (s *adminServer) envoyState(property, location string) *pb.EnvoyConnectionState {
	st, ok := s.visitors.EnvoyState(property, location)
	if !ok {
		return nil
	}
	out := &pb.EnvoyConnectionState{TokenValid: st.TokenValid, AuthError: st.AuthError, LastError: st.LastError}
	if !st.LastErrorAt.IsZero() {
		out.LastErrorAt = timestamppb.New(st.LastErrorAt)
	}
	return out
}
