package buildiumsim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/roster/buildiumsim/buildiumspec"
)

type fixture struct {
	srv     *Server
	checked *http.Client // fails the test on any request or answer outside the spec
	raw     *http.Client // checks answers only, for requests broken on purpose
}

func start(t *testing.T, seed Seed) *fixture {
	t.Helper()
	srv, err := Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	spec := buildiumspec.Load(t)
	return &fixture{srv: srv, checked: &http.Client{Transport: spec.Transport(t, nil)}, raw: &http.Client{Transport: spec.ResponseTransport(t, nil)}}
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) get(t *testing.T, c *http.Client, path string, creds ...string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if creds == nil {
		creds = []string{DemoClientID, DemoClientSecret}
	}
	if creds[0] != "" {
		req.Header.Set("x-buildium-client-id", creds[0])
	}
	if len(creds) > 1 && creds[1] != "" {
		req.Header.Set("x-buildium-client-secret", creds[1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("%d %s: %v", a.status, a.body, err)
	}
	return v
}

func TestLeasesPagingAndFilters(t *testing.T) {
	f := start(t, DemoSeed())
	ids := func(a answer) []int32 {
		var out []int32
		for _, l := range decode[[]leaseMessage](t, a) {
			out = append(out, l.ID)
		}
		return out
	}
	tests := []struct {
		path  string
		total string
		ids   []int32
	}{
		{"/v1/leases?propertyids=5001&limit=3", "8", []int32{7001, 7002, 7003}},
		{"/v1/leases?propertyids=5001&limit=3&offset=6", "8", []int32{7007, 7008}},
		{"/v1/leases?propertyids=5001&offset=8", "8", nil},
		{"/v1/leases?propertyids=5001&propertyids=5002&leasestatuses=Past&leasestatuses=Future", "2", []int32{7003, 7007}},
		{"/v1/leases?lastupdatedfrom=2026-11-01T00:00:00Z", "2", []int32{7003, 7007}},
		{"/v1/leases?lastupdatedto=2026-02-01T12:00:00Z", "2", []int32{7005, 7006}},
		{"/v1/leases?unitnumber=1A", "1", []int32{7101}},
	}
	for _, tt := range tests {
		a := f.get(t, f.checked, tt.path)
		if a.status != 200 || a.header.Get("X-Total-Count") != tt.total || !equal(ids(a), tt.ids) {
			t.Errorf("%s: %d total %s ids %v; want total %s ids %v", tt.path, a.status, a.header.Get("X-Total-Count"), ids(a), tt.total, tt.ids)
		}
	}

	// A lease embeds its current tenants' records, lists every tenant
	// with their status, and the move-outs.
	a := f.get(t, f.checked, "/v1/leases/7004")
	erin := decode[leaseMessage](t, a)
	if len(erin.CurrentTenants) != 1 || erin.CurrentTenants[0].Email != "erin@example.com" ||
		len(erin.MoveOutData) != 1 || erin.MoveOutData[0].MoveOutDate != "2026-11-30" || erin.LeaseStatus != "Active" {
		t.Errorf("erin's lease: %s", a.body)
	}
	carol := decode[leaseMessage](t, f.get(t, f.checked, "/v1/leases/7003"))
	if len(carol.CurrentTenants) != 0 || carol.Tenants[0].Status != "MovedOut" {
		t.Errorf("carol's lease %+v", carol)
	}
}

func TestTenants(t *testing.T) {
	f := start(t, DemoSeed())
	a := f.get(t, f.checked, "/v1/leases/tenants?propertyids=5002")
	ts := decode[[]tenantMessage](t, a)
	if a.header.Get("X-Total-Count") != "2" || len(ts) != 2 || ts[0].ID != 9008 || len(ts[0].Leases) != 2 {
		t.Errorf("foundry tenants: %s", a.body)
	}
	// The email filter is a contains match, ASCII case-insensitive.
	ts = decode[[]tenantMessage](t, f.get(t, f.checked, "/v1/leases/tenants?email=PARKS@"))
	if len(ts) != 2 {
		t.Errorf("email filter: %+v", ts)
	}
	max := decode[tenantMessage](t, f.get(t, f.checked, "/v1/leases/tenants/9010"))
	if max.Email != "" || max.Leases[0].ID != 7001 {
		t.Errorf("max %+v", max)
	}

	// An edit in Buildium stamps the tenant with the simulator's clock.
	now := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	f.srv.SetClock(func() time.Time { return now })
	if err := f.srv.SetTenantEmail(9001, "alice.anders@example.com"); err != nil {
		t.Fatal(err)
	}
	ts = decode[[]tenantMessage](t, f.get(t, f.checked, "/v1/leases/tenants?lastupdatedfrom=2026-12-02T14:00:00Z"))
	if len(ts) != 1 || ts[0].Email != "alice.anders@example.com" {
		t.Errorf("tenants changed since 14:00: %+v", ts)
	}
	if err := f.srv.SetMoveOut(7001, 9001, "2027-01-31", "2026-12-02"); err != nil {
		t.Fatal(err)
	}
	ls := decode[[]leaseMessage](t, f.get(t, f.checked, "/v1/leases?lastupdatedfrom=2026-12-02T14:00:00Z"))
	if len(ls) != 1 || ls[0].ID != 7001 || ls[0].LastUpdatedDateTime != "2026-12-02T15:00:00Z" {
		t.Errorf("leases changed since 14:00: %+v", ls)
	}
	mo := decode[moveOutMessage](t, f.get(t, f.checked, "/v1/leases/7001/moveouts/9001"))
	if mo.MoveOutDate != "2027-01-31" || mo.NoticeGivenDate != "2026-12-02" {
		t.Errorf("move-out %+v", mo)
	}
	if a := f.get(t, f.checked, "/v1/leases/7001/moveouts"); a.header.Get("X-Total-Count") != "1" {
		t.Errorf("move-outs %s", a.body)
	}
}

func TestErrors(t *testing.T) {
	f := start(t, DemoSeed())
	tests := []struct {
		name   string
		path   string
		creds  []string
		status int
	}{
		{"no secret", "/v1/leases", []string{DemoClientID}, 401},
		{"no id", "/v1/leases", []string{"", DemoClientSecret}, 401},
		{"wrong secret", "/v1/rentals", []string{DemoClientID, "nope"}, 401},
		{"unknown lease", "/v1/leases/1", nil, 404},
		{"unknown tenant", "/v1/leases/tenants/1", nil, 404},
		{"unknown rental", "/v1/rentals/4242", nil, 404},
		{"limit too big", "/v1/leases?limit=1001", nil, 400},
		{"bad status", "/v1/leases?leasestatuses=Current", nil, 400},
		{"bad date-time", "/v1/leases?lastupdatedfrom=yesterday", nil, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.get(t, f.raw, tt.path, tt.creds...)
			e := decode[apiError](t, a)
			if a.status != tt.status || e.UserMessage == "" || e.ErrorCode == "" {
				t.Errorf("%d %s", a.status, a.body)
			}
		})
	}
	// A rotated key: the old one gets 401.
	f.srv.SetCredentials("new-id", "new-secret")
	if a := f.get(t, f.checked, "/v1/rentals"); a.status != 401 {
		t.Errorf("old key: %d", a.status)
	}
	if a := f.get(t, f.checked, "/v1/rentals", "new-id", "new-secret"); a.status != 200 {
		t.Errorf("new key: %d", a.status)
	}
}

func TestFaults(t *testing.T) {
	f := start(t, DemoSeed())
	if err := f.srv.SetFaults(Faults{RateLimitRate: 1, RetryAfter: 2 * time.Second, MaxFaults: 1}); err != nil {
		t.Fatal(err)
	}
	a := f.get(t, f.checked, "/v1/rentals")
	if a.status != 429 || a.header.Get("Retry-After") != "2" {
		t.Errorf("first: %d %v", a.status, a.header)
	}
	if a := f.get(t, f.checked, "/v1/rentals"); a.status != 200 {
		t.Errorf("after MaxFaults: %d", a.status)
	}
	if err := f.srv.SetFaults(Faults{ErrorRate: 1, ErrorStatus: 502}); err != nil {
		t.Fatal(err)
	}
	if a := f.get(t, f.checked, "/v1/leases"); a.status != 502 || !strings.Contains(string(a.body), "BadGateway") {
		t.Errorf("5xx: %d %s", a.status, a.body)
	}
	if got := f.srv.Calls(OpGetAllRentals); got != 2 {
		t.Errorf("rentals calls %d", got)
	}
}

func TestSeeds(t *testing.T) {
	if err := DemoSeed().Validate(); err != nil {
		t.Fatal(err)
	}
	g := GenerateSeed(6001, 1000)
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	f := start(t, g)
	a := f.get(t, f.checked, "/v1/leases?propertyids=6001&limit=1000&leasestatuses=Past")
	if a.header.Get("X-Total-Count") != "10" {
		t.Errorf("past leases of 1000: %s", a.header.Get("X-Total-Count"))
	}
	bad := DemoSeed()
	bad.Leases[0].Status = "Notice" // not a Buildium lease status
	if _, err := New(bad); err == nil {
		t.Error("a lease status outside the spec was accepted")
	}
	bad = DemoSeed()
	bad.Leases[0].From = "06/01/2025"
	if _, err := New(bad); err == nil {
		t.Error("a US date was accepted")
	}
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
