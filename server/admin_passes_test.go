package server_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cloudkey/cloudkey/cache"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// passesStack is a visitor stack (the demo's harbor-view and
// foundry-lofts) with an admin client and keys of each property.
type passesStack struct {
	st              *stack
	admin           pb.AdminServiceClient
	guest           pb.GuestServiceClient
	harbor, foundry context.Context
	links           func() []string // guest tokens sent, in order
	invite          func(t *testing.T, id string, arrival time.Time)
	harborKeyName   string
	harborKeyID     string
}

func newPassesStack(t *testing.T) *passesStack {
	t.Helper()
	st, mem := visitorStack(t)
	keys := adminkey.NewStore(st.redis.Client(), cache.DefaultPrefix)
	mk := func(scope adminkey.Scope, name string) (context.Context, adminkey.Key) {
		plain, k, err := keys.CreateScoped(context.Background(), scope, name)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(context.Background(), "x-auth-scheme", "api-token", "x-auth-apikey", plain), k
	}
	conn, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &passesStack{st: st, admin: pb.NewAdminServiceClient(conn), guest: pb.NewGuestServiceClient(conn)}
	var hk adminkey.Key
	p.harbor, hk = mk(adminkey.Scope{Property: "harbor-view"}, "harbor manager")
	p.harborKeyName, p.harborKeyID = hk.Name, hk.ID
	p.foundry, _ = mk(adminkey.Scope{Property: "foundry-lofts"}, "foundry manager")
	p.links = func() []string {
		var out []string
		for _, m := range mem.Messages() {
			out = append(out, strings.TrimPrefix(m.Link, st.http+"/g/"))
		}
		return out
	}
	p.invite = func(t *testing.T, id string, arrival time.Time) {
		t.Helper()
		body := fixture(t, "invite_created.json", arrival)
		body = bytes.Replace(body, []byte(`"id": "9876543"`), []byte(`"id": "`+id+`"`), 1)
		body = bytes.Replace(body, []byte("Ada.Lovelace@Example.com"), []byte(id+"@example.com"), 1)
		if code, resp := st.do(t, "POST", "/webhooks/envoy", body, envoy.SignatureHeader, envoy.Sign(body, []byte(testEnvoySecret))); code != 200 || !strings.Contains(resp, "ISSUED") {
			t.Fatalf("invite %s: %d %s", id, code, resp)
		}
	}
	return p
}

func passIDs(r *pb.ListPassesResponse) string {
	var ids []string
	for _, p := range r.GetPasses() {
		ids = append(ids, p.GetVisitorName()+":"+p.GetState())
	}
	return strings.Join(ids, " ")
}

// The manager's view: a property's passes by location or building, state
// and window; a key of another property sees none of them; EndPass ends
// one at once (the guest page says so, guest unlock is refused).
func TestAdminListAndEndPasses(t *testing.T) {
	p := newPassesStack(t)
	now := time.Now()
	p.invite(t, "inv-now", now)                    // active: now-15m to now+2h
	p.invite(t, "inv-later", now.Add(5*time.Hour)) // upcoming
	if _, err := p.admin.SetBuilding(p.harbor, &pb.SetBuildingRequest{BuildingId: "hv-tower", Building: &pb.Building{Name: "Harbor Tower", LocationId: location}}); err != nil {
		t.Fatal(err)
	}
	ts := timestamppb.New
	tests := []struct {
		name string
		ctx  context.Context
		req  *pb.ListPassesRequest
		want string
	}{
		{"all of harbor-view", p.harbor, &pb.ListPassesRequest{}, "Ada Lovelace:ACTIVE Ada Lovelace:UPCOMING"},
		{"by location", p.harbor, &pb.ListPassesRequest{LocationId: location}, "Ada Lovelace:ACTIVE Ada Lovelace:UPCOMING"},
		{"by building", p.harbor, &pb.ListPassesRequest{BuildingId: "hv-tower"}, "Ada Lovelace:ACTIVE Ada Lovelace:UPCOMING"},
		{"active", p.harbor, &pb.ListPassesRequest{State: "active"}, "Ada Lovelace:ACTIVE"},
		{"upcoming", p.harbor, &pb.ListPassesRequest{State: "UPCOMING"}, "Ada Lovelace:UPCOMING"},
		{"ended", p.harbor, &pb.ListPassesRequest{State: "ENDED"}, ""},
		{"window in 4 to 6 hours", p.harbor, &pb.ListPassesRequest{From: ts(now.Add(4 * time.Hour)), To: ts(now.Add(6 * time.Hour))}, "Ada Lovelace:UPCOMING"},
		{"window in the last hour", p.harbor, &pb.ListPassesRequest{From: ts(now.Add(-time.Hour)), To: ts(now)}, "Ada Lovelace:ACTIVE"},
		{"foundry-lofts sees none of harbor's", p.foundry, &pb.ListPassesRequest{}, ""},
	}
	for _, tt := range tests {
		r, err := p.admin.ListPasses(tt.ctx, tt.req)
		if err != nil || passIDs(r) != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, passIDs(r), err, tt.want)
		}
	}
	all, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{})
	if err != nil || len(all.GetPasses()) != 2 {
		t.Fatalf("ListPasses = %v, %v", all, err)
	}
	active := all.GetPasses()[0]
	if active.GetIssuedVia() != "INVITE" || active.GetDelivery().GetState() != "SENT" || active.GetDelivery().GetChannel() != "email,sms" ||
		active.GetLocationId() != location || strings.Join(active.GetBuildingIds(), ",") != "hv-tower" || len(active.GetDoors()) == 0 ||
		active.GetProperty() != "harbor-view" {
		t.Errorf("active pass = %v", active)
	}

	// Refusals, each naming the field or the property.
	refusals := []struct {
		name  string
		call  func() error
		code  codes.Code
		field string // "" when the answer has no field violation
	}{
		{"foundry names harbor-view", func() error {
			_, err := p.admin.ListPasses(p.foundry, &pb.ListPassesRequest{Property: "harbor-view"})
			return err
		}, codes.PermissionDenied, ""},
		{"foundry lists harbor's location", func() error {
			_, err := p.admin.ListPasses(p.foundry, &pb.ListPassesRequest{LocationId: location})
			return err
		}, codes.PermissionDenied, ""},
		{"foundry ends harbor's pass", func() error {
			_, err := p.admin.EndPass(p.foundry, &pb.EndPassRequest{PassId: active.GetPassId()})
			return err
		}, codes.NotFound, ""},
		{"bad state", func() error { _, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{State: "SOON"}); return err }, codes.InvalidArgument, "state"},
		{"page too large", func() error { _, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{PageSize: 500}); return err }, codes.InvalidArgument, "page_size"},
		{"to before from", func() error {
			_, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{From: ts(now), To: ts(now.Add(-time.Hour))})
			return err
		}, codes.InvalidArgument, "to"},
		{"bad page token", func() error {
			_, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{PageToken: "%%"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"location and building", func() error {
			_, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{LocationId: location, BuildingId: "hv-tower"})
			return err
		}, codes.InvalidArgument, "building_id"},
		{"no pass id", func() error { _, err := p.admin.EndPass(p.harbor, &pb.EndPassRequest{}); return err }, codes.InvalidArgument, "pass_id"},
		{"unknown pass", func() error { _, err := p.admin.EndPass(p.harbor, &pb.EndPassRequest{PassId: "p-unknown"}); return err }, codes.NotFound, ""},
	}
	for _, tt := range refusals {
		err := tt.call()
		if status.Code(err) != tt.code || (tt.field != "" && field(err) != tt.field) {
			t.Errorf("%s: %v (field %q); want %s about %q", tt.name, err, field(err), tt.code, tt.field)
		}
	}

	// The manager ends the active pass mid-visit.
	token := p.links()[0]
	if g, err := p.guest.GetPass(context.Background(), &pb.GetPassRequest{Token: token}); err != nil || g.GetState() != pb.PassState_PASS_STATE_ACTIVE {
		t.Fatalf("guest page before: %v, %v", g, err)
	}
	ended, err := p.admin.EndPass(p.harbor, &pb.EndPassRequest{PassId: active.GetPassId()})
	if err != nil || ended.GetPass().GetState() != "ENDED" || !strings.Contains(ended.GetPass().GetEndReason(), "harbor manager") {
		t.Fatalf("EndPass = %v, %v", ended, err)
	}
	if g, err := p.guest.GetPass(context.Background(), &pb.GetPassRequest{Token: token}); err != nil || g.GetState() != pb.PassState_PASS_STATE_ENDED || !strings.Contains(g.GetMessage(), "ended") {
		t.Errorf("guest page after: %v, %v", g, err)
	}
	opened := len(p.st.sim.Unlocks())
	if r, err := p.guest.GuestUnlock(context.Background(), &pb.GuestUnlockRequest{Token: token, EntryId: "101"}); err != nil || r.GetResult().GetStatus() == pb.UnlockStatus_UNLOCK_STATUS_OK {
		t.Errorf("guest unlock after EndPass = %v, %v", r, err)
	}
	if n := len(p.st.sim.Unlocks()); n != opened {
		t.Errorf("an ended pass opened a door")
	}
	if r, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{State: "ENDED"}); err != nil || passIDs(r) != "Ada Lovelace:ENDED" {
		t.Errorf("ended: %q, %v", passIDs(r), err)
	}
}

// The audit beyond unlocks: a settings change (who, before and after), a
// pass issued (by Envoy's invite) and ended (by the manager), an import
// with tile grants and a grant, each under its kind and property; a
// foundry-lofts key sees none of harbor-view's.
func TestAdminAuditKinds(t *testing.T) {
	p := newPassesStack(t)
	harborActor := "admin:" + p.harborKeyName + "/" + p.harborKeyID
	settings, err := p.admin.GetVisitorSettings(p.harbor, &pb.GetVisitorSettingsRequest{LocationId: location})
	if err != nil {
		t.Fatal(err)
	}
	changed := settings.GetSettings()
	changed.InviteOnly = true
	changed.AccessDuration = durationpb.New(time.Hour)
	if r, err := p.admin.UpdateVisitorSettings(p.harbor, &pb.UpdateVisitorSettingsRequest{LocationId: location, Settings: changed}); err != nil || r.GetError() {
		t.Fatalf("UpdateVisitorSettings = %v, %v", r, err)
	}
	p.invite(t, "inv-audit", time.Now())
	list, err := p.admin.ListPasses(p.harbor, &pb.ListPassesRequest{})
	if err != nil || len(list.GetPasses()) != 1 {
		t.Fatalf("ListPasses = %v, %v", list, err)
	}
	passID := list.GetPasses()[0].GetPassId()
	if _, err := p.admin.EndPass(p.harbor, &pb.EndPassRequest{PassId: passID}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.admin.SetBuilding(p.harbor, &pb.SetBuildingRequest{BuildingId: "hv-tower", Building: &pb.Building{Name: "Harbor Tower", LocationId: location}}); err != nil {
		t.Fatal(err)
	}
	csv := "Full Name,Email,Phone,Buildings\nLiz Thomson,liz@example.com,(555) 555-5555,hv-tower\nPat Doe,pat@example.com,,\n"
	imp, err := p.admin.ImportContacts(p.harbor, &pb.ImportContactsRequest{Csv: &httpbody.HttpBody{ContentType: "text/csv", Data: []byte(csv)}})
	if err != nil || imp.GetCreated() != 2 || imp.GetGranted() != 1 || len(imp.GetWarnings()) != 1 || !strings.Contains(imp.GetWarnings()[0], "line 2") {
		t.Fatalf("ImportContacts = %v, %v", imp, err)
	}
	if _, err := p.admin.GrantTile(p.harbor, &pb.GrantTileRequest{Email: "pat@example.com", BuildingId: "hv-tower"}); err != nil {
		t.Fatal(err)
	}

	kinds := func(ctx context.Context, kind string) []*pb.AuditEvent {
		r, err := p.admin.ListAuditEvents(ctx, &pb.ListAuditEventsRequest{Kind: kind})
		if err != nil {
			t.Fatalf("ListAuditEvents(%s): %v", kind, err)
		}
		return r.GetEvents()
	}
	// The writer is asynchronous: wait for the last record written.
	eventually(t, "the tile grant audited", func() bool { return len(kinds(p.harbor, "tile_granted")) == 1 })
	tests := []struct {
		kind    string
		user    string
		subject string
		says    []string
	}{
		{"settings_changed", harborActor, location, []string{`accessDuration: "7200s" → "3600s"`}},
		{"pass_issued", "envoy", passID, []string{"Ada Lovelace", "(INVITE)"}},
		{"pass_ended", harborActor, passID, []string{"ended by " + harborActor}},
		{"contacts_imported", harborActor, "contacts", []string{"2 created", "1 tile grants"}},
		{"tile_granted", harborActor, "pat@example.com", []string{"building hv-tower"}},
	}
	for _, tt := range tests {
		ev := kinds(p.harbor, tt.kind)
		if len(ev) == 0 {
			t.Errorf("%s: no event", tt.kind)
			continue
		}
		e := ev[0]
		if e.GetKind() != tt.kind || e.GetUser() != tt.user || e.GetEntryId() != tt.subject || e.GetProperty() != "harbor-view" {
			t.Errorf("%s: %v", tt.kind, e)
		}
		for _, s := range tt.says {
			if !strings.Contains(e.GetMessage(), s) {
				t.Errorf("%s: message %q does not say %q", tt.kind, e.GetMessage(), s)
			}
		}
	}
	if n := len(kinds(p.harbor, "settings_changed")); n != 2 { // visitorStack's first save, then this change
		t.Errorf("%d settings changes, want 2", n)
	}
	if first := kinds(p.harbor, "settings_changed")[1]; !strings.HasPrefix(first.GetMessage(), "created: ") {
		t.Errorf("the first save: %q", first.GetMessage())
	}
	// The kinds filter combines with the others; unlocks keep their kind.
	if ev, err := p.admin.ListAuditEvents(p.harbor, &pb.ListAuditEventsRequest{Kind: "pass_ended", User: harborActor}); err != nil || len(ev.GetEvents()) != 1 {
		t.Errorf("pass_ended by the manager: %v, %v", ev, err)
	}
	if n := len(kinds(p.harbor, "unlock")); n != 0 {
		t.Errorf("%d unlock events, want none", n)
	}
	if n := len(kinds(p.foundry, "")); n != 0 {
		t.Errorf("foundry-lofts sees %d of harbor-view's events", n)
	}
	if _, err := p.admin.ListAuditEvents(p.harbor, &pb.ListAuditEventsRequest{Kind: "gossip"}); status.Code(err) != codes.InvalidArgument || field(err) != "kind" {
		t.Errorf("bad kind: %v", err)
	}
}
