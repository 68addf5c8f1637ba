package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cloudkey/cloudkey/cache"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/tenant/tenantredis"
)

const contactsCSV = "Full Name,Email,Phone\r\nPat Tenant,pat@acme.example,+1 415 555 0123\r\nLee Other,lee@acme.example,\r\n"

// grantPat imports the contacts and grants Pat the tile for the location.
func grantPat(t *testing.T, st *stack) {
	t.Helper()
	ctx := context.Background()
	contacts := tenant.NewStore(tenantredis.NewContacts(st.redis.Client(), cache.DefaultPrefix))
	if rep, err := contacts.Import(ctx, "1", strings.NewReader(contactsCSV), tenant.ImportOptions{}); err != nil {
		t.Fatalf("import: %v %+v", err, rep)
	}
	if err := contacts.Grant(ctx, "1", "pat@acme.example", location); err != nil {
		t.Fatal(err)
	}
}

func TestVisitorServiceREST(t *testing.T) {
	st, mem := visitorStack(t)
	grantPat(t, st)
	arrival := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	reg := `{"fullName":"Ada Lovelace","email":"ada@example.com","visitorType":"Visitor","expectedArrival":"` + arrival + `"}`
	tests := []struct {
		name, method, path, email, body string
		wantCode                        int
		wantIn                          string
	}{
		{"not granted sees the message", "GET", "/v1/buildings/" + location + "/tile", "lee@acme.example", "", 200, "Visitor registration is not enabled for your account. Ask your property manager."},
		{"not a contact sees the message", "GET", "/v1/buildings/" + location + "/tile", "alice@example.com", "", 200, `"enabled":false`},
		{"granted sees the form", "GET", "/v1/buildings/" + location + "/tile", "pat@acme.example", "", 200, `"visitorTypes":["Contractor","Visitor"]`},
		{"no token", "GET", "/v1/buildings/" + location + "/tile", "", "", 401, ""},
		{"not granted cannot register", "POST", "/v1/buildings/" + location + "/visitors", "lee@acme.example", reg, 403, "not enabled"},
		{"blocked type is not offered", "POST", "/v1/buildings/" + location + "/visitors", "pat@acme.example", strings.Replace(reg, "Visitor", "Interview", 1), 400, "visitor_type"},
		{"bad email", "POST", "/v1/buildings/" + location + "/visitors", "pat@acme.example", strings.Replace(reg, "ada@example.com", "ada", 1), 400, "email"},
		{"no name", "POST", "/v1/buildings/" + location + "/visitors", "pat@acme.example", strings.Replace(reg, "Ada Lovelace", " ", 1), 400, "full_name"},
		{"registers", "POST", "/v1/buildings/" + location + "/visitors", "pat@acme.example", reg, 200, `"action":"ISSUED"`},
		{"lists", "GET", "/v1/buildings/" + location + "/visitors", "pat@acme.example", "", 200, "Ada Lovelace"},
		{"others' list is empty", "GET", "/v1/buildings/" + location + "/visitors", "lee@acme.example", "", 403, ""},
		{"cannot cancel unknown", "DELETE", "/v1/buildings/" + location + "/visitors/ck-nope", "pat@acme.example", "", 404, "VISITOR_NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.email != "" {
				h = []string{"Authorization", "Bearer " + st.token(t, tt.email)}
			}
			code, body := st.do(t, tt.method, tt.path, []byte(tt.body), h...)
			if code != tt.wantCode || !strings.Contains(body, tt.wantIn) {
				t.Errorf("%s %s = %d %s; want %d containing %q", tt.method, tt.path, code, body, tt.wantCode, tt.wantIn)
			}
		})
	}
	if _, ok := mem.Last("ada@example.com"); !ok {
		t.Fatal("registration sent no link")
	}
	// Pat cancels: the pass ends.
	_, list := st.do(t, "GET", "/v1/buildings/"+location+"/visitors", nil, "Authorization", "Bearer "+st.token(t, "pat@acme.example"))
	id := list[strings.Index(list, `"id":"`)+6:]
	id = id[:strings.Index(id, `"`)]
	code, body := st.do(t, "DELETE", "/v1/buildings/"+location+"/visitors/"+id, nil, "Authorization", "Bearer "+st.token(t, "pat@acme.example"))
	if code != 200 || !strings.Contains(body, `"state":"ENDED"`) {
		t.Errorf("cancel: %d %s", code, body)
	}
}

// The whole tenant flow in a real browser: the contact registers a visitor
// in the tile, the link reaches a real SMTP server, the visitor opens it
// and unlocks a door in the simulator inside the window.
func TestTenantTileInBrowser(t *testing.T) {
	ctx := browser(t)
	mb := startMailbox(t)
	st := newStack(t, stackOpts{smtp: notify.SMTPConfig{Addr: mb.addr, From: "Harbor View <noreply@harbor.example>", TLS: notify.NoTLS}})
	key := st.adminKey(t, "1")
	if code, body := st.do(t, "PUT", "/v1/admin/locations/"+location+"/visitor-settings", []byte(goodSettings),
		"x-auth-scheme", "api-token", "x-auth-apikey", key); code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}
	grantPat(t, st)

	tctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	run, wait := browserSteps(t, tctx)

	// A contact without the grant sees the message, not an error page.
	run(chromedp.Navigate(st.http + "/tile?building=" + location + "#token=" + st.token(t, "lee@acme.example")))
	wait(`document.querySelector("#message").textContent.includes("Ask your property manager")`)

	// Pat registers a visitor arriving now (a fresh load: a change of
	// fragment alone would not reload the page).
	run(chromedp.Navigate("about:blank"))
	run(chromedp.Navigate(st.http + "/tile?building=" + location + "#token=" + st.token(t, "pat@acme.example")))
	wait(`!document.querySelector("#register").hidden`)
	arrival := time.Now().Format("2006-01-02T15:04")
	run(chromedp.SendKeys(`input[name=fullName]`, "Ada Lovelace"))
	run(chromedp.SendKeys(`input[name=email]`, "ada@example.com"))
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(function(){var s=document.querySelector("select[name=visitorType]");s.value="Visitor";var a=document.querySelector("input[name=expectedArrival]");a.value="`+arrival+`";return true})()`)); err != nil {
		t.Fatal(err)
	}
	run(chromedp.Click(`#register button[type=submit]`))
	wait(`document.querySelector("#result").textContent.includes("is registered")`)
	wait(`document.querySelector("#visitors").textContent.includes("Ada Lovelace")`)

	// The link arrives by SMTP and opens the Lobby.
	link := mb.link(t)
	run(chromedp.Navigate(link))
	run(chromedp.Click(`button[data-entry="101"]`))
	wait(`document.querySelector("#result").textContent.includes("is open")`)
	if u := st.sim.Unlocks(); len(u) != 1 || u[0].EntryID != 101 || !u[0].ViaToken {
		t.Errorf("simulator unlocks: %+v", u)
	}
}

// browserSteps returns run, which runs one chromedp action in tctx, and
// wait, which polls a JavaScript condition until it holds; both fail t.
func browserSteps(t *testing.T, tctx context.Context) (run func(chromedp.Action[chromedp.Void]), wait func(js string)) {
	run = func(a chromedp.Action[chromedp.Void]) {
		t.Helper()
		if _, err := chromedp.Run(tctx, a); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	wait = func(js string) {
		t.Helper()
		for attempt := 0; ; attempt++ {
			_, err := chromedp.Run(tctx, chromedp.Poll[bool](js))
			// A poll that starts while a navigation swaps the page's
			// JavaScript context loses that context; poll again.
			if err != nil && attempt < 3 && strings.Contains(err.Error(), "Cannot find context") {
				continue
			}
			if err != nil {
				t.Fatalf("browser: waiting for %s: %v", js, err)
			}
			return
		}
	}
	return run, wait
}
