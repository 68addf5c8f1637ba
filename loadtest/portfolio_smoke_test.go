package loadtest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/selftarget"
	"github.com/cloudkey/cloudkey/loadtest"
)

// --properties 3: the generated users are spread over three properties,
// each on a simulator of its own; every user's list and unlocks succeed
// (its token names its property, its door ids are learnt), and the
// upstream counts are the simulators' summed.
func TestSmokeProperties(t *testing.T) {
	for _, tr := range []loadtest.Transport{loadtest.GRPC, loadtest.REST} {
		t.Run(string(tr), func(t *testing.T) {
			t.Parallel()
			cfg := smokeConfig(t, "list,unlock,unlock-multi,mix")
			for i := range cfg.Scenarios {
				cfg.Scenarios[i].Transport = tr
			}
			cfg.Users, cfg.Properties = 12, 3
			var file string
			cfg.StartTarget = func(ctx context.Context, tc loadtest.TargetConfig) (*loadtest.Target, error) {
				if tc.PropertiesFile != "" {
					b, err := os.ReadFile(tc.PropertiesFile)
					if err != nil {
						return nil, err
					}
					file = string(b)
				}
				return selftarget.Start(ctx, tc)
			}
			rep := runAndWrite(t, cfg)
			for _, id := range []string{"p0000", "p0001", "p0002"} {
				if !strings.Contains(file, "- id: "+id+"\n") {
					t.Errorf("the properties file lacks %s:\n%s", id, file)
				}
			}
			if strings.Contains(file, "p0003") || !strings.Contains(file, "password_env: ") {
				t.Errorf("properties file:\n%s", file)
			}
			if rep.Settings.Properties != 3 || rep.Settings.Users != 12 {
				t.Errorf("settings: %d properties, %d users", rep.Settings.Properties, rep.Settings.Users)
			}
			for _, s := range rep.Scenarios {
				checkSane(t, s)
				checkOpenLoop(t, s, cfg)
			}
			var text strings.Builder
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(text.String(), "spread over 3 properties") {
				t.Errorf("text report lacks the properties:\n%s", text.String())
			}
		})
	}
}

// Every user of every property is reached: with as many properties as
// users, each property has one user, and a closed-loop unlock run over
// all of them succeeds.
func TestSmokePropertiesOneUserEach(t *testing.T) {
	cfg := smokeConfig(t, "unlock")
	cfg.Users, cfg.Properties = 5, 5
	cfg.Concurrency, cfg.Requests, cfg.Duration = 2, 100, 2*time.Second
	rep := runAndWrite(t, cfg)
	s := rep.Scenarios[0]
	checkSane(t, s)
	if s.UnlockOK != s.OK || s.Upstream["cloudKeyEntryUnlock"] != s.UnlockOK {
		t.Errorf("%d unlocks OK of %d calls, %d upstream", s.UnlockOK, s.OK, s.Upstream["cloudKeyEntryUnlock"])
	}
}
