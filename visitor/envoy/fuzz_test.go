package envoy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParse: a body is refused with a FieldError naming a field, or it is
// an event with everything every event needs, plausible ids, the payload
// as valid JSON, and what its kind requires; whitespace in the JSON never
// changes the event.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
		if err != nil {
			var fe *FieldError
			if !errors.Is(err, ErrMalformed) || !errors.As(err, &fe) || fe.Field == "" || fe.Problem == "" {
				t.Fatalf("Parse error %v is not a FieldError naming a field", err)
			}
			return
		}
		for name, v := range map[string]string{"name": ev.Name, "type": ev.Type, "id": ev.ID, "location": ev.Location.ID} {
			if v == "" || v != strings.TrimSpace(v) {
				t.Fatalf("event %s %q is empty or untrimmed", name, v)
			}
		}
		for name, id := range map[string]string{"id": ev.ID, "location": ev.Location.ID, "invite": ev.InviteID, "entry": ev.EntryID} {
			if len(id) > 128 || strings.ContainsAny(id, "\x00\r\n") {
				t.Fatalf("event %s %.40q... (%d bytes) is not a plausible id", name, id, len(id))
			}
		}
		if !json.Valid(ev.Payload) {
			t.Fatalf("payload %q is not JSON", ev.Payload)
		}
		switch ev.Name {
		case InviteCreated, InviteUpdated:
			if ev.Type != TypeInvite || ev.ExpectedArrival.IsZero() {
				t.Fatalf("%s accepted with type %q, arrival %v", ev.Name, ev.Type, ev.ExpectedArrival)
			}
		case EntrySignIn, EmployeeEntrySignIn:
			if ev.Type != TypeEntry || ev.SignedInAt.IsZero() {
				t.Fatalf("%s accepted with type %q, signed in %v", ev.Name, ev.Type, ev.SignedInAt)
			}
		}
		if (ev.Name == EmployeeEntrySignIn || ev.Name == EmployeeEntrySignOut) && ev.Email == "" {
			t.Fatalf("%s accepted without an email", ev.Name)
		}
		for _, tm := range []struct{ name, loc string }{
			{"arrival", ev.ExpectedArrival.Location().String()}, {"signed in", ev.SignedInAt.Location().String()}, {"signed out", ev.SignedOutAt.Location().String()},
		} {
			if tm.loc != "UTC" {
				t.Fatalf("%s time is in %s, want UTC", tm.name, tm.loc)
			}
		}
		// The same JSON without its whitespace is the same event.
		var first json.RawMessage
		var compact bytes.Buffer
		if json.NewDecoder(bytes.NewReader(body)).Decode(&first) != nil || json.Compact(&compact, first) != nil {
			return
		}
		ev2, err := Parse(compact.Bytes())
		ev.Payload, ev2.Payload = nil, nil
		if err != nil || !sameEvent(ev, ev2) {
			t.Fatalf("compacted body parses to %+v, %v; want %+v", ev2, err, ev)
		}
	})
}

func sameEvent(a, b Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// FuzzVerifySignature: a header verifies exactly when it is the base64
// HMAC-SHA256 of the body under a non-empty secret; Sign's header always
// does, and never for another body.
func FuzzVerifySignature(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, header string, secret []byte) {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		sum := mac.Sum(nil)
		got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header))
		want := len(secret) > 0 && strings.TrimSpace(header) != "" && err == nil && bytes.Equal(got, sum)
		if VerifySignature(body, header, secret) != want {
			t.Fatalf("VerifySignature(%q, %q, %q) = %v, want %v", body, header, secret, !want, want)
		}
		signed := Sign(body, secret)
		if VerifySignature(body, signed, secret) != (len(secret) > 0) {
			t.Fatalf("Sign's own header for %q under %q: verified %v", body, secret, !(len(secret) > 0))
		}
		if VerifySignature(append(bytes.Clone(body), 'x'), signed, secret) {
			t.Fatalf("the header of %q verified a longer body", body)
		}
	})
}
