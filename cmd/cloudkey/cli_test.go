package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// cliChild makes the test binary run main, for TestHelp's subprocesses.
const cliChild = "CLOUDKEY_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(cliChild) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cloudkey runs the command as its own process and returns its exit code
// and stdout and stderr together.
func cloudkey(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), cliChild+"=1", "CLOUDKEY_REDIS_URL=", "CLOUDKEY_ACCESS_ORG=", "CLOUDKEY_SECRETS_KEY=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String()
	}
	t.Fatalf("cloudkey %q: %v", args, err)
	return 0, ""
}

// Asking for help, anywhere, prints the usage and exits 0; a command line
// cloudkey does not understand exits 2 and says what it did not understand.
func TestHelp(t *testing.T) {
	commands := []string{"serve", "token", "admin-key", "contacts", "secrets", "sim", "loadtest", "help"}
	tests := []struct {
		args []string
		code int
		want []string // in the output
	}{
		{[]string{"--help"}, 0, commands},
		{[]string{"-h"}, 0, commands},
		{[]string{"help"}, 0, commands},
		{[]string{"serve", "-h"}, 0, []string{"serve", "-grpc-addr"}},
		{[]string{"token", "-h"}, 0, []string{"token", "-email"}},
		{[]string{"token", "--help"}, 0, []string{"token", "-email"}},
		{[]string{"sim", "-h"}, 0, []string{"sim", "-addr", "-kind", "-rate-limit"}},
		{[]string{"loadtest", "-h"}, 0, []string{"cloudkey loadtest", "-scenario", "unlock-cross"}},
		{[]string{"admin-key", "-h"}, 0, []string{"admin-key create", "admin-key revoke"}},
		{[]string{"admin-key", "create", "-h"}, 0, []string{"admin-key create", "-org", "-name"}},
		{[]string{"admin-key", "revoke", "-h"}, 0, []string{"admin-key revoke", "-key"}},
		{[]string{"contacts", "-h"}, 0, []string{"contacts import", "contacts list"}},
		{[]string{"contacts", "import", "-h"}, 0, []string{"contacts import", "-good-rows-only"}},
		{[]string{"contacts", "list", "-h"}, 0, []string{"contacts list", "-org"}},
		{[]string{"contacts", "grant", "-h"}, 0, []string{"contacts grant", "-building"}},
		{[]string{"contacts", "revoke", "-h"}, 0, []string{"contacts revoke", "-building"}},
		{[]string{"secrets", "-h"}, 0, []string{"secrets new-key", "secrets rotate"}},
		{[]string{"secrets", "new-key", "-h"}, 0, []string{"secrets new-key", "-id"}},
		{[]string{"secrets", "rotate", "-h"}, 0, []string{"secrets rotate", "-redis-url"}},
		{[]string{"help", "secrets"}, 0, []string{"secrets rotate"}},
		{[]string{"help", "token"}, 0, []string{"token", "-email"}},
		{[]string{"help", "contacts"}, 0, []string{"contacts import"}},

		{[]string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`, "cloudkey token"}},
		{[]string{"help", "frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{[]string{"--no-such-flag"}, 2, []string{"flag provided but not defined: -no-such-flag"}},
		{[]string{"token", "--no-such-flag"}, 2, []string{"flag provided but not defined: -no-such-flag"}},
		{[]string{"token", "--ttl", "soon"}, 2, []string{"invalid value"}},
		{[]string{"contacts", "frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{[]string{"contacts", "import", "--no-such-flag"}, 2, []string{"flag provided but not defined"}},
		{[]string{"admin-key", "frobnicate"}, 2, []string{"admin-key create"}},
		{[]string{"secrets"}, 2, []string{"secrets new-key"}},
		{[]string{"secrets", "frobnicate"}, 2, []string{"secrets rotate"}},
		{[]string{"secrets", "new-key", "--id", "a b"}, 2, []string{`id "a b"`}},
		{[]string{"secrets", "new-key", "extra"}, 2, []string{"unexpected arguments"}},
		{[]string{"secrets", "rotate", "--no-such-flag"}, 2, []string{"flag provided but not defined"}},
		{[]string{"loadtest", "--no-such-flag"}, 2, []string{"flag provided but not defined"}},

		{[]string{"token"}, 1, []string{"--email is required"}},
		{[]string{"secrets", "rotate"}, 1, []string{"CLOUDKEY_SECRETS_KEY is required"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, out := cloudkey(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// The package doc and `cloudkey help` list every command run has.
func TestUsageListsCommands(t *testing.T) {
	for c := range commands {
		if !strings.Contains(usage, "cloudkey "+c) && !strings.Contains(usage, "cloudkey ["+c+"]") {
			t.Errorf("usage does not list %s", c)
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"frobnicate"}, &out, nil); exitCode(err) != 2 {
		t.Errorf("unknown command: %v, exit %d", err, exitCode(err))
	}
}
