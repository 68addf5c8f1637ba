package buildium

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/roster"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/roster/buildiumsim/buildiumspec"
)

// setup serves the demo seed and returns a client of harbor-view's
// Buildium property whose every request and answer is checked against
// Buildium's spec.
func setup(t *testing.T, tune func(*Config)) (*buildiumsim.Server, *Client) {
	t.Helper()
	srv, err := buildiumsim.Start(buildiumsim.DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := Config{
		URL: srv.URL, ClientID: buildiumsim.DemoClientID, ClientSecret: buildiumsim.DemoClientSecret,
		PropertyIDs: []int32{buildiumsim.DemoHarborViewID},
		HTTPClient:  &http.Client{Transport: buildiumspec.Load(t).Transport(t, nil)},
		MinBackoff:  time.Millisecond,
	}
	if tune != nil {
		tune(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

type row struct {
	key, email, status, moveOut string
}

func rows(people []roster.Person) []row {
	var out []row
	for _, p := range people {
		out = append(out, row{p.Key(), p.CanonicalEmail, string(p.Status), p.MoveOut.String()})
	}
	slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.key, b.key) })
	return out
}

var harborView = []row{
	{"id:9001#7001", "alice@example.com", "current", ""},
	{"id:9002#7002", "bob@example.com", "current", ""},
	{"id:9003#7003", "carol@example.com", "past", "2026-10-31"},
	{"id:9004#7004", "erin@example.com", "notice", "2026-11-30"},
	{"id:9005#7005", "gi.na@example.com", "current", ""},
	{"id:9006#7006", "parks@example.com", "current", ""},
	{"id:9007#7006", "parks@example.com", "current", ""},
	{"id:9008#7008", "frank@example.com", "current", ""},
	{"id:9009#7007", "dana@example.com", "future", ""},
}

func TestFullPull(t *testing.T) {
	srv, c := setup(t, nil)
	res, err := c.Fetch(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(res.People); !slices.Equal(got, harborView) {
		t.Errorf("people:\n got %v\nwant %v", got, harborView)
	}
	if len(res.Issues) != 1 || res.Issues[0].Kind != roster.IssueNoEmail || !strings.Contains(res.Issues[0].Reason, "Max Anders") {
		t.Errorf("issues %+v", res.Issues)
	}
	// One page each of rentals, tenants and leases; every tenant came
	// with a list, none is read by id.
	if res.Requests != 3 || srv.Calls(buildiumsim.OpGetTenantByID) != 0 {
		t.Errorf("%d requests, %d by id", res.Requests, srv.Calls(buildiumsim.OpGetTenantByID))
	}
	by := map[string]roster.Person{}
	for _, p := range res.People {
		by[p.PersonID] = p
	}
	erin := by["9004"]
	if erin.NoticeDate != (roster.Date{Year: 2026, Month: 10, Day: 15}) || !slices.Equal(erin.OtherEmails, []string{"erin.evans@work.example"}) ||
		erin.SourceStatus != "lease Active, tenant Current" || erin.PropertyID != "5001" || erin.Unit != "104" {
		t.Errorf("erin %+v", erin)
	}
	if bob := by["9002"]; !bob.MonthToMonth || bob.Email != "Bob@Example.com" {
		t.Errorf("bob %+v", bob)
	}
	if carol := by["9003"]; !carol.MoveOutIsActual {
		t.Errorf("carol %+v", carol)
	}
	if a := by["9001"]; a.Phone != "617-555-0101" || a.MoveIn != (roster.Date{Year: 2025, Month: 6, Day: 1}) || a.SourceUpdatedAt.IsZero() {
		t.Errorf("alice %+v", a)
	}
	// Assembled, the two Parks share an email and are not merged.
	r := roster.Assemble(res.People)
	if len(r.Shared) != 1 || r.Shared[0].Email != "parks@example.com" || len(r.People) != len(harborView) {
		t.Errorf("assembled: %+v", r.Shared)
	}

	// Pull is Fetch's people.
	people, err := c.Pull(t.Context(), time.Time{})
	if err != nil || !slices.Equal(rows(people), harborView) {
		t.Errorf("Pull: %v", err)
	}
}

func TestIncrementalPull(t *testing.T) {
	srv, c := setup(t, nil)
	t0 := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	srv.SetClock(func() time.Time { return t0.Add(30 * time.Minute) })
	// Alice's email changes; frank gives notice; Lee Park moves out (his
	// tenant record does not change, and a lease embeds current tenants
	// only, so his record is read by id).
	if err := srv.SetTenantEmail(9001, "alice.anders@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetMoveOut(7008, 9008, "2027-01-31", "2026-12-02"); err != nil {
		t.Fatal(err)
	}
	parks := buildiumsim.Lease{ID: 7006, PropertyID: buildiumsim.DemoHarborViewID, UnitID: 201, UnitNumber: "201", From: "2025-02-01", To: "2027-01-31", Status: "Active",
		Tenants:  []buildiumsim.LeaseTenant{{TenantID: 9006, Status: "Current", MoveIn: "2025-02-01"}, {TenantID: 9007, Status: "MovedOut", MoveIn: "2025-02-01"}},
		MoveOuts: []buildiumsim.MoveOut{{TenantID: 9007, Date: "2026-12-01"}}}
	if err := srv.SetLease(parks); err != nil {
		t.Fatal(err)
	}

	res, err := c.Fetch(t.Context(), t0)
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"id:9001#7001", "alice.anders@example.com", "current", ""},
		{"id:9006#7006", "parks@example.com", "current", ""},
		{"id:9007#7006", "parks@example.com", "past", "2026-12-01"},
		{"id:9008#7008", "frank@example.com", "notice", "2027-01-31"},
	}
	if got := rows(res.People); !slices.Equal(got, want) {
		t.Errorf("changed people:\n got %v\nwant %v", got, want)
	}
	// Read by id: Lee (moved out), and Max, who shares alice's lease:
	// that lease came with alice's record, which does not embed the
	// lease's other tenants.
	if n := srv.Calls(buildiumsim.OpGetTenantByID); n != 2 {
		t.Errorf("%d tenants read by id, want 2 (Lee, Max)", n)
	}
	if len(res.Issues) != 1 || res.Issues[0].Key != "id:9010#7001" {
		t.Errorf("issues %+v", res.Issues)
	}

	// Merged into the full roster: alice's email change is an update of
	// the same person, not a new one.
	full, err := c.Pull(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	base := roster.Assemble(rowsBefore(t)).People
	merged := roster.Merge(base, res.People)
	if !slices.Equal(rows(merged), rows(full)) {
		t.Errorf("merged incremental pull differs from a full pull:\n%v\n%v", rows(merged), rows(full))
	}
	d := roster.Compare(base, merged)
	if len(d.Added) != 0 || len(d.Removed) != 0 || len(d.Changed) != 3 || !d.Changed[0].Has("email") {
		t.Errorf("diff %+v", d)
	}

	// Nothing changed since: an empty pull.
	if people, err := c.Pull(t.Context(), t0.Add(time.Hour)); err != nil || len(people) != 0 {
		t.Errorf("pull since the changes: %v, %v", people, err)
	}
}

// rowsBefore is the demo's harbor-view roster, pulled from a fresh
// simulator.
func rowsBefore(t *testing.T) []roster.Person {
	_, c := setup(t, nil)
	p, err := c.Pull(t.Context(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPaging: the harbor-view property has 8 leases and 10 tenants; each
// list takes ceil(n/size) pages, with no extra empty page at an exact
// boundary, and the rows are the same whatever the page size.
func TestPaging(t *testing.T) {
	for _, size := range []int{1, 3, 4, 5, 8, 10, 1000} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			srv, c := setup(t, func(c *Config) { c.PageSize = size })
			people, err := c.Pull(t.Context(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if got := rows(people); !slices.Equal(got, harborView) {
				t.Errorf("people %v", got)
			}
			pages := func(n int) int64 { return int64((n + size - 1) / size) }
			if got := srv.Calls(buildiumsim.OpGetLeases); got != pages(8) {
				t.Errorf("%d lease pages, want %d", got, pages(8))
			}
			if got := srv.Calls(buildiumsim.OpGetAllTenants); got != pages(10) {
				t.Errorf("%d tenant pages, want %d", got, pages(10))
			}
		})
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name   string
		faults buildiumsim.Faults
		extra  int // requests beyond the 3 of a clean pull
	}{
		{"429 twice", buildiumsim.Faults{RateLimitRate: 1, MaxFaults: 2}, 2},
		{"429 with Retry-After", buildiumsim.Faults{RateLimitRate: 1, MaxFaults: 1, RetryAfter: time.Second}, 1},
		{"503", buildiumsim.Faults{ErrorRate: 1, MaxFaults: 2}, 2},
		{"502", buildiumsim.Faults{ErrorRate: 1, ErrorStatus: 502, MaxFaults: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t, nil)
			if err := srv.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			res, err := c.Fetch(t.Context(), time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 3+tt.extra || !slices.Equal(rows(res.People), harborView) {
				t.Errorf("%d requests, people %v", res.Requests, rows(res.People))
			}
		})
	}
}

func TestErrors(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret = "s3cr3t-that-must-not-leak"
	tests := []struct {
		name   string
		tune   func(*Config)
		faults buildiumsim.Faults
		want   error
		says   string
	}{
		{"bad secret", func(c *Config) { c.ClientSecret = secret }, buildiumsim.Faults{}, ErrUnauthorized, "check the client id and secret"},
		{"unknown property", func(c *Config) { c.PropertyIDs = []int32{buildiumsim.DemoHarborViewID, 4242} }, buildiumsim.Faults{}, ErrUnknownProperty, "4242"},
		{"always 503", func(c *Config) { c.ClientSecret = buildiumsim.DemoClientSecret; c.RetryWithin = 50 * time.Millisecond },
			buildiumsim.Faults{ErrorRate: 1}, ErrUnavailable, "503"},
		{"always 429", func(c *Config) { c.RetryWithin = 50 * time.Millisecond }, buildiumsim.Faults{RateLimitRate: 1}, ErrUnavailable, "429"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := setup(t, func(c *Config) { tt.tune(c); c.Logger = logger })
			if err := srv.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			_, err := c.Pull(t.Context(), time.Time{})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.want, tt.says)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Error("no retry was logged")
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), buildiumsim.DemoClientSecret) {
		t.Errorf("the logs show a secret:\n%s", logs.String())
	}
}

func TestNewRefuses(t *testing.T) {
	ok := Config{ClientID: "id", ClientSecret: "s", PropertyIDs: []int32{1}}
	tests := []struct {
		name string
		tune func(*Config)
	}{
		{"no id", func(c *Config) { c.ClientID = "" }},
		{"no secret", func(c *Config) { c.ClientSecret = "" }},
		{"no property", func(c *Config) { c.PropertyIDs = nil }},
		{"bad property", func(c *Config) { c.PropertyIDs = []int32{0} }},
		{"bad url", func(c *Config) { c.URL = "ftp://x" }},
		{"page too big", func(c *Config) { c.PageSize = 1001 }},
	}
	if _, err := New(ok); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		cfg := ok
		tt.tune(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

// BenchmarkFullPull10k pulls a generated property of 10,000 leases from
// the simulator over loopback HTTP.
func BenchmarkFullPull10k(b *testing.B) {
	srv, err := buildiumsim.Start(buildiumsim.GenerateSeed(6001, 10_000))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, ClientID: buildiumsim.DemoClientID, ClientSecret: buildiumsim.DemoClientSecret, PropertyIDs: []int32{6001}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var res Result
	for b.Loop() {
		if res, err = c.Fetch(b.Context(), time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	if len(res.People) != 10_000 {
		b.Fatalf("%d people", len(res.People))
	}
	b.ReportMetric(float64(res.Requests), "requests/pull")
}
