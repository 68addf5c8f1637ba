package visitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRegistration(t *testing.T) {
	h := newHarness(t)
	h.configure(nil)
	ctx := context.Background()
	good := Registration{
		Location: loc, FullName: " Ada  Lovelace ", Email: "Ada@Example.com", VisitorType: "Visitor",
		ExpectedArrival: t0.Add(time.Hour), Host: "pat@acme.example",
	}

	id, out, err := h.svc.Register(ctx, good)
	if err != nil || out.Action != ActionIssued {
		t.Fatalf("Register = %q, %+v, %v", id, out, err)
	}
	token := h.tokenOf("ada@example.com")
	// The same path as an Envoy invite: the pass opens 15 min before arrival.
	h.clock.Set(t0.Add(45*time.Minute - time.Second))
	if v, _ := h.svc.PassView(ctx, token); v.State != StateUpcoming {
		t.Errorf("one second before the window: %s", v.State)
	}
	h.clock.Set(t0.Add(45 * time.Minute))
	if v, _ := h.svc.PassView(ctx, token); v.State != StateActive {
		t.Errorf("at the window start: %s", v.State)
	}

	// Blocked types are refused and not offered.
	blocked := good
	blocked.VisitorType = "Banned"
	if _, out, err := h.svc.Register(ctx, blocked); err != nil || out.Action != ActionRefused {
		t.Errorf("blocked type: %+v, %v", out, err)
	}
	types, err := h.svc.VisitorTypes(ctx, "", loc)
	if err != nil || fmt.Sprint(types) != "[Contractor Interview Visitor visitor]" {
		t.Errorf("VisitorTypes = %v, %v", types, err)
	}

	// The host sees their registrations, and only they can cancel one.
	regs, err := h.svc.Registrations(ctx, loc, "PAT@acme.example", t0)
	if err != nil || len(regs) != 2 || regs[0].Visit.VisitorName != "Ada Lovelace" {
		t.Fatalf("Registrations = %+v, %v", regs, err)
	}
	if _, err := h.svc.Cancel(ctx, loc, "mallory@acme.example", id); !errors.Is(err, ErrNoVisit) {
		t.Errorf("another host cancelled: %v", err)
	}
	if out, err := h.svc.Cancel(ctx, loc, "pat@acme.example", id); err != nil || out.Action != ActionEnded {
		t.Fatalf("Cancel = %+v, %v", out, err)
	}
	if v, _ := h.svc.PassView(ctx, token); v.State != StateEnded {
		t.Errorf("after cancel: %s", v.State)
	}

	for _, tt := range []struct {
		field  string
		change func(*Registration)
	}{
		{"full_name", func(r *Registration) { r.FullName = "  " }},
		{"email", func(r *Registration) { r.Email, r.Phone = "", "" }},
		{"email", func(r *Registration) { r.Email = "not-an-email" }},
		{"visitor_type", func(r *Registration) { r.VisitorType = "" }},
		{"expected_arrival", func(r *Registration) { r.ExpectedArrival = time.Time{} }},
		{"expected_arrival", func(r *Registration) { r.ExpectedArrival = t0.Add(-48 * time.Hour) }},
		{"building_id", func(r *Registration) { r.Location = "" }},
	} {
		r := good
		tt.change(&r)
		var fe *FieldError
		if _, _, err := h.svc.Register(ctx, r); !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("want a %s error, got %v", tt.field, err)
		}
	}
}

// TestRegistrationNames: a tile registration's link and guest page name
// the tenant building, else the property; and the tile issues the pass
// itself whatever invite only says.
func TestRegistrationNames(t *testing.T) {
	h := newHarness(t)
	svc, err := New(Config{
		Store: h.store, Access: OneSystem(h.access), Notifier: h.notes, BaseURL: "https://ck.example.com",
		Now: h.clock.Now, Logger: h.svc.log,
		PropertyName:    func(p string) string { return map[string]string{"harbor-view": "Harbor View"}[p] },
		DefaultProperty: "harbor-view",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st := defaultSettings()
	st.InviteOnly = false
	if _, err := svc.UpdateSettings(ctx, "", loc, st); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, building, email, want string
	}{
		{"building named", "Tower A", "ada@example.com", "Tower A"},
		{"no building name: the property's", "", "bob@example.com", "Harbor View"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, err := svc.Register(ctx, Registration{
				Location: loc, FullName: "Ada", Email: tt.email, VisitorType: "Visitor",
				ExpectedArrival: t0.Add(time.Hour), Host: "pat@acme.example", BuildingName: tt.building,
			})
			if err != nil || out.Action != ActionIssued {
				t.Fatalf("Register: %+v, %v (invite only off must not stop the tile)", out, err)
			}
			m, _ := h.notes.Last(tt.email)
			if m.Subject != "Your guest pass for "+tt.want || !strings.Contains(m.Body, "Your guest pass for "+tt.want+" opens") {
				t.Errorf("message %+v, want %q", m, tt.want)
			}
			view := must[View](t)(svc.PassView(ctx, h.tokenOf(tt.email)))
			if view.LocationName != tt.want {
				t.Errorf("guest page names %q, want %q", view.LocationName, tt.want)
			}
		})
	}
}

// TestRegistrationHostGuestsDisabled: a tenant contact whose guests the
// settings disable gets no pass for the visitors they register in the tile
// (the per-host permission covers the tile's host too); another contact does.
func TestRegistrationHostGuestsDisabled(t *testing.T) {
	h := newHarness(t)
	h.configure(func(s *Settings) {
		s.Hosts = map[string]HostSettings{"Pat@Acme.example": {GuestsEnabled: ptr(false)}}
	})
	ctx := context.Background()
	r := Registration{Location: loc, FullName: "Ada Lovelace", Email: "ada@example.com", VisitorType: "Visitor",
		ExpectedArrival: t0.Add(time.Hour), Host: "pat@acme.example"}
	if _, out, err := h.svc.Register(ctx, r); err != nil || out.Action != ActionRefused || !strings.Contains(out.Reason, "guests disabled") {
		t.Fatalf("pat's visitor: %+v, %v", out, err)
	}
	r.Host, r.Email = "sam@acme.example", "grace@example.com"
	if _, out, err := h.svc.Register(ctx, r); err != nil || out.Action != ActionIssued {
		t.Fatalf("sam's visitor: %+v, %v", out, err)
	}
}
