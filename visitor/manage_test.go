package visitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/unlock"
)

// The manager's view lists a location's passes by state and window, in
// pages, from the index written with each pass; EndPass ends one at once.
func TestListAndEndPasses(t *testing.T) {
	h := newHarness(t)
	// Invite only off: Eve's walk-in gets a pass at sign-in (the tile's
	// registrations get theirs either way).
	h.configure(func(st *Settings) { st.InviteOnly = false })
	ctx := context.Background()
	register := func(name, email string, arrival time.Duration) string {
		t.Helper()
		phone := ""
		if email == "" {
			phone = "+14155550123"
		}
		id, out, err := h.svc.Register(ctx, Registration{
			Location: loc, FullName: name, Email: email, Phone: phone, VisitorType: "Visitor",
			ExpectedArrival: t0.Add(arrival), Host: "Pat@Acme.example",
		})
		if err != nil || out.Action != ActionIssued {
			t.Fatalf("Register %s = %+v, %v", name, out, err)
		}
		return id
	}
	// Windows (15 min advance, 2 h): ada 06:45–09:00, bob 07:45–10:00,
	// cy 11:45–14:00, dee 23:45–02:00 next day.
	register("Ada", "ada@example.com", time.Hour)
	register("Bob", "bob@example.com", 2*time.Hour)
	register("Cy", "cy@example.com", 6*time.Hour)
	register("Dee", "", 18*time.Hour)  // phone only: the link goes by SMS
	h.clock.Set(t0.Add(2 * time.Hour)) // 08:00: ada and bob active
	// An Envoy walk-in at 08:00 (a sign-in), phone only.
	h.handle(event(t, "entry_sign_in", id("e-1"), attr("full-name", "Eve"), attr("email", ""), at("signed-in-at", h.clock.Now())))

	names := func(p PassPage) string {
		var s []string
		for _, x := range p.Passes {
			s = append(s, x.VisitorName)
		}
		return fmt.Sprint(s)
	}
	tests := []struct {
		name string
		q    PassQuery
		want string
	}{
		{"all", PassQuery{Location: loc}, "[Ada Bob Eve Cy Dee]"},
		{"the property's every location", PassQuery{}, "[Ada Bob Eve Cy Dee]"},
		{"active", PassQuery{Location: loc, State: StateActive}, "[Ada Bob Eve]"},
		{"upcoming", PassQuery{Location: loc, State: StateUpcoming}, "[Cy Dee]"},
		{"ended", PassQuery{Location: loc, State: StateEnded}, "[]"},
		{"overlapping 09:30-12:00", PassQuery{Location: loc, From: t0.Add(3*time.Hour + 30*time.Minute), To: t0.Add(6 * time.Hour)}, "[Bob Eve Cy]"},
		{"overlapping the next day", PassQuery{Location: loc, From: t0.Add(18 * time.Hour)}, "[Dee]"},
		{"another property's index is empty", PassQuery{Property: "foundry-lofts"}, "[]"},
	}
	for _, tt := range tests {
		p, err := h.svc.ListPasses(ctx, tt.q)
		if err != nil || names(p) != tt.want || p.Next != "" {
			t.Errorf("%s: %s next %q, %v; want %s", tt.name, names(p), p.Next, err, tt.want)
		}
	}

	// What a pass says: issuance, host, delivery.
	all, _ := h.svc.ListPasses(ctx, PassQuery{Location: loc})
	ada, eve, dee := all.Passes[0], all.Passes[2], all.Passes[4]
	if ada.Issued != IssuedTile || ada.Host != "pat@acme.example" || ada.Delivery.State != LinkSent || ada.Delivery.Channel != "email" || ada.State != StateActive {
		t.Errorf("ada = %+v", ada)
	}
	if eve.Issued != IssuedSignIn || eve.Host != "" {
		t.Errorf("eve = %+v", eve)
	}
	if dee.Delivery.State != LinkSent || dee.Delivery.Channel != "sms" || dee.State != StateUpcoming {
		t.Errorf("dee = %+v", dee)
	}

	// Pages of two carry on where the last stopped.
	var got []string
	q := PassQuery{Location: loc, Limit: 2}
	for range 5 {
		p, err := h.svc.ListPasses(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range p.Passes {
			got = append(got, x.VisitorName)
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	if fmt.Sprint(got) != "[Ada Bob Eve Cy Dee]" {
		t.Errorf("paged: %v", got)
	}

	// Bad queries name the field.
	for _, tt := range []struct {
		q     PassQuery
		field string
	}{
		{PassQuery{Limit: MaxPassPage + 1}, "page_size"},
		{PassQuery{State: "SOON"}, "state"},
		{PassQuery{From: t0, To: t0}, "to"},
		{PassQuery{Cursor: "!!"}, "page_token"},
	} {
		if _, err := h.svc.ListPasses(ctx, tt.q); !errors.Is(err, ErrBadPassQuery) || !containsField(err, tt.field) {
			t.Errorf("%+v: %v; want ErrBadPassQuery about %s", tt.q, err, tt.field)
		}
	}

	// EndPass: the guest page says ended, unlock refused, audited as the manager's.
	token := h.tokenOf("bob@example.com")
	bob := all.Passes[1]
	if _, err := h.svc.EndPass(ctx, "foundry-lofts", bob.PassID, "admin:foundry"); !errors.Is(err, ErrNoVisit) {
		t.Errorf("another property ended it: %v", err)
	}
	ended, err := h.svc.EndPass(ctx, "", bob.PassID, "admin:harbor")
	if err != nil || ended.State != StateEnded || ended.EndReason != "ended by admin:harbor" {
		t.Fatalf("EndPass = %+v, %v", ended, err)
	}
	if v, _ := h.svc.PassView(ctx, token); v.State != StateEnded {
		t.Errorf("guest page after EndPass: %s", v.State)
	}
	if r, err := h.svc.GuestUnlock(ctx, token, "101"); err != nil || r.Status == unlock.OK {
		t.Errorf("guest unlock after EndPass = %+v, %v", r, err)
	}
	if p, _ := h.svc.ListPasses(ctx, PassQuery{Location: loc, State: StateEnded}); names(p) != "[Bob]" {
		t.Errorf("ended: %s", names(p))
	}
	if _, err := h.svc.EndPass(ctx, "", "p-nosuchpass", "admin:harbor"); !errors.Is(err, ErrNoVisit) {
		t.Errorf("unknown pass: %v", err)
	}

	// The audit: five passes issued (the tile's by its host, the walk-in's
	// by Envoy), Bob's ended by the manager, once.
	issued := h.audit.kinds(unlock.KindPassIssued)
	if len(issued) != 5 || issued[0].Email != "tile:pat@acme.example" || issued[0].EntryID != ada.PassID ||
		issued[0].Property != "" && issued[0].Property != h.svc.property("") || !strings.Contains(issued[0].Message, "Ada") {
		t.Errorf("issued: %+v", issued)
	}
	if issued[len(issued)-1].Email != "envoy" || !strings.Contains(issued[len(issued)-1].Message, "SIGN_IN") {
		t.Errorf("the walk-in's issuance: %+v", issued[len(issued)-1])
	}
	endedRecs := h.audit.kinds(unlock.KindPassEnded)
	if len(endedRecs) != 1 || endedRecs[0].Email != "admin:harbor" || endedRecs[0].EntryID != bob.PassID || !strings.Contains(endedRecs[0].Message, "ended by admin:harbor") {
		t.Errorf("ended: %+v", endedRecs)
	}

	// The property removed: every pass not yet ended ends (Bob's was),
	// another property's none; Ada's guest page says ended.
	if n, err := h.svc.EndPropertyPasses(ctx, "foundry-lofts", "cloudkey:property-removed"); err != nil || n != 0 {
		t.Errorf("another property's: %d, %v", n, err)
	}
	n, err := h.svc.EndPropertyPasses(ctx, "", "cloudkey:property-removed")
	if err != nil || n != 4 {
		t.Fatalf("EndPropertyPasses = %d, %v; want Ada, Eve, Cy and Dee", n, err)
	}
	if p, _ := h.svc.ListPasses(ctx, PassQuery{Location: loc, State: StateEnded}); names(p) != "[Ada Bob Eve Cy Dee]" {
		t.Errorf("ended after the removal: %s", names(p))
	}
	if v, _ := h.svc.PassView(ctx, h.tokenOf("ada@example.com")); v.State != StateEnded {
		t.Errorf("Ada's guest page after the removal: %s", v.State)
	}
}

func containsField(err error, field string) bool {
	return err != nil && strings.Contains(err.Error(), field+":")
}

// kinds returns the audit records of kind ("" for unlock attempts).
func (a *audits) kinds(kind string) []unlock.Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []unlock.Attempt
	for _, at := range a.all {
		if at.Kind == kind {
			out = append(out, at)
		}
	}
	return out
}

// Protect's activations and suspensions are audited under the
// location's property, as Envoy's.
func TestProtectAudited(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	if err := h.sim.SetUserStatus("erin@example.com", access.StatusSuspended); err != nil {
		t.Fatal(err)
	}
	if o := h.handle(employeeSignIn(t, "x7", "erin@example.com")); o.Action != ActionEmployeeActivated {
		t.Fatalf("sign-in: %+v", o)
	}
	if o := h.handle(employeeSignOut(t, "x7", "erin@example.com")); o.Action != ActionEmployeeSuspended {
		t.Fatalf("sign-out: %+v", o)
	}
	for _, kind := range []string{unlock.KindProtectActivated, unlock.KindProtectSuspended} {
		recs := h.audit.kinds(kind)
		if len(recs) != 1 || recs[0].Email != "envoy" || recs[0].EntryID != "erin@example.com" ||
			recs[0].Property != h.svc.property("") || !strings.Contains(recs[0].Message, loc) {
			t.Errorf("%s: %+v", kind, recs)
		}
	}
	if n := len(h.audit.list()); n != 0 {
		t.Errorf("%d unlock records", n)
	}
}
