package kisi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/kisisim"
)

// bigSeed is the quiet demo seed plus, in Foundry Lofts, a second place
// (the Annex) and 300 more locks in the Lofts, all hank's, so that hank's
// list takes two pages; the Annex's Gym is hank's too; two of the Lofts'
// locks are restricted.
func bigSeed() kisisim.Seed {
	s := quietSeed()
	f := &s.Orgs[1]
	f.Places = append(f.Places, kisisim.Place{ID: 8050, Name: "Annex"})
	f.Locks = append(f.Locks,
		kisisim.Lock{ID: 8051, Name: "Gym", PlaceID: 8050},
		kisisim.Lock{ID: 8052, Name: "Roof", PlaceID: kisisim.DemoFoundryPlaceID, ReaderRestrictionEnabled: true},
		kisisim.Lock{ID: 8053, Name: "Garden", PlaceID: kisisim.DemoFoundryPlaceID, GeofenceRestrictionEnabled: true},
	)
	hank := &f.Users[1]
	hank.Access = append(hank.Access, kisisim.Access{LockID: 8051}, kisisim.Access{LockID: 8052}, kisisim.Access{LockID: 8053})
	for i := range 300 {
		lid := 90_000 + i
		f.Locks = append(f.Locks, kisisim.Lock{ID: lid, Name: "Storage " + strconv.Itoa(i), PlaceID: kisisim.DemoFoundryPlaceID})
		hank.Access = append(hank.Access, kisisim.Access{LockID: lid})
	}
	return s
}

func TestListUserEntries(t *testing.T) {
	front := access.Entry{ID: id(kisisim.DemoFrontDoorID), Name: "Front Door", Zone: "Foundry Lofts", Site: "Foundry Lofts"}
	for _, tt := range []struct {
		name      string
		seed      kisisim.Seed
		key       string
		places    []int64
		userID    int
		email     string
		want      []access.Entry // in Kisi's order; nil: only count
		wantCount int
		pages     int64 // GET /locks requests
		placesReq int64 // GET /places requests
	}{
		{name: "Foundry Lofts key, frank: only Foundry's locks", seed: quietSeed(), key: kisisim.DemoFoundryAPIKey,
			userID: kisisim.DemoFoundryFrankID, email: kisisim.DemoFrankEmail, want: []access.Entry{front}, pages: 1, placesReq: 1},
		{name: "Harbor View key, frank", seed: quietSeed(), key: kisisim.DemoHarborAPIKey,
			userID: kisisim.DemoHarborFrankID, email: kisisim.DemoFrankEmail, want: []access.Entry{
				{ID: id(kisisim.DemoPoolID), Name: "Pool", Zone: "Harbor View", Site: "Harbor View"},
				{ID: id(kisisim.DemoPackageRoomID), Name: "Package Room", Zone: "Harbor View", Site: "Harbor View"},
			}, pages: 1, placesReq: 1},
		{name: "two pages, every place of the org", seed: bigSeed(), key: kisisim.DemoFoundryAPIKey,
			userID: kisisim.DemoHankID, email: kisisim.DemoHankEmail, wantCount: 2 + 3 + 300, pages: 2, placesReq: 1},
		{name: "configured places only: not the Annex", seed: bigSeed(), key: kisisim.DemoFoundryAPIKey,
			places: []int64{kisisim.DemoFoundryPlaceID},
			userID: kisisim.DemoHankID, email: kisisim.DemoHankEmail, wantCount: 2 + 2 + 300, pages: 2},
		{name: "configured place of another org: nothing", seed: quietSeed(), key: kisisim.DemoFoundryAPIKey,
			places: []int64{kisisim.DemoHarborPlaceID},
			userID: kisisim.DemoFoundryFrankID, email: kisisim.DemoFrankEmail, want: []access.Entry{}, pages: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.seed, tt.key, Config{PlaceIDs: tt.places})
			e.ensure(t, tt.userID, tt.email)
			got, err := e.client.ListUserEntries(context.Background(), id(tt.userID))
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !slices.Equal(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if tt.want == nil && len(got) != tt.wantCount {
				t.Errorf("got %d entries, want %d", len(got), tt.wantCount)
			}
			if n := e.srv.Calls(kisisim.OpFetchLocks); n != tt.pages {
				t.Errorf("GET /locks sent %d times, want %d", n, tt.pages)
			}
			if n := e.srv.Calls(kisisim.OpFetchPlaces); n != tt.placesReq {
				t.Errorf("GET /places sent %d times, want %d", n, tt.placesReq)
			}
			// The places are fetched once per client.
			if _, err := e.client.ListUserEntries(context.Background(), id(tt.userID)); err != nil {
				t.Fatal(err)
			}
			if n := e.srv.Calls(kisisim.OpFetchPlaces); n != tt.placesReq {
				t.Errorf("GET /places sent %d times after a second listing, want %d", n, tt.placesReq)
			}
			// Locks are listed with the user's login, never the org key.
			for _, r := range e.sent() {
				if r.path == "/locks" && r.auth == "KISI-LOGIN "+tt.key {
					t.Errorf("GET /locks sent with the organisation key")
				}
			}
		})
	}
}

// TestListRestrictedLocks: reader-restricted and geofenced locks are
// listed, with the reason a cloud unlock cannot open them.
func TestListRestrictedLocks(t *testing.T) {
	e := newEnv(t, bigSeed(), kisisim.DemoFoundryAPIKey, Config{})
	e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	got, err := e.client.ListUserEntries(context.Background(), id(kisisim.DemoHankID))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]access.Entry{
		"8052": {ID: "8052", Name: "Roof", Zone: "Foundry Lofts", Site: "Foundry Lofts", Restriction: ReaderRestricted},
		"8053": {ID: "8053", Name: "Garden", Zone: "Foundry Lofts", Site: "Foundry Lofts", Restriction: GeofenceRestricted},
		"8051": {ID: "8051", Name: "Gym", Zone: "Annex", Site: "Annex"},
	}
	for _, g := range got {
		if w, ok := want[g.ID]; ok {
			if g != w {
				t.Errorf("got %+v, want %+v", g, w)
			}
			delete(want, g.ID)
		} else if g.Restriction != "" {
			t.Errorf("%+v is restricted", g)
		}
	}
	if len(want) > 0 {
		t.Errorf("not listed: %+v", want)
	}
}

// TestListWithoutEnsure: a user whose login only the store knows (another
// replica made it) is listed with it, and no login is created.
func TestListWithoutEnsure(t *testing.T) {
	e := foundry(t)
	cred := e.ensure(t, kisisim.DemoHankID, kisisim.DemoHankEmail)
	other, err := New(Config{BaseURL: e.srv.URL, APIKey: kisisim.DemoFoundryAPIKey, Logins: e.store, HTTPClient: e.client.http})
	if err != nil {
		t.Fatal(err)
	}
	got, err := other.ListUserEntries(context.Background(), id(kisisim.DemoHankID))
	if err != nil || len(got) != 2 {
		t.Fatalf("got %+v, %v; want hank's two locks", got, err)
	}
	if n := e.srv.Calls(kisisim.OpCreateLogin); n != 1 {
		t.Errorf("%d logins created, want 1", n)
	}
	for _, r := range e.sent() {
		if r.path == "/locks" {
			l, _, _ := e.store.Get(context.Background(), kisisim.DemoHankID)
			if r.auth != "KISI-LOGIN "+l.Secret || strconv.FormatInt(l.ID, 10) != cred {
				t.Errorf("GET /locks not sent with hank's stored login")
			}
		}
	}
}

// TestFirstCallWithoutLogin: a user with no login anywhere (no
// EnsureCloudKey, nothing stored) gets one on the first listing or
// unlock; its email comes from GET /users/{id} with the organisation key.
// The simulator has no GET /users/{id}, so the test answers it from the
// simulator's GET /users.
func TestFirstCallWithoutLogin(t *testing.T) {
	e := foundry(t)
	e.intercept = func(req *http.Request) *http.Response {
		if req.URL.Path != "/users/"+id(kisisim.DemoHankID) {
			return nil
		}
		q, err := http.NewRequest(http.MethodGet, e.srv.URL+"/users?email="+kisisim.DemoHankEmail, nil)
		if err != nil {
			t.Error(err)
			return nil
		}
		q.Header.Set("Authorization", req.Header.Get("Authorization"))
		resp, err := http.DefaultClient.Do(q)
		if err != nil {
			t.Error(err)
			return nil
		}
		defer resp.Body.Close()
		var users []json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&users); err != nil || len(users) != 1 {
			t.Errorf("GET /users: %v, %d users", err, len(users))
			return nil
		}
		return jsonAnswer(req, 200, string(users[0]), nil)
	}
	got, err := e.client.ListUserEntries(context.Background(), id(kisisim.DemoHankID))
	if err != nil || len(got) != 2 {
		t.Fatalf("got %+v, %v; want hank's two locks", got, err)
	}
	if n := e.srv.Calls(kisisim.OpCreateLogin); n != 1 {
		t.Errorf("%d logins created, want 1", n)
	}
	l, ok, _ := e.store.Get(context.Background(), kisisim.DemoHankID)
	if !ok {
		t.Fatal("no login stored")
	}
	if err := e.client.Unlock(context.Background(), id(kisisim.DemoHankID), strconv.FormatInt(l.ID, 10), id(kisisim.DemoBikeRoomID)); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Calls(kisisim.OpCreateLogin); n != 1 {
		t.Errorf("%d logins created, want still 1", n)
	}
}
