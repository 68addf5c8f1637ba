package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
)

// residentCase is one call of ResidentService and what it must answer,
// over gRPC and over REST alike (TestResidentAPI runs every case through
// both drivers).
type residentCase struct {
	name string
	// as is the caller, whose bearer token is sent; when it is "", auth
	// is the authorization header as sent ("": none).
	as, auth string
	req      proto.Message // *pb.GetMeRequest, ListEntriesRequest, SetFavoriteRequest or UnlockRequest
	// body, when set, is the REST body sent instead of req's JSON (REST
	// only: a gRPC request cannot be malformed).
	body string
	// code is the status; REST answers it as runtime.HTTPStatusFromCode.
	code          codes.Code
	reason, field string
	msg           string // the error message contains it
	// check checks the answer's fields (when code is OK).
	check func(t *testing.T, resp proto.Message)
	json  string // REST: the JSON answer contains it
	only  string // "grpc" or "rest": the case is the one transport's
	// noUnlock: the call makes no upstream unlock call.
	noUnlock bool
}

func residentCases(st *stack) []residentCase {
	expired, _ := st.tokens.Sign("alice@example.com", -time.Hour)
	other, _ := identity.NewHS256(strings.Repeat("k", 40))
	wrongSig, _ := other.Sign("alice@example.com", time.Hour)
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprint(1000 + i)
	}
	me := func(email string, connected bool, reason string) func(*testing.T, proto.Message) {
		return func(t *testing.T, resp proto.Message) {
			m := resp.(*pb.GetMeResponse)
			if m.Connected != connected || m.Reason != reason || m.Email != strings.ToLower(strings.TrimSpace(email)) {
				t.Errorf("GetMe = %+v; want %s connected=%v reason=%q", m, email, connected, reason)
			}
		}
	}
	entries := func(names ...string) func(*testing.T, proto.Message) {
		return func(t *testing.T, resp proto.Message) {
			var got []string
			for _, e := range resp.(*pb.ListEntriesResponse).GetEntries() {
				got = append(got, e.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(names) {
				t.Errorf("entries = %v, want %v", got, names)
			}
		}
	}
	getMe, list := &pb.GetMeRequest{}, &pb.ListEntriesRequest{}
	unlock := func(ids ...string) *pb.UnlockRequest { return &pb.UnlockRequest{EntryIds: ids} }
	cases := []residentCase{
		// GetMe: emails are canonicalised and matched exactly.
		{name: "me", as: "alice@example.com", req: getMe, check: me("alice@example.com", true, ""), json: `"connected":true`},
		{name: "me canonicalised", as: "  ALICE@Example.com ", req: getMe, check: me("  ALICE@Example.com ", true, "")},
		{name: "me no entries", as: "bob@example.com", req: getMe, check: me("bob@example.com", true, "NO_ENTRIES"), json: "NO_ENTRIES"},
		{name: "me disabled", as: "carol@example.com", req: getMe, check: me("carol@example.com", false, "USER_DISABLED"), json: `"entryCount":0`},
		{name: "me unknown", as: "nobody@example.com", req: getMe, check: me("nobody@example.com", false, "USER_NOT_FOUND")},
		// the access system's filter matches alice@ by contains
		{name: "me look-alike", as: "lice@example.com", req: getMe, check: me("lice@example.com", false, "USER_NOT_FOUND")},

		// ListEntries.
		{name: "entries", as: "alice@example.com", req: list, check: entries("Garage", "Gym", "Lobby")},
		{name: "entries erin", as: "erin@example.com", req: list, check: entries("Lobby", "Roof Deck")},
		{name: "entries none", as: "bob@example.com", req: list, check: entries(), json: `"entries":[]`},
		{name: "entries disabled", as: "carol@example.com", req: list, code: codes.PermissionDenied, reason: "USER_DISABLED"},
		{name: "entries unknown", as: "nobody@example.com", req: list, code: codes.NotFound, reason: "USER_NOT_FOUND"},
		// Look-alikes are not erin or alice: Unicode lower-casing maps İ
		// (U+0130) to i; fullwidth letters are kept as given too.
		{name: "entries dotted I erin", as: "ERİN@example.com", req: list, code: codes.NotFound, reason: "USER_NOT_FOUND"},
		{name: "entries dotted I alice", as: "ALİCE@example.com", req: list, code: codes.NotFound, reason: "USER_NOT_FOUND"},
		{name: "entries fullwidth", as: "\uff25RIN@example.com", req: list, code: codes.NotFound, reason: "USER_NOT_FOUND"},

		// Tokens.
		{name: "token missing", req: list, code: codes.Unauthenticated, msg: "authorization"},
		{name: "token expired", auth: "Bearer " + expired, req: list, code: codes.Unauthenticated},
		{name: "token wrong signature", auth: "Bearer " + wrongSig, req: list, code: codes.Unauthenticated},
		{name: "token not bearer", auth: "Basic abc", req: list, code: codes.Unauthenticated},
		{name: "token garbage", auth: "Bearer x.y.z", req: list, code: codes.Unauthenticated},

		// Unlock.
		{name: "unlock", as: "alice@example.com", req: unlock("101", "105"), json: "UNLOCK_STATUS_DENIED",
			check: func(t *testing.T, resp proto.Message) {
				rs := resp.(*pb.UnlockResponse).GetResults()
				if len(rs) != 2 || rs[0].EntryId != "101" || rs[0].Status != pb.UnlockStatus_UNLOCK_STATUS_OK ||
					rs[1].EntryId != "105" || rs[1].Status != pb.UnlockStatus_UNLOCK_STATUS_DENIED {
					t.Errorf("results = %v, want 101 OK, 105 DENIED", rs)
				}
			}},
		{name: "unlock empty", as: "alice@example.com", req: unlock(), body: `{"entryIds":[]}`, code: codes.InvalidArgument, field: "entry_ids", noUnlock: true},
		{name: "unlock none", as: "alice@example.com", req: unlock(), code: codes.InvalidArgument, field: "entry_ids", noUnlock: true},
		{name: "unlock oversized", as: "alice@example.com", req: unlock(many...), code: codes.InvalidArgument, field: "entry_ids", noUnlock: true},
		{name: "unlock blank id", as: "alice@example.com", req: unlock("101", " "), code: codes.InvalidArgument, field: "entry_ids[1]", noUnlock: true},
		{name: "unlock duplicate", as: "alice@example.com", req: unlock("101", "101"), code: codes.InvalidArgument, field: "entry_ids[1]", noUnlock: true},
		{name: "unlock bad json", as: "alice@example.com", req: unlock(), body: `{"entryIds":`, code: codes.InvalidArgument, only: "rest", noUnlock: true},
		{name: "unlock unknown field", as: "alice@example.com", req: unlock(), body: `{"doors":["101"]}`, code: codes.InvalidArgument, only: "rest", noUnlock: true},

		// SetFavorite's refusals (TestFavorites sets and clears).
		{name: "favorite not mine", as: "alice@example.com", req: &pb.SetFavoriteRequest{EntryId: "105", Favorite: true}, code: codes.NotFound, reason: "ENTRY_NOT_FOUND"},
		// REST has no route without an id.
		{name: "favorite empty id", as: "alice@example.com", req: &pb.SetFavoriteRequest{EntryId: ""}, code: codes.InvalidArgument, field: "entry_id", only: "grpc"},
	}
	return cases
}

// residentAnswer is what a driver got: the answer (code OK) or the error
// status, and REST's JSON.
type residentAnswer struct {
	resp proto.Message
	err  error
	json string
}

// residentDriver calls ResidentService over one transport.
type residentDriver func(t *testing.T, st *stack, c residentCase) residentAnswer

func TestResidentAPI(t *testing.T) {
	drivers := []struct {
		name string
		call residentDriver
	}{{"grpc", grpcResident}, {"rest", restResident}}
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			st := newStack(t, stackOpts{})
			for _, c := range residentCases(st) {
				if c.only != "" && c.only != d.name {
					continue
				}
				t.Run(c.name, func(t *testing.T) {
					unlocks := st.sim.Calls(sim.OpUnlock)
					a := d.call(t, st, c)
					if got := status.Code(a.err); got != c.code || reason(a.err) != c.reason || field(a.err) != c.field {
						t.Fatalf("err = %v (reason %q, field %q); want %v %q %q", a.err, reason(a.err), field(a.err), c.code, c.reason, c.field)
					}
					if !strings.Contains(status.Convert(a.err).Message(), c.msg) {
						t.Errorf("message %q, want it to contain %q", status.Convert(a.err).Message(), c.msg)
					}
					if c.check != nil && a.err == nil {
						c.check(t, a.resp)
					}
					if d.name == "rest" && !strings.Contains(a.json, c.json) {
						t.Errorf("JSON %s, want it to contain %s", a.json, c.json)
					}
					if n := st.sim.Calls(sim.OpUnlock) - unlocks; c.noUnlock && n != 0 {
						t.Errorf("made %d upstream unlock calls, want none", n)
					}
				})
			}
		})
	}
}

func grpcResident(t *testing.T, st *stack, c residentCase) residentAnswer {
	ctx := context.Background()
	switch {
	case c.as != "":
		ctx = st.as(t, c.as)
	case c.auth != "":
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.auth)
	}
	var resp proto.Message
	var err error
	switch req := c.req.(type) {
	case *pb.GetMeRequest:
		resp, err = st.client.GetMe(ctx, req)
	case *pb.ListEntriesRequest:
		resp, err = st.client.ListEntries(ctx, req)
	case *pb.SetFavoriteRequest:
		resp, err = st.client.SetFavorite(ctx, req)
	case *pb.UnlockRequest:
		resp, err = st.client.Unlock(ctx, req)
	default:
		t.Fatalf("no gRPC call for %T", req)
	}
	return residentAnswer{resp: resp, err: err}
}

// restResident calls the REST binding of c.req, and reads an error answer
// back into its status; its HTTP status must be the code's.
func restResident(t *testing.T, st *stack, c residentCase) residentAnswer {
	var method, path, body string
	var resp proto.Message
	switch req := c.req.(type) {
	case *pb.GetMeRequest:
		method, path, resp = "GET", "/v1/me", &pb.GetMeResponse{}
	case *pb.ListEntriesRequest:
		method, path, resp = "GET", "/v1/me/entries", &pb.ListEntriesResponse{}
	case *pb.SetFavoriteRequest:
		method, path, resp = "DELETE", "/v1/me/favorites/"+req.GetEntryId(), &pb.SetFavoriteResponse{}
		if req.GetFavorite() {
			method = "PUT"
		}
	case *pb.UnlockRequest:
		b, err := protojson.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		method, path, body, resp = "POST", "/v1/me/unlock", string(b), &pb.UnlockResponse{}
	default:
		t.Fatalf("no REST binding for %T", req)
	}
	if c.body != "" {
		body = c.body
	}
	r, _ := http.NewRequest(method, st.http+path, strings.NewReader(body))
	switch {
	case c.as != "":
		r.Header.Set("Authorization", "Bearer "+st.token(t, c.as))
	case c.auth != "":
		r.Header.Set("Authorization", c.auth)
	}
	hr, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Body.Close()
	raw, _ := io.ReadAll(hr.Body)
	a := residentAnswer{json: string(raw)}
	if hr.StatusCode == http.StatusOK {
		if err := protojson.Unmarshal(raw, resp); err != nil {
			t.Fatalf("%s %s: answer %s: %v", method, path, raw, err)
		}
		a.resp = resp
		return a
	}
	var s spb.Status
	if err := protojson.Unmarshal(raw, &s); err != nil {
		t.Fatalf("%s %s = %d: body %s is not a status: %v", method, path, hr.StatusCode, raw, err)
	}
	a.err = status.FromProto(&s).Err()
	if want := runtime.HTTPStatusFromCode(codes.Code(s.GetCode())); hr.StatusCode != want {
		t.Errorf("%s %s = HTTP %d, want %d for %v", method, path, hr.StatusCode, want, codes.Code(s.GetCode()))
	}
	return a
}
