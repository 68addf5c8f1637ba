package server

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// TestSettingsChangesPresence: the audit's before and after name a field
// with presence (enabled) whether it is set, changed or unset again.
func TestSettingsChangesPresence(t *testing.T) {
	tests := []struct {
		name          string
		before, after *pb.VisitorSettings
		want          string
	}{
		{"set", &pb.VisitorSettings{}, &pb.VisitorSettings{Enabled: proto.Bool(false)}, "enabled: (none) → false"},
		{"changed", &pb.VisitorSettings{Enabled: proto.Bool(false)}, &pb.VisitorSettings{Enabled: proto.Bool(true)}, "enabled: false → true"},
		{"unset again", &pb.VisitorSettings{Enabled: proto.Bool(false)}, &pb.VisitorSettings{}, "enabled: false → (none)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := settingsChanges(tt.before, tt.after); !strings.Contains(got, tt.want) {
				t.Errorf("settingsChanges = %q, want %q in it", got, tt.want)
			}
		})
	}
}
