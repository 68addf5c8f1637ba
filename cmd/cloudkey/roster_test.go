package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudkey/cloudkey/internal/redistest"
)

func TestRosterCmd(t *testing.T) {
	url := redistest.Start(t).URL()
	dir := t.TempDir()
	write := func(name, csv string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(csv), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := write("first.csv", "Rent Roll\nHarbor View\nUnit,Resident,Email,Status,Move Out\n"+
		"Current/Notice Residents\n"+
		"101,Alice Anders (t001),alice@example.com,Current,\n"+
		"102,VACANT,,,\n"+
		"103,Erin Evans (t003),erin@example.com,Notice,11/30/2026\n"+
		"104,Max Anders (r004),,Current,\n"+
		"105,Carol Chen (t005),carol@example.com,Current,\n"+
		"Total: 5 units\n")
	second := write("second.csv", "Unit,Resident,Email,Status,Move Out\n"+
		"101,Alice Anders (t001),alice.anders@example.com,Current,\n"+
		"103,Erin Evans (t003),erin@example.com,Notice,01/31/2027\n"+
		"106,Dana Diaz (t006),dana@example.com,Future,\n"+
		"107,Hana Ito (t007),hana@example.com,Current,31/01/2027\n")
	norows := write("norows.csv", "Unit,Email\n1,\n")
	rentroll := write("rentroll.csv", "Rent Roll\nUnit,Resident,Move In\n101,Gianna Barile (s0005974),01/15/2025\n")
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := rosterCmd(context.Background(), append(args, "--redis-url", url), &out)
		t.Logf("roster %s: %v\n%s", strings.Join(args, " "), err, out.String())
		return out.String(), err
	}
	steps := []struct {
		args    []string
		wantErr string
		want    []string
	}{
		{[]string{"versions", "--property", "harbor-view"}, "", []string{"has no roster yet"}},
		{[]string{"import", first, "--property", "harbor-view", "--dry-run"}, "", []string{"3 persons", "dry run: nothing stored", "line 8 skipped (no_email): Max Anders in unit 104"}},
		{[]string{"import", first, "--property", "harbor-view"}, "", []string{
			"property harbor-view: first.csv: header on line 3, 7 data rows, 3 persons",
			"version 1: 3 created, 0 updated, 0 removed, 0 unchanged",
			"line 8 skipped (no_email)",
			"skipped as export layout (preamble): lines 1, 2",
			"skipped as export layout (section): line 4",
			"skipped as export layout (total): line 10",
			"skipped as export layout (vacant): line 6",
		}},
		{[]string{"import", "--property", "harbor-view", second}, "", []string{
			"version 2: 1 created, 2 updated, 1 removed, 0 unchanged",
			`updated Alice Anders (id:t001): email "alice@example.com" → "alice.anders@example.com"`,
			`updated Erin Evans (id:t003): moveOut "2026-11-30" → "2027-01-31"`,
			"created Dana Diaz <dana@example.com> unit 106 (future)",
			"removed Carol Chen",
			"line 5 skipped (bad_row): move_out: date \"31/01/2027\" looks day-first",
		}},
		{[]string{"versions", "--property", "harbor-view"}, "", []string{"VERSION", "second.csv", "first.csv"}},
		{[]string{"import", norows, "--property", "harbor-view"}, "nothing was stored", []string{"line 2 skipped (no_email)"}},
		{[]string{"import", rentroll, "--property", "harbor-view"}, "no email column", nil},
		{[]string{"import", first}, "--property is required", nil},
		{[]string{"import", "--property", "harbor-view"}, "FILE is required", nil},
		{[]string{"import", first, "--property", "Harbor View"}, "not [a-z0-9-]", nil},
		{[]string{"import", filepath.Join(dir, "missing.csv"), "--property", "harbor-view"}, "no such file", nil},
		{[]string{"frobnicate"}, "unknown command", nil},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		switch {
		case s.wantErr == "" && err != nil:
			t.Errorf("roster %q: %v\n%s", s.args, err, out)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Errorf("roster %q = %v, want error %q", s.args, err, s.wantErr)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("roster %q printed\n%s\nwant %q", s.args, out, w)
			}
		}
	}
}
