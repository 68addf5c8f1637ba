package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/property/propertyredis"
	"github.com/cloudkey/cloudkey/internal/redistest"
	"github.com/cloudkey/cloudkey/internal/secrets"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
)

// `cloudkey roster pull` pulls a stored property's roster from its
// Buildium account (the simulator) in full, then only what changed, and
// reconciles it with the property's access system.
func TestRosterPullCmd(t *testing.T) {
	t.Setenv("CLOUDKEY_SECRETS_KEY", "")
	rs := redistest.Start(t)
	op, err := sim.Start(sim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = op.Close() })
	bd, err := buildiumsim.Start(buildiumsim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bd.Close() })
	conn := property.Connection{System: property.Openpath, Name: property.Openpath, URL: op.URL, Email: sim.DemoServiceEmail, Secret: sim.DemoServicePassword}
	props := propertyredis.New(rs.Client(), secrets.Development())
	for _, p := range []property.Property{
		{ID: "harbor-view", TimeZone: "America/New_York", Access: []property.Connection{conn},
			PMS: &property.PMS{System: property.Buildium, URL: bd.URL, ClientID: buildiumsim.DemoClientID, ClientSecret: buildiumsim.DemoClientSecret,
				PropertyIDs: []int32{buildiumsim.DemoHarborViewID}, Every: time.Hour}},
		{ID: "no-pms", Access: []property.Connection{conn}},
	} {
		if err := props.Create(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := rosterCmd(context.Background(), append(args, "--redis-url", rs.URL()), &out)
		return out.String(), err
	}
	steps := []struct {
		args          []string
		wantErr, want string
	}{
		{[]string{"pull", "--property", "harbor-view"}, "", "property harbor-view: full pull, version 1: 9 people, 9 created, 0 updated, 0 removed"},
		{[]string{"pull", "--property", "harbor-view"}, "", "property harbor-view: incremental pull, nothing changed (9 people"},
		{[]string{"pull", "--property", "no-pms"}, "has no pms block", ""},
		{[]string{"pull", "--property", "nowhere"}, "not stored in this Redis", ""},
		{[]string{"pull", "--property", "harbor-view", "extra"}, "unexpected arguments", ""},
	}
	for _, s := range steps {
		out, err := run(s.args...)
		switch {
		case s.wantErr == "" && err != nil:
			t.Fatalf("roster %v: %v\n%s", s.args, err, out)
		case s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)):
			t.Fatalf("roster %v: error %v, want %q", s.args, err, s.wantErr)
		}
		if !strings.Contains(out, s.want) {
			t.Errorf("roster %v lacks %q:\n%s", s.args, s.want, out)
		}
		if strings.Contains(out, buildiumsim.DemoClientSecret) || (err != nil && strings.Contains(err.Error(), buildiumsim.DemoClientSecret)) {
			t.Errorf("roster %v shows the client secret", s.args)
		}
	}
	links, ok, err := rosterredis.New(rs.Client()).Links(context.Background(), "harbor-view")
	if err != nil || !ok || links.RosterVersion != 1 || len(links.Links) == 0 {
		t.Errorf("the pull's reconciliation: %+v, %v, %v", links, ok, err)
	}
}
