// Package spectest checks HTTP traffic against the published Openpath spec
// (the Swagger 2.0 subset in access/sim/testdata), for the tests of the
// simulator and of the openpath client. It is test support: only _test
// files should import it.
//
// Test support: only tests import it; it imports no cloudkey package.
package spectest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Spec is the Openpath spec, converted to OpenAPI 3 and ready to validate.
type Spec struct {
	router  routers.Router
	options *openapi3filter.Options
}

// dateOrDateTime accepts RFC 3339 dates and date-times. The spec types
// every timestamp (createdAt, expiresAt...) as format "date", but Openpath
// answers full date-times ("2024-05-01T12:00:00.000Z"), as its own clients
// parse them; the strict "date" check would reject every real answer.
var dateOrDateTime = openapi3.NewRegexpFormatValidator(
	`^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2}))?$`)

// Load reads the Swagger 2.0 file at path and converts it.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("spectest: %w", err)
	}
	var v2 openapi2.T
	if err := json.Unmarshal(data, &v2); err != nil {
		return nil, fmt.Errorf("spectest: decode %s: %w", path, err)
	}
	doc, err := openapi2conv.ToV3(&v2)
	if err != nil {
		return nil, fmt.Errorf("spectest: convert %s to OpenAPI 3: %w", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("spectest: %s is not a valid spec: %w", path, err)
	}
	// The spec's server is https://api.openpath.com; match any host instead,
	// so that loopback test servers are routed.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("spectest: route %s: %w", path, err)
	}
	return &Spec{
		router: router,
		options: &openapi3filter.Options{
			MultiError: true,
			// The spec declares the jwt apiKey header; that one is sent is
			// all a validator can check.
			AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
				if in.RequestValidationInput.Request.Header.Get("Authorization") == "" {
					return errors.New("no Authorization header")
				}
				return nil
			},
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				openapi3.WithStringFormatValidators(map[string]openapi3.StringFormatValidator{"date": dateOrDateTime}),
			},
		},
	}, nil
}

// Strict returns a copy of the spec that checks format "date" as the spec
// says (a bare date), to show where Openpath and its published spec differ.
func (s *Spec) Strict() *Spec {
	opts := *s.options
	opts.SchemaValidationOptions = nil
	return &Spec{router: s.router, options: &opts}
}

// Handler wraps next so that every request it serves, and the answer, is
// validated against the spec; a mismatch fails t. Only requests the spec
// describes should go through it: a path the spec lacks is a failure.
// Answers with statuses the spec does not list (it lists no errors at all)
// are not checked.
func (s *Spec) Handler(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("spectest: read request body: %v", err)
			return
		}
		// Validate a copy: validation reads the body and may set defaults.
		vr := r.Clone(r.Context())
		vr.Body = io.NopCloser(bytes.NewReader(body))
		r.Body = io.NopCloser(bytes.NewReader(body))

		in, err := s.CheckRequest(vr)
		if err != nil {
			t.Errorf("spectest: request %s %s does not match the spec: %v", r.Method, r.URL, err)
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if r.Context().Err() != nil {
			return // the client gave up (a hang or delay fault): there is no answer to check
		}
		if in != nil {
			if err := s.CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
				t.Errorf("spectest: answer %d to %s %s does not match the spec: %v\nbody: %s",
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

// CheckRequest validates r (reading its body) and returns what
// CheckResponse needs; the input is nil when the spec has no such
// operation.
func (s *Spec) CheckRequest(r *http.Request) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := s.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("no such operation in the spec: %w", err)
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: s.options}
	return in, openapi3filter.ValidateRequest(r.Context(), in)
}

// CheckResponse validates an answer to the request in.
func (s *Spec) CheckResponse(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                s.options,
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
