// Package buildiumspec checks HTTP traffic against Buildium's own API
// description (the OpenAPI 3.0 subset embedded beside this file, cut from
// LeadSimple/buildium's swagger.json; PMS_APIS.md §6), for the tests of
// the Buildium simulator and of the buildium client.
//
// Test support: only tests import it; it imports no cloudkey package.
package buildiumspec

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Document is the embedded subset, as published.
//
//go:embed buildium-subset.openapi.json
var Document []byte

// Spec is the Buildium API description, ready to validate requests and
// answers.
type Spec struct {
	router  routers.Router
	options *openapi3filter.Options
}

var (
	loadOnce sync.Once
	loaded   *Spec
	loadErr  error
)

// Load returns the spec, parsed once per test binary; it fails t when the
// document is not a valid OpenAPI document.
func Load(t testing.TB) *Spec {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = Parse(Document) })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

// Parse reads, validates and routes an OpenAPI document.
func Parse(doc []byte) (*Spec, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	d, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("buildiumspec: load: %w", err)
	}
	if err := d.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("buildiumspec: not a valid spec: %w", err)
	}
	// The spec's server is https://api.buildium.com; match any host
	// instead, so that loopback test servers are routed.
	d.Servers = nil
	router, err := gorillamux.NewRouter(d)
	if err != nil {
		return nil, fmt.Errorf("buildiumspec: route: %w", err)
	}
	return &Spec{
		router: router,
		options: &openapi3filter.Options{
			MultiError:         true,
			AuthenticationFunc: authenticate,
		},
	}, nil
}

// authenticate accepts a request carrying the scheme's header. The spec
// lists the client id and the secret as alternatives; the simulator
// checks that both are there, as Buildium's guide says.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.RequestValidationInput.Request.Header.Get(in.SecurityScheme.Name) == "" {
		return errors.New("no " + in.SecurityScheme.Name + " header")
	}
	return nil
}

// CheckRequest validates r and returns what CheckResponse needs. The
// input is nil when the spec has no such operation; it is set, with the
// error, when the request breaks the spec.
func (s *Spec) CheckRequest(r *http.Request) (*openapi3filter.RequestValidationInput, error) {
	vr := r.Clone(r.Context())
	vr.Body = http.NoBody
	route, params, err := s.router.FindRoute(vr)
	if err != nil {
		return nil, fmt.Errorf("no such operation in the spec: %w", err)
	}
	in := &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: s.options}
	return in, openapi3filter.ValidateRequest(vr.Context(), in)
}

// CheckResponse validates an answer to the request in. A status the
// operation does not list (429, an injected 5xx) is accepted.
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
func (s *Spec) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	return &transport{spec: s, t: t, base: base, strict: true}
}

// ResponseTransport is Transport for tests that send requests breaking
// the spec on purpose (no credentials): only answers are validated.
func (s *Spec) ResponseTransport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	return &transport{spec: s, t: t, base: base}
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
	in, err := tr.spec.CheckRequest(r)
	if err != nil && tr.strict {
		tr.t.Errorf("buildiumspec: request %s %s does not match the spec: %v", r.Method, r.URL, err)
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
		tr.t.Errorf("buildiumspec: answer %d to %s %s does not match the spec: %v\nbody: %s",
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
			t.Errorf("buildiumspec: request %s %s does not match the spec: %v", r.Method, r.URL, err)
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if r.Context().Err() != nil {
			return
		}
		if in != nil {
			if err := s.CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
				t.Errorf("buildiumspec: answer %d to %s %s does not match the spec: %v\nbody: %s",
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
