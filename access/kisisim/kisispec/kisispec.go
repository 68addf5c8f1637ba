// Package kisispec checks HTTP traffic against Kisi's own API description
// (the OpenAPI 3.1 subset in access/kisisim/testdata), for the tests of the
// Kisi simulator and of the kisi client.
//
// Test support: only tests import it; it imports no cloudkey package.
package kisispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// File is the name of the subset in access/kisisim/testdata.
const File = "kisi-subset.openapi.json"

// Spec is the Kisi API description, ready to validate requests and answers.
type Spec struct {
	router  routers.Router
	options *openapi3filter.Options
}

var (
	loadOnce sync.Once
	loaded   *Spec
	loadErr  error
)

// Path returns where the subset is: access/kisisim/testdata, found from
// this source file, so that tests of any package can load it; when the
// source path is unknown (a -trimpath build), it is looked for from the
// working directory up to the module root.
func Path() string {
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "testdata", File)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return filepath.Join("testdata", File)
	}
	for {
		p := filepath.Join(dir, "access", "kisisim", "testdata", File)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return filepath.Join("testdata", File)
		}
		dir = parent
	}
}

// Load returns the Kisi spec, read once per test binary; it fails t when
// the file cannot be read or is not a valid OpenAPI document.
func Load(t testing.TB) *Spec {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = LoadFile(Path()) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// LoadFile reads, validates and routes the OpenAPI document at path.
func LoadFile(path string) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("kisispec: load %s: %w", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("kisispec: %s is not a valid spec: %w", path, err)
	}
	// The spec's server is https://api.kisi.io; match any host instead, so
	// that loopback test servers are routed.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("kisispec: route %s: %w", path, err)
	}
	return &Spec{
		router: router,
		options: &openapi3filter.Options{
			MultiError:         true,
			AuthenticationFunc: authenticate,
		},
	}, nil
}

// schemePrefixes are the Authorization prefixes of the spec's apiKey
// schemes (KISI_NOTES §1); OAuth2 is a bearer token.
var schemePrefixes = map[string]string{
	"Kisi-Login":      "KISI-LOGIN ",
	"Kisi-Access-Key": "KISI-ACCESS-KEY ",
	"Kisi-Group-Link": "KISI-GROUP-LINK ",
	"Kisi-Service":    "KISI-SERVICE ",
	"OAuth2":          "Bearer ",
}

// authenticate accepts a request whose Authorization header has the
// scheme's prefix and a non-empty secret after it.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	prefix, ok := schemePrefixes[in.SecuritySchemeName]
	if !ok {
		return fmt.Errorf("scheme %s is not checked", in.SecuritySchemeName)
	}
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	if !strings.HasPrefix(h, prefix) || strings.TrimSpace(h[len(prefix):]) == "" {
		return errors.New("no " + strings.TrimSpace(prefix) + " Authorization header")
	}
	return nil
}

// CheckRequest validates r (reading and restoring its body) and returns
// what CheckResponse needs. The input is nil when the spec has no such
// operation; it is set, with the error, when the request breaks the spec.
func (s *Spec) CheckRequest(r *http.Request) (*openapi3filter.RequestValidationInput, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	// Validate a copy: validation reads the body and may set defaults.
	vr := r.Clone(r.Context())
	if r.Body != nil {
		vr.Body = io.NopCloser(bytes.NewReader(body))
	}
	route, params, err := s.router.FindRoute(vr)
	if err != nil {
		return nil, fmt.Errorf("no such operation in the spec: %w", err)
	}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: s.options}
	return in, openapi3filter.ValidateRequest(vr.Context(), in)
}

// CheckResponse validates an answer to the request in. A status the
// operation does not list (429, or an injected 5xx) is accepted.
func (s *Spec) CheckResponse(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                s.options,
	})
}

// Transport wraps base (nil: http.DefaultTransport) so that every request
// sent through it, and its answer, is validated; any violation fails t.
// A request the spec does not describe is a failure too.
func (s *Spec) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	return &transport{spec: s, t: t, base: base, strict: true}
}

// ResponseTransport is Transport for tests that send malformed requests on
// purpose (no Authorization header, a bad id): request violations are
// ignored, answers to operations the spec has are still validated.
func (s *Spec) ResponseTransport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	return &transport{spec: s, t: t, base: base}
}

// Client returns an http.Client using Transport(t, nil).
func (s *Spec) Client(t testing.TB) *http.Client {
	return &http.Client{Transport: s.Transport(t, nil)}
}

type transport struct {
	spec   *Spec
	t      testing.TB
	base   http.RoundTripper
	strict bool
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := tr.base
	if base == nil {
		base = http.DefaultTransport
	}
	// RoundTrip must not change r; the body it validates is a copy.
	r = r.Clone(r.Context())
	in, err := tr.spec.CheckRequest(r)
	if err != nil && tr.strict {
		tr.t.Errorf("kisispec: request %s %s does not match the spec: %v", r.Method, r.URL, err)
	}
	resp, err := base.RoundTrip(r)
	if err != nil || in == nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := tr.spec.CheckResponse(in, resp.StatusCode, resp.Header, body); err != nil {
		tr.t.Errorf("kisispec: answer %d to %s %s does not match the spec: %v\nbody: %s",
			resp.StatusCode, r.Method, r.URL, err, truncate(body))
	}
	return resp, nil
}

// Handler wraps next so that every request it serves, and the answer, is
// validated; any violation fails t.
func (s *Spec) Handler(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := s.CheckRequest(r)
		if err != nil {
			t.Errorf("kisispec: request %s %s does not match the spec: %v", r.Method, r.URL, err)
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if r.Context().Err() != nil {
			return // the client gave up: there is no answer to check
		}
		if in != nil {
			if err := s.CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
				t.Errorf("kisispec: answer %d to %s %s does not match the spec: %v\nbody: %s",
					rec.Code, r.Method, r.URL, err, truncate(rec.Body.Bytes()))
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

var spaces = regexp.MustCompile(`\s+`)

func truncate(b []byte) string {
	const n = 2000
	s := spaces.ReplaceAllString(string(b), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
