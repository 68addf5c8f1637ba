package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The tile embedded in an iframe by another origin (the tenant app's web
// version): rendered when that origin is a configured frame ancestor,
// refused by the browser otherwise.
func TestTileFramedInBrowser(t *testing.T) {
	ctx := browser(t)
	var src atomic.Value // the iframe's URL
	parent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>app</title><iframe id="tile" src="%s" width="400" height="600"></iframe>`, src.Load())
	}))
	defer parent.Close()
	framed := newStack(t, stackOpts{tileAncestors: parent.URL})
	plain := newStack(t, stackOpts{})

	tctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	// frameState loads the parent page framing url and returns what the frame
	// shows once loaded: "refused" (the browser's error page) or the tile's message.
	frameState := func(url string) (string, error) {
		src.Store(url)
		if _, err := chromedp.Run(tctx, chromedp.Navigate(parent.URL)); err != nil {
			return "", err
		}
		frames, err := chromedp.Run(tctx, chromedp.Nodes(`iframe#tile`))
		if err != nil {
			return "", err
		}
		return chromedp.Run(tctx, chromedp.Poll[string](
			`document.readyState === "complete" && (location.href.startsWith("chrome-error:") ? "refused" : (document.querySelector("#message") || {}).textContent)`,
			chromedp.WithPollingInFrame(frames[0])))
	}
	tests := []struct {
		name, url string
		want      string
	}{
		{"tile, its ancestor configured", framed.http + "/tile?building=" + location + "#token=" + framed.token(t, "lee@acme.example"), "Ask your property manager"},
		{"tile, framing not configured", plain.http + "/tile?building=" + location + "#token=" + plain.token(t, "lee@acme.example"), "refused"},
		{"guest page, never framed", framed.http + "/g/" + strings.Repeat("x", 43), "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := frameState(tt.url)
			if err != nil {
				t.Fatalf("browser: %v", err)
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("framed %s: frame shows %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}
