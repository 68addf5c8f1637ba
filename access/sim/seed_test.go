package sim

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access"
)

func TestDemoSeedMatchesConstants(t *testing.T) {
	seed := DemoSeed()
	if seed.Org.ID != DemoOrgID || seed.ServiceAccount.Email != DemoServiceEmail || seed.ServiceAccount.Password != DemoServicePassword {
		t.Fatalf("org/service account = %+v %+v", seed.Org, seed.ServiceAccount)
	}
	types := map[string]int{}
	for _, ct := range seed.CredentialTypes {
		types[ct.ModelName] = ct.ID
	}
	if types["mobile"] != DemoMobileTypeID || types["card"] != DemoCardTypeID || types["cloudKey"] != DemoCloudKeyTypeID {
		t.Errorf("credential types = %v", types)
	}
	if DemoCloudKeyTypeID == 1 {
		t.Error("the cloud key type must not be 1, so that clients have to look it up")
	}
	entries := map[string]int{}
	for _, e := range seed.Entries {
		entries[e.Name] = e.ID
	}
	wantEntries := map[string]int{"Lobby": DemoLobbyID, "Garage": DemoGarageID, "Gym": DemoGymID, "Roof Deck": DemoRoofDeckID, "Server Room": DemoServerRoomID}
	if !reflect.DeepEqual(entries, wantEntries) {
		t.Errorf("entries = %v, want %v", entries, wantEntries)
	}

	type want struct {
		id      int
		status  access.Status
		entries []int
		creds   []Credential
	}
	wantUsers := map[string]want{
		"alice@example.com": {DemoAliceID, access.StatusActive, []int{DemoLobbyID, DemoGarageID, DemoGymID},
			[]Credential{{ID: DemoAliceMobileID, CredentialTypeID: DemoMobileTypeID}}},
		"bob@example.com": {DemoBobID, access.StatusActive, []int{},
			[]Credential{{ID: DemoBobCardID, CredentialTypeID: DemoCardTypeID}}},
		"carol@example.com": {DemoCarolID, access.StatusSuspended, []int{DemoLobbyID},
			[]Credential{{ID: DemoCarolCloudKeyID, CredentialTypeID: DemoCloudKeyTypeID}}},
		"erin@example.com": {DemoErinID, access.StatusActive, []int{DemoLobbyID, DemoRoofDeckID},
			[]Credential{{ID: DemoErinCloudKeyID, CredentialTypeID: DemoCloudKeyTypeID}}},
		"frank@example.com": {DemoFrankID, access.StatusActive, []int{DemoLobbyID}, nil},
		// The service account is a user too, as Openpath's Envoy Bot is.
		DemoServiceEmail: {DemoServiceUserID, access.StatusActive, []int{DemoLobbyID, DemoGarageID, DemoGymID, DemoRoofDeckID}, nil},
	}
	if len(seed.Users) != len(wantUsers) {
		t.Fatalf("%d users, want %d", len(seed.Users), len(wantUsers))
	}
	for _, u := range seed.Users {
		w, ok := wantUsers[u.Email]
		if !ok {
			t.Errorf("unexpected user %s", u.Email)
			continue
		}
		for i := range u.Credentials {
			u.Credentials[i].Name = "" // names are decoration
		}
		if u.ID != w.id || u.Status != w.status || !slices.Equal(u.EntryIDs, w.entries) || !reflect.DeepEqual(u.Credentials, w.creds) {
			t.Errorf("%s = %+v, want %+v", u.Email, u, w)
		}
		if slices.Contains(u.EntryIDs, DemoServerRoomID) {
			t.Errorf("%s has the Server Room, which must be assigned to nobody", u.Email)
		}
	}

	// DemoSeed returns a fresh copy each time.
	seed.Users[0].Email = "changed"
	if DemoSeed().Users[0].Email == "changed" {
		t.Error("DemoSeed shares state between calls")
	}
}

func TestLoadSeed(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const base = `"org":{"id":1},"serviceAccount":{"email":"a@b.c","password":"p"},` +
		`"credentialTypes":[{"id":7,"name":"Cloud Key","modelName":"cloudKey"}],"entries":[{"id":1,"name":"Door"}]`

	ok, err := LoadSeed(write("ok.json", `{`+base+`,"users":[{"id":1,"email":"x@y.z","entryIds":[1],"credentials":[{"id":9,"credentialTypeId":7}]}]}`))
	if err != nil {
		t.Fatalf("valid seed: %v", err)
	}
	if len(ok.Users) != 1 || ok.Users[0].Credentials[0].ID != 9 {
		t.Errorf("loaded %+v", ok)
	}

	tests := []struct {
		name, content, wantErr string
	}{
		{"not json", `{`, "decode seed"},
		{"unknown field", `{` + base + `,"users":[],"typo":1}`, "unknown field"},
		{"no org", `{"serviceAccount":{"email":"a","password":"p"}}`, "org.id"},
		{"no service account", `{"org":{"id":1}}`, "serviceAccount"},
		{"duplicate user id", `{` + base + `,"users":[{"id":1,"email":"a@x"},{"id":1,"email":"b@x"}]}`, "users[1]"},
		{"user without email", `{` + base + `,"users":[{"id":1}]}`, "email is required"},
		{"bad status", `{` + base + `,"users":[{"id":1,"email":"a@x","status":"X"}]}`, "status"},
		{"unknown entry", `{` + base + `,"users":[{"id":1,"email":"a@x","entryIds":[2]}]}`, "unknown entry id 2"},
		{"unknown credential type", `{` + base + `,"users":[{"id":1,"email":"a@x","credentials":[{"id":9,"credentialTypeId":1}]}]}`, "unknown credentialTypeId"},
		{"duplicate credential", `{` + base + `,"users":[{"id":1,"email":"a@x","credentials":[{"id":9,"credentialTypeId":7}]},{"id":2,"email":"b@x","credentials":[{"id":9,"credentialTypeId":7}]}]}`, "credential id 9"},
		{"duplicate entry", `{"org":{"id":1},"serviceAccount":{"email":"a","password":"p"},"entries":[{"id":1,"name":"A"},{"id":1,"name":"B"}]}`, "entries[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSeed(write(strings.ReplaceAll(tt.name, " ", "_")+".json", tt.content))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if _, err := LoadSeed(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestGenerateSeed(t *testing.T) {
	a, b := GenerateSeed(500, 5), GenerateSeed(500, 5)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("GenerateSeed is not deterministic")
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(a.Users) != 500 || len(a.Entries) != 20 {
		t.Fatalf("%d users, %d entries; want 500, 20", len(a.Users), len(a.Entries))
	}
	used := map[int]bool{}
	for i, u := range a.Users {
		if u.Email != LoadUserEmail(i) || u.Status != access.StatusActive || len(u.EntryIDs) != 5 {
			t.Fatalf("user %d = %+v", i, u)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(u.EntryIDs)))) != 5 {
			t.Fatalf("user %d has repeated entries %v", i, u.EntryIDs)
		}
		for _, id := range u.EntryIDs {
			used[id] = true
		}
	}
	if len(used) != len(a.Entries) {
		t.Errorf("%d of %d pool entries assigned; want all", len(used), len(a.Entries))
	}
	if LoadUserEmail(7) != "user7@load.example.com" {
		t.Errorf("LoadUserEmail(7) = %s", LoadUserEmail(7))
	}
	if s := GenerateSeed(0, 0); len(s.Users) != 0 || s.Validate() != nil {
		t.Errorf("empty org: %+v", s)
	}
}

func TestNewRejectsInvalidSeed(t *testing.T) {
	seed := DemoSeed()
	seed.Users[1].ID = seed.Users[0].ID
	if _, err := New(seed); err == nil {
		t.Fatal("New accepted duplicate user ids")
	}
}
