package server_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/notify/twilio"
	"github.com/cloudkey/cloudkey/internal/notify/twiliosim"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
)

var guestLink = regexp.MustCompile(`http://\S+/g/[A-Za-z0-9_-]+`)

// The tile → Envoy loop in a real browser, with invite only on: a contact
// registers a phone-only visitor in the tile; cloudkey creates the invite
// in Envoy (the demo's embedded simulator), whose signed invite_created
// comes back and issues exactly one pass, texted once through Twilio (the
// simulator); the visitor opens a door from the guest page (the Openpath
// simulator records it); the front desk's sign-in adds nothing, and
// Envoy's sign-out ends the pass: the open page's next tap is refused and
// the page then says the pass has ended.
func TestTileEnvoyLoopInBrowser(t *testing.T) {
	ctx := browser(t)
	seed := twiliosim.DemoSeed()
	seed.StepDelay = 0
	tw, err := twiliosim.Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tw.Close() })
	st := newStack(t, stackOpts{envoy: true,
		twilio: twilio.Config{BaseURL: tw.URL, AccountSID: twiliosim.DemoAccountSID, AuthToken: twiliosim.DemoAuthToken, From: twiliosim.DemoFrom}})
	envoySim := st.app.EnvoySim
	if envoySim == nil {
		t.Fatal("the demo has no embedded Envoy simulator")
	}
	key := st.adminKey(t, "1")
	admin := []string{"x-auth-scheme", "api-token", "x-auth-apikey", key}
	if code, body := st.do(t, "PUT", "/v1/admin/locations/"+location+"/visitor-settings", []byte(goodSettings), admin...); code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}
	grantPat(t, st)

	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	run, wait := browserSteps(t, tctx)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(tctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return s
	}

	// Pat registers Ada, phone only, arriving now.
	const phone = "+14155550100"
	run(chromedp.Navigate(st.http + "/tile?building=" + location + "#token=" + st.token(t, "pat@acme.example")))
	wait(`!document.querySelector("#register").hidden`)
	run(chromedp.SendKeys(`input[name=fullName]`, "Ada Lovelace"))
	run(chromedp.SendKeys(`input[name=phone]`, "(415) 555-0100"))
	arrival := time.Now().Format("2006-01-02T15:04")
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(function(){document.querySelector("select[name=visitorType]").value="Visitor";document.querySelector("input[name=expectedArrival]").value="`+arrival+`";return true})()`)); err != nil {
		t.Fatal(err)
	}
	run(chromedp.Click(`#register button[type=submit]`))
	wait(`document.querySelector("#result").textContent.includes("Ada Lovelace is registered")`)
	if r := text("#result"); !strings.Contains(r, "Envoy") && !strings.Contains(r, "link was sent") {
		t.Errorf("tile result %q", r)
	}

	// Envoy has the one invite, tagged; its invite_created issued one pass
	// and one text.
	envoySim.WaitWebhooks()
	invites := envoySim.Invites()
	if len(invites) != 1 || invites[0].Phone != phone || invites[0].UserData["cloudkey-ref"] == "" {
		t.Fatalf("Envoy invites: %+v", invites)
	}
	inviteID := invites[0].ID
	v, err := st.app.Visitors.Visit(context.Background(), inviteID, "")
	if err != nil || v.Pass == nil || v.Phone != phone {
		t.Fatalf("visit %s: %+v, %v", inviteID, v, err)
	}
	texts := tw.MessagesTo(phone)
	if len(texts) != 1 || len(tw.Messages()) != 1 {
		t.Fatalf("texts: %+v (all %d)", texts, len(tw.Messages()))
	}
	link := guestLink.FindString(texts[0].Body)
	if !strings.HasPrefix(link, st.http+"/g/") {
		t.Fatalf("no guest link in the text %q", texts[0].Body)
	}

	// Pat's list shows Ada; the guest page opens the Lobby.
	run(chromedp.Navigate("about:blank"))
	run(chromedp.Navigate(st.http + "/tile?building=" + location))
	wait(`document.querySelector("#visitors").textContent.includes("Ada Lovelace")`)
	run(chromedp.Navigate(link))
	run(chromedp.Click(`button[data-entry="101"]`))
	wait(`document.querySelector("#result").textContent.includes("is open")`)
	if u := st.sim.Unlocks(); len(u) != 1 || u[0].EntryID != 101 || !u[0].ViaToken {
		t.Fatalf("simulator unlocks: %+v", u)
	}

	// The front desk signs Ada in (no second pass, no second text), then out.
	entry, err := envoySim.SignIn(inviteID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tw.Messages()); n != 1 {
		t.Errorf("%d texts after the sign-in", n)
	}
	if err := envoySim.SignOut(entry); err != nil {
		t.Fatal(err)
	}
	run(chromedp.Click(`button[data-entry="101"]`))
	wait(`(function(){var r=document.querySelector("#result").textContent;return r!=="" && r!=="Opening…" && !r.includes("is open")})()`)
	if r, u := text("#result"), st.sim.Unlocks(); len(u) != 1 || !strings.Contains(r, "ended") {
		t.Errorf("after the sign-out: result %q, unlocks %+v", r, u)
	}
	run(chromedp.Navigate("about:blank"))
	run(chromedp.Navigate(link))
	wait(`document.querySelector("#message") && document.querySelector("#message").textContent.includes("ended")`)
	if n := len(tw.Messages()); n != 1 {
		t.Errorf("%d texts in all, want 1", n)
	}
	if len(envoySim.Invites()) != 1 {
		t.Errorf("Envoy invites: %+v", envoySim.Invites())
	}
}

// Over the API: the settings answer shows the Envoy connection's state,
// and Envoy failing answers the tile UNAVAILABLE (HTTP 503) with nothing
// registered, in Envoy or in cloudkey.
func TestTileEnvoyAPI(t *testing.T) {
	st := newStack(t, stackOpts{envoy: true, notifier: &notify.Memory{}})
	admin := []string{"x-auth-scheme", "api-token", "x-auth-apikey", st.adminKey(t, "1")}
	settings := "/v1/admin/locations/" + location + "/visitor-settings"
	if code, body := st.do(t, "PUT", settings, []byte(goodSettings), admin...); code != 200 {
		t.Fatalf("settings: %d %s", code, body)
	}
	grantPat(t, st)
	pat := []string{"Authorization", "Bearer " + st.token(t, "pat@acme.example")}
	reg := `{"fullName":"Ada Lovelace","email":"ada@example.com","visitorType":"Visitor","expectedArrival":"` +
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`

	if err := st.app.EnvoySim.SetFaults(envoysim.Faults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		t.Fatal(err)
	}
	code, body := st.do(t, "POST", "/v1/buildings/"+location+"/visitors", []byte(reg), pat...)
	if code != 503 || !strings.Contains(body, "Envoy") || !strings.Contains(body, "nothing was changed") {
		t.Errorf("Envoy down: %d %s", code, body)
	}
	if _, list := st.do(t, "GET", "/v1/buildings/"+location+"/visitors", nil, pat...); strings.Contains(list, "Ada") {
		t.Errorf("a failed registration is listed: %s", list)
	}
	if n := len(st.app.EnvoySim.Invites()); n != 0 {
		t.Errorf("%d invites in Envoy", n)
	}

	if err := st.app.EnvoySim.SetFaults(envoysim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if code, body := st.do(t, "POST", "/v1/buildings/"+location+"/visitors", []byte(reg), pat...); code != 200 || !strings.Contains(body, `"action":"ISSUED"`) && !strings.Contains(body, `"action":"PENDING"`) {
		t.Fatalf("Envoy back: %d %s", code, body)
	}
	code, body = st.do(t, "GET", settings, nil, admin...)
	if code != 200 || !strings.Contains(body, `"envoyConnection":{"tokenValid":true,"authError":false,"lastError":""`) {
		t.Errorf("settings answer: %d %s", code, body)
	}
}
