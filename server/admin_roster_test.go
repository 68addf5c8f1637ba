package server_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/cache"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/server"
)

// demoRoster is harbor-view's residents as the PMS exports them, with the
// cases the report must name (PRODUCT.md's demo residents).
const demoRoster = `Harbor View rent roll
As of 12/01/2026
property_id,unit,resident_id,first_name,last_name,email,phone,status,move_in,move_out,lease_start,lease_end,role
hv,101,t01,Alice,Anders,alice@example.com,,Current,2025-06-01,,2025-06-01,2027-05-31,primary
hv,101,t10,Max,Anders,,,Current,2025-06-01,,2025-06-01,2027-05-31,occupant
hv,102,t02,Bob,Baker,Bob@Example.com,,Current,2024-06-15,,2024-06-15,2026-06-14,primary
hv,103,t03,Carol,Chen,carol@example.com,,Past,2023-01-01,2026-10-31,2023-01-01,2026-10-31,primary
hv,104,t04,Erin,Evans,erin@example.com,,Notice,2024-03-01,11/30/2026,2024-03-01,2027-02-28,primary
hv,105,t05,Gina,Ito,gi.na@example.com,,Current,2025-02-01,,2025-02-01,2027-01-31,primary
hv,201,t06,Ken,Park,parks@example.com,,Current,2025-02-01,,2025-02-01,2027-01-31,primary
hv,201,t07,Lee,Park,parks@example.com,,Current,2025-02-01,,2025-02-01,2027-01-31,co_resident
hv,202,t09,Dana,Diaz,dana@example.com,,Future,2027-01-01,,2027-01-01,2027-12-31,primary
hv,301,t08,Frank,Foster,frank@example.com,,Current,2025-04-01,,2025-04-01,2027-03-31,primary
hv,302,t11,Ian,Ives,ian@example.com,,Current,31/12/2025,,2025-01-01,2027-03-31,primary
`

// TestAdminRoster imports the demo roster through the REST gateway,
// reports on it against the demo's access systems (JSON and CSV), lists
// its versions over gRPC, and shows gina the spelling hint.
func TestAdminRoster(t *testing.T) {
	rs := redistest.Start(t)
	d := newDemoStack(t, rs.URL(), "", 3*time.Second)
	keys := adminkey.NewStore(rs.Client(), cache.DefaultPrefix)
	key, _, err := keys.CreateScoped(context.Background(), adminkey.Scope{Property: "harbor-view"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.app.Server.HTTPAddr()
	send := func(t *testing.T, method, path, body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("x-auth-scheme", "api-token")
		req.Header.Set("x-auth-apikey", key)
		if body != "" {
			req.Header.Set("Content-Type", "text/csv")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}

	steps := []struct {
		name, method, path, body string
		wantCode                 int
		wantType                 string
		wantIn                   []string
	}{
		{"no roster yet", "GET", "/v1/admin/roster/report", "", 400, "", []string{"no roster yet"}},
		{"dry run stores nothing", "POST", "/v1/admin/roster:import?dryRun=true", demoRoster, 200, "application/json", []string{`"version":0`, `"dryRun":true`, `"headerLine":3`}},
		{"still no roster", "GET", "/v1/admin/roster/versions", "", 200, "", []string{`"versions":[]`}},
		{"import", "POST", "/v1/admin/roster:import?origin=rentroll.csv", demoRoster, 200, "application/json", []string{
			`"version":1`, `"added":9`,
			`"line":5`, `"kind":"no_email"`, // Max
			`"line":14`, // Ian's day-first date
			`"kind":"shared_email"`,
		}},
		{"nothing usable", "POST", "/v1/admin/roster:import", "email,first_name\nnot-an-email,Pat\n", 400, "", []string{"csv.line[2]", "nothing was stored"}},
		{"not a roster", "POST", "/v1/admin/roster:import", "a,b\n1,2\n", 400, "", []string{"csv"}},
		{"bad format", "GET", "/v1/admin/roster/report?format=xml", "", 400, "", []string{"format"}},
		{"report as JSON", "GET", "/v1/admin/roster/report", "", 200, "application/json", []string{
			`"totals"`, `"notInAccessSystem": 2`, `"withNearMiss": 1`, `"overdueNotice": 1`, `"sharedEmail": 2`,
			`"email": "gina@example.com"`, `"kind": "dots"`,
		}},
		{"report as CSV", "GET", "/v1/admin/roster/report?format=csv", "", 200, "text/csv", []string{
			"category,connection,unit,name,email", "not_in_access_system,,105,Gina Ito,gi.na@example.com", "gina@example.com (dots, harbor-view.kisi)",
			"active_after_move_out,harbor-view.openpath,104,Erin Evans",
		}},
		{"another property's roster", "GET", "/v1/admin/roster/versions?property=foundry-lofts", "", 403, "", []string{"harbor-view only"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, ctype, body := send(t, st.method, st.path, st.body)
			if code != st.wantCode || (st.wantType != "" && !strings.HasPrefix(ctype, st.wantType)) {
				t.Fatalf("%s %s = %d %s %s; want %d %s", st.method, st.path, code, ctype, body, st.wantCode, st.wantType)
			}
			for _, w := range st.wantIn {
				if !strings.Contains(body, w) {
					t.Errorf("%s %s lacks %q:\n%s", st.method, st.path, w, body)
				}
			}
		})
	}

	// The CSV report parses, one row per finding, totals aside.
	_, _, body := send(t, "GET", "/v1/admin/roster/report?format=csv", "")
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(recs) < 10 {
		t.Fatalf("CSV report: %v, %d records", err, len(recs))
	}
	_, _, body = send(t, "GET", "/v1/admin/roster/report", "")
	var rep struct {
		Totals struct{ People, Matched int }
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Totals.People != 9 || rep.Totals.Matched != 3 {
		t.Errorf("JSON report totals = %+v, %v; want 9 people, 3 matched (alice, carol, frank)", rep.Totals, err)
	}

	conn, err := grpc.NewClient(d.app.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	admin := pb.NewAdminServiceClient(conn)
	actx := metadata.AppendToOutgoingContext(context.Background(), "x-auth-scheme", "api-token", "x-auth-apikey", key)
	vs, err := admin.ListRosterVersions(actx, &pb.ListRosterVersionsRequest{})
	if err != nil || len(vs.GetVersions()) != 1 || vs.GetVersions()[0].GetOrigin() != "rentroll.csv" || vs.GetVersions()[0].GetPeople() != 9 {
		t.Fatalf("ListRosterVersions = %v, %v", vs, err)
	}
	_, err = admin.ImportRoster(actx, &pb.ImportRosterRequest{})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "csv") {
		t.Errorf("ImportRoster without a CSV = %v; want INVALID_ARGUMENT on csv", err)
	}

	// Residents: gina's PMS email has a near miss in Kisi; zed is unknown.
	tests := []struct {
		email    string
		spelling bool
	}{
		{"gi.na@example.com", true},
		{"zed@example.com", false},
	}
	for _, tt := range tests {
		t.Run("resident "+tt.email, func(t *testing.T) {
			me, err := d.client.GetMe(d.as(t, tt.email), &pb.GetMeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if me.GetReason() != "USER_NOT_FOUND" || (me.GetMessage() == server.SpellingMessage) != tt.spelling {
				t.Errorf("GetMe = %s %q; spelling hint wanted: %v", me.GetReason(), me.GetMessage(), tt.spelling)
			}
			_, err = d.client.ListEntries(d.as(t, tt.email), &pb.ListEntriesRequest{})
			st := status.Convert(err)
			if st.Code() != codes.NotFound || (st.Message() == server.SpellingMessage) != tt.spelling {
				t.Errorf("ListEntries = %v; spelling hint wanted: %v", err, tt.spelling)
			}
			if strings.Contains(st.Message(), "gina@example.com") || strings.Contains(me.GetMessage(), "gina@example.com") {
				t.Error("the hint shows the access system's address")
			}
			var reason string
			var meta map[string]string
			for _, det := range st.Details() {
				if ei, ok := det.(*errdetails.ErrorInfo); ok {
					reason, meta = ei.GetReason(), ei.GetMetadata()
				}
			}
			if reason != "USER_NOT_FOUND" || (meta["email_spelling"] == "differs") != tt.spelling {
				t.Errorf("ErrorInfo = %s %v", reason, meta)
			}
		})
	}
}
