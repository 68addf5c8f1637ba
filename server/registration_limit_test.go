package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cloudkey/cloudkey/cache"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/ratelimit"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/tenant/tenantredis"
)

// TestRegistrationRateLimit: a tenant contact's visitor registrations stop
// at the contact's budget, over REST (429 with Retry-After) and gRPC
// (RESOURCE_EXHAUSTED with RetryInfo); a refused registration issues no
// pass and sends no link; another contact is not limited by the first,
// but the building's budget holds across its contacts.
func TestRegistrationRateLimit(t *testing.T) {
	perHour := func(n int) ratelimit.Limit { return ratelimit.Limit{Rate: n, Period: time.Hour, Burst: n} }
	st, mem := visitorStackWith(t, stackOpts{limits: ratelimit.Config{
		RegisterContact: perHour(3), RegisterBuilding: perHour(5),
	}})
	grantPat(t, st)
	if err := tenant.NewStore(tenantredis.NewContacts(st.redis.Client(), cache.DefaultPrefix)).Grant(context.Background(), "1", "lee@acme.example", location); err != nil {
		t.Fatal(err)
	}
	arrival := time.Now().Add(time.Hour).UTC()
	n := 0
	body := func() string {
		n++
		return fmt.Sprintf(`{"fullName":"Guest %d","email":"guest%d@example.com","visitorType":"Visitor","expectedArrival":%q}`, n, n, arrival.Format(time.RFC3339))
	}
	path := "/v1/buildings/" + location + "/visitors"
	register := func(contact string) (int, string) {
		t.Helper()
		return st.postREST(t, path, contact, body())
	}
	passes := func(contact string) int {
		t.Helper()
		code, list := st.do(t, "GET", path, nil, "Authorization", "Bearer "+st.token(t, contact))
		if code != 200 {
			t.Fatalf("list %s: %d %s", contact, code, list)
		}
		return strings.Count(list, `"id":"ck-`)
	}

	for i := range 3 {
		if code, _ := register("pat@acme.example"); code != 200 {
			t.Fatalf("Pat's registration %d: HTTP %d", i+1, code)
		}
	}
	sent := len(mem.Messages())
	code, retry := register("pat@acme.example")
	if secs, err := strconv.Atoi(retry); code != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 20*60 {
		t.Fatalf("Pat's 4th registration: HTTP %d, Retry-After %q; want 429 and 1..1200 seconds", code, retry)
	}
	conn, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	visitors := pb.NewVisitorServiceClient(conn)
	_, err = visitors.RegisterVisitor(st.as(t, "pat@acme.example"), &pb.RegisterVisitorRequest{
		BuildingId: location, FullName: "Eve", Email: "eve@example.com", VisitorType: "Visitor",
		ExpectedArrival: timestamppb.New(arrival),
	})
	if status.Code(err) != codes.ResourceExhausted || retryDelay(err) <= 0 || reason(err) != "RATE_LIMITED" || scope(err) != "contact" {
		t.Fatalf("gRPC registration over the limit: %v (reason %q, scope %q)", err, reason(err), scope(err))
	}
	if got := passes("pat@acme.example"); got != 3 {
		t.Errorf("Pat has %d registrations, want 3: refused ones must leave nothing", got)
	}
	if got := len(mem.Messages()); got != sent {
		t.Errorf("%d links sent for refused registrations", got-sent)
	}
	if _, ok := mem.Last("eve@example.com"); ok {
		t.Error("a refused registration sent a link")
	}

	// Lee is not limited by Pat's budget, but the building is: it has 2
	// of its 5 left.
	for i := range 2 {
		if code, _ := register("lee@acme.example"); code != 200 {
			t.Fatalf("Lee's registration %d: HTTP %d", i+1, code)
		}
	}
	sent = len(mem.Messages())
	if code, retry := register("lee@acme.example"); code != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("the building's 6th registration: HTTP %d, Retry-After %q; want 429", code, retry)
	}
	_, err = visitors.RegisterVisitor(st.as(t, "lee@acme.example"), &pb.RegisterVisitorRequest{
		BuildingId: location, FullName: "Eve", Email: "eve@example.com", VisitorType: "Visitor",
		ExpectedArrival: timestamppb.New(arrival),
	})
	if status.Code(err) != codes.ResourceExhausted || scope(err) != "building" {
		t.Fatalf("gRPC registration over the building's limit: %v (scope %q)", err, scope(err))
	}
	if got := passes("lee@acme.example"); got != 2 {
		t.Errorf("Lee has %d registrations, want 2", got)
	}
	if got := len(mem.Messages()); got != sent {
		t.Errorf("%d links sent for refused registrations", got-sent)
	}
}

// scope is the rate limit a RESOURCE_EXHAUSTED names.
func scope(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.Metadata["scope"]
		}
	}
	return ""
}
