package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/cors"
)

// Header values are built once: the middleware assigns these slices to the
// header map instead of calling Set, which would allocate one per header
// per answer. Each has capacity 1, so a handler appending to one (Add)
// gets a copy and never writes into the shared array.
var (
	hdrNosniff    = []string{"nosniff"}[:1:1]
	hdrNoReferrer = []string{"no-referrer"}[:1:1]
	hdrNoStore    = []string{"no-store"}[:1:1]
	hdrDeny       = []string{"DENY"}[:1:1]
	// hdrAPICSP is for everything that is not a page: JSON read as HTML
	// by a confused browser can run nothing and be framed nowhere.
	hdrAPICSP = []string{"default-src 'none'; frame-ancestors 'none'"}[:1:1]
	// hdrHSTS: a year, as the HSTS preload list asks; no preload, which
	// is the operator's decision for the whole domain.
	hdrHSTS = []string{"max-age=31536000; includeSubDomains"}[:1:1]
)

// guestCSP is the guest page's policy: its own script and style only,
// images (the building's logo) from https anywhere, never framed.
var guestCSP = []string{pageCSP("'none'")}[:1:1]

// pageCSP is the policy of cloudkey's web pages, framed by ancestors.
func pageCSP(ancestors string) string {
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors " + ancestors
}

// secureHeaders sets the headers every HTTP answer carries. Pages
// override Content-Security-Policy (and /tile X-Frame-Options), static
// files Cache-Control: answers are no-store by default because they are
// bearer-token authorised or guest-token addressed.
type secureHeaders struct {
	next http.Handler
	hsts bool
}

func (s secureHeaders) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["X-Content-Type-Options"] = hdrNosniff
	// Guest tokens are in /g/{token} URLs: no page may leak its URL to the
	// logo's host or a followed link.
	h["Referrer-Policy"] = hdrNoReferrer
	h["Cache-Control"] = hdrNoStore
	h["X-Frame-Options"] = hdrDeny
	h["Content-Security-Policy"] = hdrAPICSP
	if s.hsts {
		h["Strict-Transport-Security"] = hdrHSTS
	}
	s.next.ServeHTTP(w, r)
}

// tileFraming is how /tile may be framed, from TileFrameAncestors.
type tileFraming struct {
	csp []string
	// deny keeps X-Frame-Options: DENY; it is dropped when ancestors are
	// allowed (X-Frame-Options has no allow-list, and browsers that know
	// frame-ancestors ignore it anyway).
	deny bool
}

// newTileFraming checks a CSP frame-ancestors source list (space or comma
// separated) and builds the tile's headers. Empty means 'none'.
func newTileFraming(ancestors string) (tileFraming, error) {
	srcs := strings.FieldsFunc(ancestors, func(r rune) bool { return r == ' ' || r == ',' })
	if len(srcs) == 0 {
		srcs = []string{"'none'"}
	}
	for _, s := range srcs {
		if err := checkAncestorSource(s); err != nil {
			return tileFraming{}, fmt.Errorf("tile frame ancestors: %w", err)
		}
		if s == "'none'" && len(srcs) > 1 {
			return tileFraming{}, fmt.Errorf("tile frame ancestors: 'none' cannot be combined with other sources")
		}
	}
	list := strings.Join(srcs, " ")
	return tileFraming{csp: []string{pageCSP(list)}[:1:1], deny: list == "'none'"}, nil
}

// checkAncestorSource accepts 'self', 'none', a scheme source (https:) or
// a host source such as https://app.example.com or https://*.example.com.
// Anything that could end the directive (;), or smuggle another header,
// is refused.
func checkAncestorSource(s string) error {
	switch s {
	case "'self'", "'none'", "https:":
		return nil
	case "*", "http:":
		return fmt.Errorf("%q lets any site frame the tile; list the origins", s)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-*:/", r)
		if !ok {
			return fmt.Errorf("%q: %q is not allowed in a source expression", s, r)
		}
	}
	host := s
	if i := strings.Index(s, "://"); i >= 0 {
		if scheme := s[:i]; scheme != "https" && scheme != "http" {
			return fmt.Errorf("%q: scheme must be https or http", s)
		}
		host = s[i+3:]
	}
	host = strings.TrimSuffix(host, "/")
	if host == "" || strings.Contains(host, "/") || strings.Count(host, "*") > 1 || strings.Contains(host, "*") && !strings.HasPrefix(host, "*.") {
		return fmt.Errorf("%q is not a host source like https://app.example.com or https://*.example.com", s)
	}
	return nil
}

// corsMaxAge is how long browsers may cache a preflight answer (Chromium
// caps it at 2 hours).
const corsMaxAge = 2 * time.Hour

// withCORS lets browsers on origins call the REST gateway. No origins: no
// cross-origin access at all, and no CORS handler on the path (rs/cors
// would take an empty list to mean every origin).
func withCORS(next http.Handler, origins []string) (http.Handler, error) {
	if len(origins) == 0 {
		return next, nil
	}
	clean := make([]string, 0, len(origins))
	for _, o := range origins {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Contains(u.Host, "*") ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("CORS origin %q: want an exact origin like https://app.example.com", o)
		}
		clean = append(clean, strings.ToLower(o))
	}
	if len(clean) == 0 {
		return next, nil
	}
	c := cors.New(cors.Options{
		AllowedOrigins: clean,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "Content-Type", "X-Auth-Scheme", "X-Auth-Apikey", "X-Request-Id"},
		// Bearer tokens and API keys travel in headers; cookies never
		// authorise anything here.
		AllowCredentials: false,
		MaxAge:           int(corsMaxAge / time.Second),
	})
	return c.Handler(next), nil
}
