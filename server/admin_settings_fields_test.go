package server_test

import (
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// TestVisitorSettingsFields: enabled, remote_unlock and hosts round-trip
// through the admin API (unset stays unset: on); refused settings carry
// one BadRequest violation per field, each with its own problem; the
// Envoy host shows in ListPasses.
func TestVisitorSettingsFields(t *testing.T) {
	p := newPassesStack(t)
	get := func(t *testing.T) *pb.VisitorSettings {
		t.Helper()
		r, err := p.admin.GetVisitorSettings(p.harbor, &pb.GetVisitorSettingsRequest{LocationId: location})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetSettings()
	}
	saved := get(t)
	if saved.Enabled != nil || saved.GetHosts() != nil || saved.GetEntries()[0].RemoteUnlock != nil {
		t.Fatalf("settings saved without the fields read back with them: %v", saved)
	}

	t.Run("round trip", func(t *testing.T) {
		in := proto.Clone(saved).(*pb.VisitorSettings)
		in.Enabled = proto.Bool(true)
		in.Entries[0].RemoteUnlock = proto.Bool(false)
		in.Hosts = map[string]*pb.VisitorHostSettings{"Erin@Example.com": {GuestsEnabled: proto.Bool(false)}, "bob@example.com": {}}
		r, err := p.admin.UpdateVisitorSettings(p.harbor, &pb.UpdateVisitorSettingsRequest{LocationId: location, Settings: in})
		if err != nil || r.GetError() {
			t.Fatalf("UpdateVisitorSettings = %v, %v", r, err)
		}
		if m := r.GetMisconfiguredEntries(); len(m) != 1 || m[0].GetEntryId() != in.Entries[0].EntryId || !m[0].GetWarning() {
			t.Errorf("misconfigured %v", m)
		}
		got := get(t)
		if got.Enabled == nil || !got.GetEnabled() || got.GetEntries()[0].RemoteUnlock == nil || got.GetEntries()[0].GetRemoteUnlock() ||
			len(got.GetHosts()) != 2 || got.GetHosts()["erin@example.com"].GuestsEnabled == nil || got.GetHosts()["erin@example.com"].GetGuestsEnabled() ||
			got.GetHosts()["bob@example.com"].GuestsEnabled != nil {
			t.Errorf("read back %v", got)
		}
	})

	t.Run("one violation per field", func(t *testing.T) {
		in := proto.Clone(saved).(*pb.VisitorSettings)
		in.AccessDuration = durationpb.New(0)
		in.TimeZone = "Mars/Olympus"
		in.Hosts = map[string]*pb.VisitorHostSettings{"erin": {GuestsEnabled: proto.Bool(false)}}
		_, err := p.admin.UpdateVisitorSettings(p.harbor, &pb.UpdateVisitorSettingsRequest{LocationId: location, Settings: in})
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument {
			t.Fatalf("err %v", err)
		}
		want := map[string]string{
			"settings.access_duration": "0s must be between 1m0s and 168h0m0s",
			"settings.time_zone":       `"Mars/Olympus" is not an IANA time zone name`,
			`settings.hosts["erin"]`:   `"erin" is not an email address`,
		}
		var got map[string]string
		var res *pb.UpdateVisitorSettingsResponse
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.BadRequest:
				got = map[string]string{}
				for _, v := range d.GetFieldViolations() {
					got[v.GetField()] = v.GetDescription()
				}
			case *pb.UpdateVisitorSettingsResponse:
				res = d
			}
		}
		if len(got) != len(want) {
			t.Fatalf("violations %v, want %v", got, want)
		}
		for f, problem := range want {
			if got[f] != problem {
				t.Errorf("%s: %q, want %q", f, got[f], problem)
			}
		}
		if len(res.GetViolations()) != 3 || res.GetViolations()[0].GetField() != "settings.access_duration" {
			t.Errorf("response detail %v", res)
		}
		if after := get(t); after.GetTimeZone() == "Mars/Olympus" || after.GetHosts()["erin"] != nil {
			t.Error("refused settings were saved")
		}
	})

	t.Run("Envoy host in ListPasses", func(t *testing.T) {
		// erin@example.com, the fixture's inviter, has guests disabled
		// and the lobby no remote unlock since the round trip: undone.
		in := get(t)
		in.Hosts, in.Entries[0].RemoteUnlock = nil, nil
		if _, err := p.admin.UpdateVisitorSettings(p.harbor, &pb.UpdateVisitorSettingsRequest{LocationId: location, Settings: in}); err != nil {
			t.Fatal(err)
		}
		p.invite(t, "inv-host", time.Now().Add(time.Hour))
		list, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{})
		if err != nil || len(list.GetPasses()) != 1 {
			t.Fatalf("ListPasses = %v, %v", list, err)
		}
		if ps := list.GetPasses()[0]; ps.GetEnvoyHost() != "Erin Ekström" || ps.GetEnvoyHostEmail() != "erin@example.com" || ps.GetHost() != "" {
			t.Errorf("pass %v", ps)
		}
	})
}
