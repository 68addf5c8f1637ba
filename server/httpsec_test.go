package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestTileFraming(t *testing.T) {
	tests := []struct {
		in       string
		wantErr  bool
		wantList string // the frame-ancestors sources
		wantDeny bool
	}{
		{"", false, "'none'", true},
		{"'none'", false, "'none'", true},
		{"'self'", false, "'self'", false},
		{"https://*.hqo.com", false, "https://*.hqo.com", false},
		{"https://app.hqo.com, https://*.example.com:8443", false, "https://app.hqo.com https://*.example.com:8443", false},
		{"https://app.hqo.com   'self'", false, "https://app.hqo.com 'self'", false},
		{"*", true, "", false},
		{"http:", true, "", false},
		{"'none' https://app.hqo.com", true, "", false},
		{"https://a.com; script-src *", true, "", false},
		{"https://a.com\r\nSet-Cookie: x", true, "", false},
		{"ftp://a.com", true, "", false},
		{"https://*", true, "", false},
		{"https://a.*.com", true, "", false},
		{"https://a.com/path", true, "", false},
		{"'unsafe-inline'", true, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := newTileFraming(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("newTileFraming(%q) err = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !strings.HasSuffix(f.csp[0], "; frame-ancestors "+tt.wantList) || f.deny != tt.wantDeny {
				t.Errorf("newTileFraming(%q) = %q deny=%v; want frame-ancestors %s deny=%v", tt.in, f.csp[0], f.deny, tt.wantList, tt.wantDeny)
			}
		})
	}
}

func TestCORSOriginsChecked(t *testing.T) {
	ok := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	tests := []struct {
		origins []string
		wantErr bool
	}{
		{nil, false},
		{[]string{"https://app.example.com"}, false},
		{[]string{"https://app.example.com:8443", "http://localhost:3000"}, false},
		{[]string{" "}, false}, // blank items are dropped
		{[]string{"*"}, true},
		{[]string{"https://*.example.com"}, true},
		{[]string{"app.example.com"}, true},
		{[]string{"https://app.example.com/"}, true},
		{[]string{"https://app.example.com/path"}, true},
		{[]string{"https://user@app.example.com"}, true},
		{[]string{"javascript://x"}, true},
	}
	for _, tt := range tests {
		if _, err := withCORS(ok, tt.origins); (err != nil) != tt.wantErr {
			t.Errorf("withCORS(%q) err = %v, want error %v", tt.origins, err, tt.wantErr)
		}
	}
}

// The shared header slices must survive a handler that appends to one.
func TestSecureHeadersSharedValuesNotWritten(t *testing.T) {
	h := secureHeaders{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Cache-Control", "private")
	})}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/me", nil))
	if got := rec.Header().Values("Cache-Control"); len(got) != 2 || hdrNoStore[0] != "no-store" || len(hdrNoStore) != 1 {
		t.Errorf("Cache-Control = %q, shared value %q", got, hdrNoStore)
	}
}

// BenchmarkSecureHeaders is the middleware's cost per answer, against the
// same handler without it.
func BenchmarkSecureHeaders(b *testing.B) {
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
	})
	req := httptest.NewRequest("GET", "/v1/me/entries", nil)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", next}, {"secure", secureHeaders{next: next}}, {"secure+hsts", secureHeaders{next: next, hsts: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := headerOnly{make(http.Header)}
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

// headerOnly is the least a ResponseWriter is: a fresh header map per
// answer, as net/http makes one.
type headerOnly struct{ h http.Header }

func (w headerOnly) Header() http.Header         { return w.h }
func (w headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (w headerOnly) WriteHeader(int)             {}
