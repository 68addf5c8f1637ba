package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/access/kisi/loginredis"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
)

// new-key makes a key, rotate re-encrypts the stored Kisi logins with it
// on a real redis-server, after which the old key can go.
func TestSecretsCmd(t *testing.T) {
	srv := redistest.Start(t)
	url, rdb := srv.URL(), srv.Client()
	ctx := t.Context()
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := secretsCmd(context.Background(), args, &out)
		t.Logf("secrets %s: %v\n%s", strings.Join(args, " "), err, out.String())
		return out.String(), err
	}
	newKey := func(id string) string {
		out, err := run("new-key", "--id", id)
		if err != nil {
			t.Fatal(err)
		}
		entry, _, _ := strings.Cut(out, "\n")
		if !strings.HasPrefix(entry, id+":") || !strings.Contains(out, "CLOUDKEY_SECRETS_KEY") {
			t.Fatalf("new-key printed %q", out)
		}
		return entry
	}
	parse := func(spec string) *secrets.Keyring {
		r, err := secrets.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	oldKey, newerKey := newKey("old"), newKey("new")

	logins := []kisi.Login{
		{ID: 1, UserID: 10, Secret: "secret-ten", CreatedAt: time.Unix(1, 0).UTC()},
		{ID: 2, UserID: 20, Secret: "secret-twenty", CreatedAt: time.Unix(2, 0).UTC()},
	}
	for _, l := range logins {
		if err := loginredis.New(rdb, parse(oldKey), "a.kisi").Put(ctx, l); err != nil {
			t.Fatal(err)
		}
	}

	steps := []struct {
		env     string
		args    []string
		wantErr string
		want    string
	}{
		{"", []string{"rotate", "--redis-url", url}, "CLOUDKEY_SECRETS_KEY is required", ""},
		{"old:c2hvcnQ=", []string{"rotate", "--redis-url", url}, `entry 1 (id "old"): the key is 5 bytes`, ""},
		{newerKey + "," + oldKey, []string{"rotate"}, "--redis-url (CLOUDKEY_REDIS_URL) is required", ""},
		{newerKey + "," + oldKey, []string{"rotate", "--redis-url", url}, "", "rotated 2 of 2\n"},
		{newerKey + "," + oldKey, []string{"rotate", "--redis-url", url}, "", "rotated 0 of 2\n"},
		{newerKey, []string{"rotate", "--redis-url", url}, "", "rotated 0 of 2\n"},
	}
	for _, s := range steps {
		t.Setenv("CLOUDKEY_SECRETS_KEY", s.env)
		t.Setenv("CLOUDKEY_REDIS_URL", "")
		out, err := run(s.args...)
		switch {
		case s.wantErr == "" && err != nil:
			t.Errorf("secrets %q: %v\n%s", s.args, err, out)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Errorf("secrets %q = %v, want error %q", s.args, err, s.wantErr)
		}
		if out != s.want && s.want != "" {
			t.Errorf("secrets %q printed %q, want %q", s.args, out, s.want)
		}
		if err != nil && strings.Contains(err.Error(), strings.SplitN(oldKey, ":", 2)[1]) {
			t.Errorf("error shows the key: %v", err)
		}
	}
	// The new key alone reads every login.
	store := loginredis.New(rdb, parse(newerKey), "a.kisi")
	for _, l := range logins {
		if got, ok, err := store.Get(ctx, l.UserID); err != nil || !ok || got != l {
			t.Errorf("login %d after rotation: %+v, %v, %v", l.UserID, got, ok, err)
		}
	}
	// A login no key opens fails the command, after the others.
	if err := loginredis.New(rdb, parse(oldKey), "b.kisi").Put(ctx, logins[0]); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLOUDKEY_SECRETS_KEY", newerKey)
	out, err := run("rotate", "--redis-url", url)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 logins are not readable") || out != "rotated 0 of 3\n" {
		t.Errorf("rotate with a lost key: %q, %v", out, err)
	}
}
