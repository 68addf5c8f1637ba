package server_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// chromium returns the browser's path; `make test` installs Debian's
// chromium, so in CI a missing browser is a failure, not a skip.
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (make test installs it)")
	}
	t.Skip("chromium is not installed; make test installs it")
	return ""
}

func browser(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil { // start the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// The visitor opens the link in a real browser and taps the door.
func TestGuestPageInBrowser(t *testing.T) {
	ctx := browser(t)
	st, mem := visitorStack(t)
	invite := fixture(t, "invite_created.json", time.Now())
	if code, body := st.do(t, "POST", "/webhooks/envoy", invite, envoy.SignatureHeader, envoy.Sign(invite, []byte(testEnvoySecret))); code != 200 {
		t.Fatalf("invite: %d %s", code, body)
	}
	msg, ok := mem.Last("ada.lovelace@example.com")
	if !ok {
		t.Fatal("no link sent")
	}

	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	run, _ := browserSteps(t, tctx)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(tctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return s
	}
	run(chromedp.Navigate(msg.Link))
	heading, window := text("h1"), text("#window")
	run(chromedp.Click(`button[data-entry="101"]`))
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`document.querySelector("#result").textContent.includes("is open")`)); err != nil {
		t.Fatalf("no unlock result on the page: %v (result %q)", err, text("#result"))
	}
	result := text("#result")
	if heading != "Welcome, Ada Lovelace" || !strings.Contains(window, "CET") || result != "Lobby is open" {
		t.Errorf("page: heading %q, window %q, result %q", heading, window, result)
	}
	if u := st.sim.Unlocks(); len(u) != 1 || u[0].EntryID != 101 || !u[0].ViaToken {
		t.Errorf("simulator unlocks after the tap: %+v", u)
	}

	// An unknown link shows an ended pass with no door buttons.
	run(chromedp.Navigate(st.http + "/g/" + strings.Repeat("x", 43)))
	ended := text("#message")
	buttons, err := chromedp.Run(tctx, chromedp.Evaluate[int](`document.querySelectorAll("button.door").length`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if ended != "This pass has ended" || buttons != 0 {
		t.Errorf("unknown link: message %q, %d buttons", ended, buttons)
	}
}
