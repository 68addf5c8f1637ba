package main

import (
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/sim"
)

// TestRosterReportCmd reports on a roster against the demo access systems
// (simulators), the property read from Redis as serve stores it.
func TestRosterReportCmd(t *testing.T) {
	w := newRosterWorld(t)
	op, ks := w.op, w.kisi
	file := w.file(t, "Unit,Resident,Email,Status,Move Out\n"+
		"101,Alice Anders (t001),alice@example.com,Current,\n"+
		"104,Erin Evans (t004),erin@example.com,Notice,11/30/2026\n"+
		"105,Gina Ito (t005),gi.na@example.com,Current,\n")
	run := w.run
	steps := []struct {
		args    []string
		wantErr string
		want    []string
	}{
		{[]string{"report", "--property", "harbor-view"}, "no roster yet", nil},
		{[]string{"import", file, "--property", "harbor-view"}, "", []string{"version 1"}},
		{[]string{"report", "--property", "harbor-view"}, "", []string{
			"3 people: 1 matched, 1 not in the access system (1 with a near miss)",
			"NOT IN ACCESS SYSTEM", "gi.na@example.com", "gina@example.com (dots, harbor-view.kisi)",
			"ACTIVE AFTER MOVE OUT", "OVERDUE NOTICE", "NOT IN ROSTER",
			// The default policy (report) says what it would do: erin's
			// access ended on 2026-12-01 at noon.
			"MOVE-OUT POLICY", "move-out dry run", "suspend  104", "erin@example.com",
		}},
		{[]string{"report", "--property", "harbor-view", "--format", "json"}, "", []string{`"totals": {`, `"overdueNotice": 1`, `"connections": [`, `"moveOutPlan": {`}},
		{[]string{"report", "--property", "harbor-view", "--format", "csv"}, "", []string{"category,connection,unit", "active_after_move_out,harbor-view.openpath,104,Erin Evans"}},
		{[]string{"report", "--property", "harbor-view", "--format", "xml"}, "want text, json or csv", nil},
		{[]string{"report", "--property", "foundry-lofts"}, "not stored in this Redis", nil},
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
	}
	if n := op.Calls(sim.OpCreateCredential); n != 0 {
		t.Errorf("the report created %d Openpath credentials", n)
	}
	if n := ks.Calls(kisisim.OpCreateLogin); n != 0 {
		t.Errorf("the report created %d Kisi logins", n)
	}
}
