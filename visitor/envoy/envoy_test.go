package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifySignature(t *testing.T) {
	body := fixture(t, "entry_sign_in")
	secret := []byte("envoy-client-secret")
	good := Sign(body, secret)
	altered := bytes.Replace(body, []byte("Grace Hopper"), []byte("Grace Hoppex"), 1)
	tests := []struct {
		name   string
		body   []byte
		header string
		secret []byte
		want   bool
	}{
		{"good", body, good, secret, true},
		{"good with surrounding space", body, " " + good + " ", secret, true},
		{"missing", body, "", secret, false},
		{"wrong secret", body, Sign(body, []byte("other")), secret, false},
		{"body altered", altered, good, secret, false},
		{"not base64", body, "%%%", secret, false},
		{"hex instead of base64", body, "deadbeef", secret, false},
		{"truncated", body, good[:20], secret, false},
		{"empty secret never verifies", body, Sign(body, nil), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.body, tt.header, tt.secret); got != tt.want {
				t.Errorf("VerifySignature = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseFixtures(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	loc := Location{ID: "152347", Name: "Harbor View Residences", TimeZone: "Europe/Paris"}
	tests := []struct {
		file string
		want Event
	}{
		{"invite_created", Event{Name: InviteCreated, Location: loc, Type: TypeInvite, ID: "9876543",
			FullName: "Ada Lovelace", Email: "Ada.Lovelace@Example.com", Phone: "+33612345678", Flow: "Visitor",
			Host: "Erin Ekström", HostEmail: "erin@example.com", ExpectedArrival: at("2026-11-24T09:00:00Z")}},
		{"invite_updated", Event{Name: InviteUpdated, Location: loc, Type: TypeInvite, ID: "9876543",
			FullName: "Ada Lovelace", Email: "Ada.Lovelace@Example.com", Phone: "+33612345678", Flow: "Visitor",
			Host: "Erin Ekström", HostEmail: "erin@example.com", ExpectedArrival: at("2026-11-24T10:30:00Z")}},
		{"entry_sign_in", Event{Name: EntrySignIn, Location: loc, Type: TypeEntry, ID: "11223344",
			FullName: "Grace Hopper", Email: "grace@example.org", Phone: "+33698765432", Flow: "Contractor",
			Host: "Erin Ekström", HostEmail: "erin@example.com", SignedInAt: at("2026-11-24T08:57:12Z")}},
		{"entry_sign_in_invited", Event{Name: EntrySignIn, Location: loc, Type: TypeEntry, ID: "11223399",
			FullName: "Ada Lovelace", Email: "ada.lovelace@example.com", Phone: "+33612345678", Flow: "Visitor",
			Host: "Erin Ekström", HostEmail: "erin@example.com", SignedInAt: at("2026-11-24T08:52:40Z"), InviteID: "9876543"}},
		{"entry_sign_out", Event{Name: EntrySignOut, Location: loc, Type: TypeEntry, ID: "11223344",
			FullName: "Grace Hopper", Email: "grace@example.org", Phone: "+33698765432", Flow: "Contractor",
			Host: "Erin Ekström", HostEmail: "erin@example.com", SignedInAt: at("2026-11-24T08:57:12Z"), SignedOutAt: at("2026-11-24T11:02:05Z")}},
		{"employee_entry_sign_in", Event{Name: EmployeeEntrySignIn, Location: loc, Type: TypeEntry, ID: "55667788",
			FullName: "Erin Ekström", Email: "Erin@Example.com", Flow: "Employee registration",
			SignedInAt: at("2026-11-24T07:45:03Z"), InviteID: "8800123", EmployeeScreening: true, ApprovalStatus: "approved"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := fixture(t, tt.file)
			got, err := Parse(body)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(got.Payload) || !bytes.Contains(body, got.Payload) {
				t.Errorf("Payload is not the raw payload")
			}
			got.Payload = nil
			if !equalEvents(got, tt.want) {
				t.Errorf("Parse =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func equalEvents(a, b Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestParseMalformed changes one field of a good event at a time; each
// error must name the field.
func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name, file string
		edit       func(m map[string]any)
		field      string
	}{
		{"no meta", "invite_created", func(m map[string]any) { delete(m, "meta") }, "meta"},
		{"no event", "invite_created", func(m map[string]any) { meta(m)["event"] = "" }, "meta.event"},
		{"event not a string", "invite_created", func(m map[string]any) { meta(m)["event"] = 7 }, "meta.event"},
		{"no location", "invite_created", func(m map[string]any) {
			delete(meta(m), "location")
			delete(attrsRel(m, "relationships"), "location")
		}, "meta.location.id"},
		{"no payload", "invite_created", func(m map[string]any) { delete(m, "payload") }, "payload"},
		{"payload not an object", "invite_created", func(m map[string]any) { m["payload"] = "x" }, "payload"},
		{"no payload id", "invite_created", func(m map[string]any) { payload(m)["id"] = nil }, "payload.id"},
		{"payload id a 300-digit number", "invite_created", func(m map[string]any) { payload(m)["id"] = json.Number(strings.Repeat("9", 300)) }, "payload.id"},
		{"wrong type", "entry_sign_in", func(m map[string]any) { payload(m)["type"] = "invites" }, "payload.type"},
		{"no expected arrival", "invite_created", func(m map[string]any) { delete(attrsRel(m, "attributes"), "expected-arrival-time") }, "payload.attributes.expected-arrival-time"},
		{"bad expected arrival", "invite_updated", func(m map[string]any) { attrsRel(m, "attributes")["expected-arrival-time"] = "tomorrow-ish" }, "payload.attributes.expected-arrival-time"},
		{"no signed-in-at", "entry_sign_in", func(m map[string]any) { attrsRel(m, "attributes")["signed-in-at"] = nil }, "payload.attributes.signed-in-at"},
		{"bad signed-out-at", "entry_sign_out", func(m map[string]any) { attrsRel(m, "attributes")["signed-out-at"] = 12 }, "payload.attributes.signed-out-at"},
		{"email not a string", "invite_created", func(m map[string]any) { attrsRel(m, "attributes")["email"] = []any{"a"} }, "payload.attributes.email"},
		{"host email not a string", "entry_sign_in", func(m map[string]any) { attrsRel(m, "attributes")["host-email"] = 7 }, "payload.attributes.host-email"},
		{"inviter email not a string", "invite_created", func(m map[string]any) { attrsRel(m, "attributes")["inviter-email"] = true }, "payload.attributes.inviter-email"},
		{"employee without email", "employee_entry_sign_in", func(m map[string]any) { attrsRel(m, "attributes")["email"] = nil }, "payload.attributes.email"},
		{"screening not a boolean", "employee_entry_sign_in", func(m map[string]any) { attrsRel(m, "attributes")["employee-screening-flow"] = "yes" }, "payload.attributes.employee-screening-flow"},
		{"approval status not an object", "employee_entry_sign_in", func(m map[string]any) { attrsRel(m, "attributes")["approval-status"] = "approved" }, "payload.attributes.approval-status"},
		{"invite relationship without id", "entry_sign_in_invited", func(m map[string]any) {
			attrsRel(m, "relationships")["invite"] = map[string]any{"data": map[string]any{"type": "invites"}}
		}, "payload.relationships.invite.data.id"},
		{"invite relationship an array", "entry_sign_in_invited", func(m map[string]any) {
			attrsRel(m, "relationships")["invite"] = map[string]any{"data": []any{}}
		}, "payload.relationships.invite.data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(fixture(t, tt.file), &m); err != nil {
				t.Fatal(err)
			}
			tt.edit(m)
			body, _ := json.Marshal(m)
			_, err := Parse(body)
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrMalformed) || fe.Field != tt.field {
				t.Fatalf("err = %v, want a FieldError for %s", err, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name %s", err, tt.field)
			}
		})
	}
	for _, body := range []string{"", "null", "[]", "{", strings.Repeat(" ", MaxBodyBytes+1)} {
		if _, err := Parse([]byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%.10q) = %v, want ErrMalformed", body, err)
		}
	}
}

func meta(m map[string]any) map[string]any    { return m["meta"].(map[string]any) }
func payload(m map[string]any) map[string]any { return m["payload"].(map[string]any) }
func attrsRel(m map[string]any, k string) map[string]any {
	return payload(m)[k].(map[string]any)
}

func TestParseLenience(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(fixture(t, "entry_sign_in_invited"), &m); err != nil {
		t.Fatal(err)
	}
	// Numeric ids, the location only in the relationships, a bad time zone
	// and an unknown event are all accepted.
	payload(m)["id"] = 42
	delete(meta(m), "location")
	attrsRel(m, "relationships")["invite"] = map[string]any{"data": map[string]any{"id": 77, "type": "invites"}}
	body, _ := json.Marshal(m)
	ev, err := Parse(body)
	if err != nil || ev.ID != "42" || ev.Location.ID != "152347" || ev.InviteID != "77" {
		t.Errorf("Parse = %+v, %v", ev, err)
	}
	meta(m)["event"] = "upcoming_visit"
	body, _ = json.Marshal(m)
	if ev, err := Parse(body); err != nil || ev.Name != "upcoming_visit" {
		t.Errorf("unknown event: %+v, %v", ev, err)
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 11, 24, 8, 57, 12, 0, time.UTC)
	for _, s := range []string{
		"2026-11-24T08:57:12Z", "2026-11-24T09:57:12+01:00", "2026-11-24T08:57:12.000Z",
		"2026-11-24 08:57:12", "2026-11-24 08:57:12.000", "2026-11-24 09:57:12+01:00", "2026-11-24 09:57:12+01",
		"Tue, 24 Nov 2026 08:57:12 GMT", "Tue, 24 Nov 2026 09:57:12 +0100",
	} {
		got, ok := ParseTime(s)
		if !ok || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "24/11/2026", "2026-11-24", "now"} {
		if _, ok := ParseTime(s); ok {
			t.Errorf("ParseTime(%q) succeeded", s)
		}
	}
}
