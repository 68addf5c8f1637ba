package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

func (d *demoStack) tokenFor(t *testing.T, email string, props ...string) string {
	t.Helper()
	tok, err := d.app.Tokens.SignFor(email, time.Hour, props)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (d *demoStack) asFor(t *testing.T, email string, props ...string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+d.tokenFor(t, email, props...))
}

// rest calls the gateway as email with props and returns the status and
// the body.
func (d *demoStack) rest(t *testing.T, method, path, body, email string, props ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+d.app.Server.HTTPAddr()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+d.tokenFor(t, email, props...))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// answer is what a caller learns from one call: the gRPC code and message,
// or the result.
func answer(v any, err error) string {
	if err != nil {
		s := status.Convert(err)
		return s.Code().String() + ": " + s.Message()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// A token for one property can never list, unlock, or learn the
// existence of a user or door at another: every resident RPC and REST
// route answers a user of another property exactly as a user who exists
// nowhere, and another property's door exactly as a door that exists
// nowhere, and nothing is sent to another property's access systems. A
// token for both sees and opens the doors of both, each naming its
// property; a token naming a property not served here is refused.
func TestPropertyIsolation(t *testing.T) {
	d := newDemoStack(t, redistest.Start(t).URL(), "", 3*time.Second)
	const hv, fl = "harbor-view", "foundry-lofts"
	front := "foundry-lofts.kisi." + itoa(kisisim.DemoFrontDoorID)
	pool := "harbor-view.kisi." + itoa(kisisim.DemoPoolID)

	// hank is a Foundry Lofts resident only: at Harbor View he is answered
	// as nobody is, on every RPC, even when naming his own Foundry door.
	for _, rpc := range []struct {
		name string
		call func(ctx context.Context) string
	}{
		{"GetMe", func(ctx context.Context) string {
			r, err := d.client.GetMe(ctx, &pb.GetMeRequest{})
			if r != nil {
				r.Email = ""
			}
			return answer(r, err)
		}},
		{"ListEntries", func(ctx context.Context) string { return answer(d.client.ListEntries(ctx, &pb.ListEntriesRequest{})) }},
		{"SetFavorite", func(ctx context.Context) string {
			return answer(d.client.SetFavorite(ctx, &pb.SetFavoriteRequest{EntryId: front, Favorite: true}))
		}},
		{"Unlock", func(ctx context.Context) string {
			return answer(d.client.Unlock(ctx, &pb.UnlockRequest{EntryIds: []string{front}}))
		}},
	} {
		hank, nobody := rpc.call(d.asFor(t, "hank@example.com", hv)), rpc.call(d.asFor(t, "nobody@example.com", hv))
		if hank != nobody {
			t.Errorf("%s: hank at harbor-view gets %s; nobody gets %s", rpc.name, hank, nobody)
		}
	}
	for _, route := range []struct{ method, path, body string }{
		{"GET", "/v1/me/entries", ""},
		{"PUT", "/v1/me/favorites/" + front, ""},
		{"POST", "/v1/me/unlock", `{"entryIds":["` + front + `"]}`},
	} {
		hc, hb := d.rest(t, route.method, route.path, route.body, "hank@example.com", hv)
		nc, nb := d.rest(t, route.method, route.path, route.body, "nobody@example.com", hv)
		if hc != nc || hb != nb {
			t.Errorf("%s %s: hank at harbor-view gets %d %s; nobody gets %d %s", route.method, route.path, hc, hb, nc, nb)
		}
	}
	if n := d.app.KisiSim.Calls(kisisim.OpUnlock); n != 0 {
		t.Errorf("%d unlocks reached Kisi", n)
	}

	// frank with a Foundry Lofts token: only its door; Harbor View's doors
	// are answered as an id that exists nowhere, and not sent.
	r, err := d.client.ListEntries(d.asFor(t, "frank@example.com", fl), &pb.ListEntriesRequest{})
	if err != nil || len(r.Entries) != 1 || r.Entries[0].Id != front || r.Entries[0].Property != fl {
		t.Fatalf("frank at foundry-lofts: %v, %v", r, err)
	}
	me, err := d.client.GetMe(d.asFor(t, "frank@example.com", fl), &pb.GetMeRequest{})
	if err != nil || len(me.Systems) != 1 || me.Systems[0].Property != fl {
		t.Errorf("frank's GetMe at foundry-lofts: %v, %v", me, err)
	}
	openpathBefore := d.app.Sim.Calls(sim.OpUnlock)
	u, err := d.client.Unlock(d.asFor(t, "frank@example.com", fl), &pb.UnlockRequest{EntryIds: []string{"101", pool, "foundry-lofts.kisi.999999", front}})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(u.Results); !slices.Equal(got, []string{"DENIED", "DENIED", "DENIED", "OK"}) {
		t.Errorf("frank's unlock at foundry-lofts = %v", got)
	}
	if u.Results[0].Message != u.Results[2].Message || u.Results[1].Message != u.Results[2].Message {
		t.Errorf("another property's doors are answered unlike a door that exists nowhere: %q %q %q",
			u.Results[0].Message, u.Results[1].Message, u.Results[2].Message)
	}
	if d.app.Sim.Calls(sim.OpUnlock) != openpathBefore {
		t.Error("a Harbor View door was sent to Openpath on a Foundry Lofts token")
	}
	for _, id := range []string{"101", pool} {
		got := answer(d.client.SetFavorite(d.asFor(t, "frank@example.com", fl), &pb.SetFavoriteRequest{EntryId: id, Favorite: true}))
		none := answer(d.client.SetFavorite(d.asFor(t, "frank@example.com", fl), &pb.SetFavoriteRequest{EntryId: "foundry-lofts.kisi.999999", Favorite: true}))
		if strings.ReplaceAll(got, id, "X") != strings.ReplaceAll(none, "foundry-lofts.kisi.999999", "X") {
			t.Errorf("SetFavorite(%s) at foundry-lofts = %s; a door that exists nowhere: %s", id, got, none)
		}
	}

	// Both properties: four doors, each naming its property; one unlock
	// opens them all.
	r, err = d.client.ListEntries(d.asFor(t, "frank@example.com", hv, fl), &pb.ListEntriesRequest{})
	if err != nil || len(r.Entries) != 4 {
		t.Fatalf("frank at both: %v, %v", r, err)
	}
	var ids []string
	for _, e := range r.Entries {
		if want := map[bool]string{true: fl, false: hv}[e.Name == "Front Door"]; e.Property != want {
			t.Errorf("%s names property %q, want %q", e.Name, e.Property, want)
		}
		ids = append(ids, e.Id)
	}
	u, err = d.client.Unlock(d.asFor(t, "frank@example.com", hv, fl), &pb.UnlockRequest{EntryIds: ids})
	if err != nil || !slices.Equal(statuses(u.Results), []string{"OK", "OK", "OK", "OK"}) {
		t.Errorf("frank's unlock at both: %v, %v", u, err)
	}

	// A property this deployment does not serve.
	if _, err := d.client.ListEntries(d.asFor(t, "frank@example.com", "elsewhere"), &pb.ListEntriesRequest{}); status.Code(err).String() != "PermissionDenied" {
		t.Errorf("a token for an unknown property: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
