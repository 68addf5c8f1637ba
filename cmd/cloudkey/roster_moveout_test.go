package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/unlock/auditredis"
)

// TestRosterMoveOutCmd sets the policy and runs it from the command line,
// against the demo access systems (simulators), the property read from
// Redis as serve stores it: a dry run and a report-mode run change
// nothing, an auto run suspends erin (moved out) in Openpath and audits it.
func TestRosterMoveOutCmd(t *testing.T) {
	w := newRosterWorld(t)
	rs, op := w.redis, w.op
	file := w.file(t, "Unit,Resident,Email,Status,Move Out\n"+
		"101,Alice Anders (t001),alice@example.com,Current,\n"+
		"104,Erin Evans (t004),erin@example.com,Past,10/31/2026\n"+
		"301,Frank Foster (t008),frank@example.com,Current,\n")
	run := w.run
	erin := func() access.Status {
		u, err := op.User("erin@example.com")
		if err != nil {
			t.Fatal(err)
		}
		return u.Status
	}
	steps := []struct {
		args      []string
		wantErr   string
		want      []string
		suspended bool // erin, after the step
	}{
		{[]string{"policy", "--property", "harbor-view"}, "", []string{"(the default; none set)", "mode report", "grace 1 days", "cutoff 12:00", "max-share 0.1"}, false},
		{[]string{"policy", "--property", "harbor-view", "--mode", "sometimes"}, "--mode", nil, false},
		{[]string{"policy", "--property", "harbor-view", "--cutoff", "7pm"}, "--cutoff", nil, false},
		{[]string{"policy", "--property", "harbor-view", "--grace", "91"}, "grace_days", nil, false},
		{[]string{"moveout", "--property", "harbor-view"}, "no roster yet", nil, false},
		{[]string{"import", file, "--property", "harbor-view"}, "", []string{"version 1"}, false},
		{[]string{"moveout", "--property", "harbor-view", "--dry-run"}, "", []string{"dry run", "changes to do now: 1", "suspend", "Erin Evans", "harbor-view.openpath", "status past"}, false},
		{[]string{"moveout", "--property", "harbor-view"}, "", []string{"nothing was changed", "changes to do now: 1"}, false},
		{[]string{"moveout", "--property", "harbor-view", "--format", "csv"}, "want text or json", nil, false},
		{[]string{"policy", "--property", "harbor-view", "--mode", "auto", "--grace", "0", "--cutoff", "18:00", "--max-share", "0.5"}, "", []string{"(set)", "mode auto", "grace 0 days", "cutoff 18:00", "max-share 0.5"}, false},
		{[]string{"moveout", "--property", "harbor-view", "--format", "json"}, "", []string{`"applied": true`, `"done": true`, `"email": "erin@example.com"`}, true},
		{[]string{"moveout", "--property", "harbor-view"}, "", []string{"changes done: 0"}, true},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("roster %v: %v\n%s", s.args, err, out)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Fatalf("roster %v: error %v, want %q", s.args, err, s.wantErr)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("roster %v lacks %q:\n%s", s.args, w, out)
			}
		}
		if got := erin() == access.StatusSuspended; got != s.suspended {
			t.Fatalf("after roster %v erin is %s", s.args, erin())
		}
	}
	recs, _, err := auditredis.NewAuditLog(rs.Client(), "").List(context.Background(), unlock.AuditFilter{Property: "harbor-view"}, 10, "")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Kind)
	}
	if strings.Join(kinds, " ") != "moveout_suspended settings_changed" {
		t.Errorf("audit kinds %q, want the suspension after the policy change", kinds)
	}
}
