package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/redistest"
)

// moveOutRoster is harbor-view's roster with erin moved out (past):
// alice and frank current, each linked to their demo users.
const moveOutRoster = `property_id,unit,resident_id,first_name,last_name,email,phone,status,move_in,move_out,lease_start,lease_end,role
hv,101,t01,Alice,Anders,alice@example.com,,Current,2025-06-01,,2025-06-01,2027-05-31,primary
hv,104,t04,Erin,Evans,erin@example.com,,%s,2024-03-01,%s,2024-03-01,2027-02-28,primary
hv,301,t08,Frank,Foster,frank@example.com,,Current,2025-04-01,,2025-04-01,2027-03-31,primary
`

// TestAdminMoveOut sets the policy through the REST gateway (refusing
// bad values by field, auditing the change), plans and runs it in report
// mode (nothing changes), then in auto mode (erin is suspended in the
// Openpath simulator, audited); a roster import that makes erin current
// again reactivates her at once.
func TestAdminMoveOut(t *testing.T) {
	rs := redistest.Start(t)
	d := newDemoStack(t, rs.URL(), "", 3*time.Second)
	keys := adminkey.NewStore(rs.Client(), cache.DefaultPrefix)
	key, _, err := keys.CreateScoped(context.Background(), adminkey.Scope{Property: "harbor-view"}, "mover")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.app.Server.HTTPAddr()
	send := func(t *testing.T, method, path, ctype, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("x-auth-scheme", "api-token")
		req.Header.Set("x-auth-apikey", key)
		if body != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode, out
	}
	asJSON := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	erin := func() access.Status {
		u, err := d.app.Sim.User("erin@example.com")
		if err != nil {
			t.Fatal(err)
		}
		return u.Status
	}
	importRoster := func(t *testing.T, status, moveOut string) {
		t.Helper()
		csv := strings.Replace(strings.Replace(moveOutRoster, "%s", status, 1), "%s", moveOut, 1)
		if code, out := send(t, "POST", "/v1/admin/roster:import", "text/csv", csv); code != 200 {
			t.Fatalf("import: %d %v", code, out)
		}
	}

	code, out := send(t, "GET", "/v1/admin/roster/moveout/policy", "", "")
	if code != 200 || asJSON(out) != `{"isDefault":true,"policy":{"cutoff":"12:00","graceDays":1,"maxSuspendShare":0.1,"mode":"report","updatedAt":null}}` {
		t.Fatalf("default policy: %d %s", code, asJSON(out))
	}
	for _, tt := range []struct{ name, body, field string }{
		{"nothing set", `{}`, "mode"},
		{"unknown mode", `{"mode":"sometimes"}`, "mode"},
		{"grace too long", `{"graceDays":91}`, "grace_days"},
		{"cut-off not a time", `{"cutoff":"25:00"}`, "cutoff"},
		{"share above 1", `{"maxSuspendShare":1.5}`, "max_suspend_share"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := send(t, "PUT", "/v1/admin/roster/moveout/policy", "application/json", tt.body)
			if code != 400 || !strings.Contains(asJSON(out), `"field":"`+tt.field+`"`) {
				t.Fatalf("%s: %d %s, want 400 on %s", tt.body, code, asJSON(out), tt.field)
			}
		})
	}
	if _, out := send(t, "GET", "/v1/admin/roster/moveout/policy", "", ""); out["isDefault"] != true {
		t.Fatalf("a refused change was saved: %s", asJSON(out))
	}
	if code, out := send(t, "GET", "/v1/admin/roster/moveout/plan", "", ""); code != 400 || !strings.Contains(asJSON(out), "no roster yet") {
		t.Fatalf("plan without a roster: %d %s", code, asJSON(out))
	}

	// Report mode: the import runs nothing, the plan and a run say what
	// auto would do, and erin keeps her access.
	importRoster(t, "Past", "2026-10-31")
	for _, path := range []string{"GET /v1/admin/roster/moveout/plan", "POST /v1/admin/roster/moveout:run"} {
		method, p, _ := strings.Cut(path, " ")
		body := ""
		if method == "POST" {
			body = "{}"
		}
		code, out := send(t, method, p, "application/json", body)
		run := asJSON(out["run"])
		if code != 200 || out["run"].(map[string]any)["applied"] == true ||
			!strings.Contains(run, `"action":"suspend"`) || !strings.Contains(run, `"email":"erin@example.com"`) ||
			!strings.Contains(run, `"connection":"harbor-view.openpath"`) || !strings.Contains(run, "status past") {
			t.Fatalf("%s: %d %s", path, code, run)
		}
		if erin() != access.StatusActive {
			t.Fatalf("%s suspended erin", path)
		}
	}

	// The roster report says what the policy would do.
	req, _ := http.NewRequest("GET", base+"/v1/admin/roster/report", nil)
	req.Header.Set("x-auth-scheme", "api-token")
	req.Header.Set("x-auth-apikey", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	report, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rep struct {
		MoveOutPlan struct {
			DryRun  bool `json:"dryRun"`
			Changes []struct {
				Action, Email string
			} `json:"changes"`
		} `json:"moveOutPlan"`
	}
	if err := json.Unmarshal(report, &rep); err != nil || !rep.MoveOutPlan.DryRun || len(rep.MoveOutPlan.Changes) != 1 ||
		rep.MoveOutPlan.Changes[0].Action != "suspend" || rep.MoveOutPlan.Changes[0].Email != "erin@example.com" {
		t.Fatalf("report's move-out plan: %v %s", err, report)
	}
	if erin() != access.StatusActive {
		t.Fatal("the report suspended erin")
	}

	code, out = send(t, "PUT", "/v1/admin/roster/moveout/policy", "application/json", `{"mode":"AUTO","cutoff":"09:30"}`)
	if code != 200 || asJSON(out["policy"]) == "" || out["policy"].(map[string]any)["mode"] != "auto" || out["previous"].(map[string]any)["mode"] != "report" {
		t.Fatalf("set auto: %d %s", code, asJSON(out))
	}
	code, out = send(t, "POST", "/v1/admin/roster/moveout:run", "application/json", "{}")
	run := out["run"].(map[string]any)
	if code != 200 || run["applied"] != true || !strings.Contains(asJSON(run["changes"]), `"done":true`) || erin() != access.StatusSuspended {
		t.Fatalf("auto run: %d %s; erin %s", code, asJSON(out), erin())
	}
	// Current again: the import's own run reactivates her.
	importRoster(t, "Current", "")
	if erin() != access.StatusActive {
		t.Fatalf("erin is %s after the import made her current", erin())
	}
	events := func(kind string) string {
		_, out := send(t, "GET", "/v1/admin/audit?kind="+kind, "", "")
		return asJSON(out["events"])
	}
	eventually(t, "the reactivation audited", func() bool { return strings.Contains(events("moveout_reactivated"), "erin@example.com") })
	if ev := events("moveout_suspended"); !strings.Contains(ev, `"user":"cloudkey:moveout-policy"`) || !strings.Contains(ev, "roster version 1") || !strings.Contains(ev, "Erin Evans") {
		t.Errorf("suspension audit: %s", ev)
	}
	if ev := events("settings_changed"); !strings.Contains(ev, "move-out policy: mode: report → auto; cutoff: 12:00 → 09:30 (from the default)") {
		t.Errorf("policy audit: %s", ev)
	}
}
