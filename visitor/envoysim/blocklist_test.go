package envoysim

import (
	"net/http"
	"testing"

	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// TestBlocklistEvents: flagged sign-ins deliver entry_blacklist_review
// (linked to the invite for an invitee, with the walk-in's host), and a
// denial entry_blacklist_deny, each signed and of the SDK's shape (the
// fixture's receiver checks both).
func TestBlocklistEvents(t *testing.T) {
	f := newFixture(t)
	status, body := f.api("POST", "/api/v3/invites", f.token(), inviteBody)
	if status != http.StatusCreated && status != http.StatusOK {
		t.Fatalf("create invite: %d %s", status, body)
	}
	inv := inviteID(t, body)
	if f.next().event.Name != envoy.InviteCreated {
		t.Fatal("no invite_created")
	}
	flagged, err := f.srv.SignInFlagged(inv)
	if err != nil {
		t.Fatal(err)
	}
	walkIn, err := f.srv.WalkInFlagged(DemoLocationID, Visitor{FullName: "Mallory", Host: "Erin", HostEmail: "erin@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Deny(flagged); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, event, id, invite, hostEmail string
	}{
		{"invitee flagged", envoy.EntryBlacklistReview, flagged, inv, ""},
		{"walk-in flagged", envoy.EntryBlacklistReview, walkIn, "", "erin@example.com"},
		{"invitee denied", envoy.EntryBlacklistDeny, flagged, inv, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := f.next().event
			if ev.Name != tt.event || ev.ID != tt.id || ev.InviteID != tt.invite || ev.HostEmail != tt.hostEmail || ev.Type != envoy.TypeEntry {
				t.Errorf("event %+v", ev)
			}
		})
	}
	if inv, _ := f.srv.Invite(inv); inv.EntryID != flagged {
		t.Errorf("invite's entry %q, want %q", inv.EntryID, flagged)
	}
	if err := f.srv.Deny("nope"); err == nil {
		t.Error("denied an unknown entry")
	}
	if _, err := f.srv.SignInFlagged("nope"); err == nil {
		t.Error("flagged an unknown invite")
	}
}
