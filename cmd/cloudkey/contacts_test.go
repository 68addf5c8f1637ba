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

func TestContactsCmd(t *testing.T) {
	t.Setenv("CLOUDKEY_ACCESS_ORG", "")
	url := redistest.Start(t).URL()
	dir := t.TempDir()
	write := func(name, csv string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(csv), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "Full Name,Email,Phone\nAda Lovelace,ada@example.com,(415) 555-0123\nAlan Turing,alan@example.com,\n")
	bad := write("bad.csv", "Full Name,Email,Phone\nAda Lovelace,ada@example.com,\nGrace Hopper,grace-at-example.com,\n")
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := contactsCmd(context.Background(), append(args, "--redis-url", url), &out)
		t.Logf("contacts %s: %v\n%s", strings.Join(args, " "), err, out.String())
		return out.String(), err
	}
	steps := []struct {
		args    []string
		wantErr string // "" for success
		want    []string
	}{
		{[]string{"import", good, "--org", "1"}, "", []string{"organisation 1: 2 rows: 2 created, 0 updated, 0 unchanged, 0 removed, 0 bad"}},
		{[]string{"import", "--org", "1", good}, "", []string{"0 created, 0 updated, 2 unchanged"}},
		{[]string{"import", bad, "--org", "1", "--remove-missing"}, "nothing was imported", []string{"1 bad", `line 3: invalid email: "grace-at-example.com"`}},
		{[]string{"import", bad, "--org", "1", "--remove-missing", "--good-rows-only"}, "", []string{"1 updated, 0 unchanged, 1 removed, 1 bad", "line 3:"}},
		{[]string{"grant", "--org", "1", "--email", "ada@example.com", "--building", "hq"}, "", []string{"granted ada@example.com"}},
		{[]string{"grant", "--org", "1", "--email", "alan@example.com", "--building", "hq"}, "contact not found", nil},
		{[]string{"list", "--org", "1"}, "", []string{"ada@example.com", "Ada Lovelace", "hq", "1 contact in organisation 1"}},
		{[]string{"revoke", "--org", "1", "--email", "ada@example.com", "--building", "hq"}, "", []string{"revoked"}},
		{[]string{"import", filepath.Join(dir, "missing.csv"), "--org", "1"}, "no such file", nil},
		{[]string{"import", good}, "--org is required", nil},
		{[]string{"import", "--org", "1"}, "FILE is required", nil},
		{[]string{"list", "--org", "1", "extra"}, "unexpected arguments", nil},
		{[]string{"frobnicate"}, "unknown command", nil},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		switch {
		case s.wantErr == "" && err != nil:
			t.Errorf("contacts %q: %v\n%s", s.args, err, out)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Errorf("contacts %q = %v, want error %q", s.args, err, s.wantErr)
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("contacts %q printed\n%s\nwant %q", s.args, out, w)
			}
		}
	}
}
