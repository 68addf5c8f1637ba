// Package twiliospec checks HTTP traffic against Twilio's own description
// of the Messages API: the OpenAPI subset of twilio/twilio-oai embedded in
// this package (twilio-messages-subset.openapi.json, a copy of
// ../shared/twilio-messages-subset.openapi.json), for the tests of the
// Twilio simulator (internal/notify/twiliosim) and of the sender (internal/notify/twilio).
//
// The document declares only the 201 and 200 answers and no error schema,
// so error answers are checked against Twilio's error shape as its Go
// library decodes it ({code, message, more_info, status}, SMS_NOTES.md),
// with strict decoding. Twilio's conditional rules (one of From and
// MessagingServiceSid, one of Body, MediaUrl and ContentSid) are
// extensions kin-openapi ignores; CheckRequest enforces them too.
//
// Test support: only tests import it; it imports no cloudkey package.
package twiliospec

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

//go:embed twilio-messages-subset.openapi.json
var document []byte

// Spec is the Twilio Messages API description, ready to validate requests
// and answers.
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
// embedded document is not a valid OpenAPI document.
func Load(t testing.TB) *Spec {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = New() })
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

var defineFormats sync.Once

// New parses, validates (formats included) and routes the embedded
// document.
func New() (*Spec, error) {
	defineFormats.Do(func() {
		// SMS_NOTES.md: phone-number stays permissive (Twilio's own
		// examples and whatsapp:/alphanumeric senders are not E.164).
		openapi3.DefineStringFormatValidator("phone-number", openapi3.NewCallbackValidator(func(s string) error {
			if s == "" {
				return errors.New("empty phone number")
			}
			return nil
		}))
		openapi3.DefineStringFormatValidator("date-time-rfc-2822", openapi3.NewCallbackValidator(func(s string) error {
			_, err := time.Parse(time.RFC1123Z, s)
			return err
		}))
		openapi3.DefineStringFormatValidator("currency", openapi3.NewRegexpFormatValidator(`^[A-Za-z]{3}$`))
	})
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("twiliospec: load the embedded subset: %w", err)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableSchemaFormatValidation()); err != nil {
		return nil, fmt.Errorf("twiliospec: the embedded subset is not a valid spec: %w", err)
	}
	// The servers (top-level and per path) are https://api.twilio.com;
	// match any host instead, so that loopback test servers are routed.
	doc.Servers = nil
	for _, item := range doc.Paths.Map() {
		item.Servers = nil
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("twiliospec: route the subset: %w", err)
	}
	return &Spec{
		router: router,
		options: &openapi3filter.Options{
			MultiError:         true,
			AuthenticationFunc: authenticate,
		},
	}, nil
}

// authenticate accepts a request with HTTP Basic credentials whose user
// is an account SID (AC…) or an API key SID (SK…) and whose password is
// not empty.
func authenticate(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "accountSid_authToken" {
		return fmt.Errorf("scheme %s is not checked", in.SecuritySchemeName)
	}
	user, pass, ok := in.RequestValidationInput.Request.BasicAuth()
	if !ok || pass == "" || !(strings.HasPrefix(user, "AC") || strings.HasPrefix(user, "SK")) {
		return errors.New("no HTTP Basic AccountSid:AuthToken credentials")
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
	if err := openapi3filter.ValidateRequest(vr.Context(), in); err != nil {
		return in, err
	}
	if route.Operation.OperationID == "CreateMessage" {
		return in, checkConditional(body)
	}
	return in, nil
}

// checkConditional enforces the operation's x-twilio.conditional rules,
// which kin-openapi does not read.
func checkConditional(body []byte) error {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return fmt.Errorf("form body: %w", err)
	}
	has := func(k string) bool { return form.Get(k) != "" }
	if !has("From") && !has("MessagingServiceSid") {
		return errors.New("x-twilio.conditional: one of From and MessagingServiceSid is required")
	}
	if !has("Body") && !has("MediaUrl") && !has("ContentSid") {
		return errors.New("x-twilio.conditional: one of Body, MediaUrl and ContentSid is required")
	}
	return nil
}

// ErrorBody is Twilio's error answer (twilio-go's TwilioRestError).
type ErrorBody struct {
	Code     int            `json:"code"`
	Message  string         `json:"message"`
	MoreInfo string         `json:"more_info"`
	Status   int            `json:"status"`
	Details  map[string]any `json:"details,omitempty"`
}

var moreInfo = regexp.MustCompile(`^https://www\.twilio\.com/docs/errors/[0-9]+$`)

// CheckError validates an error answer: JSON with exactly Twilio's fields,
// a code, a message, more_info pointing at the code's page and status
// equal to the HTTP status.
func CheckError(status int, header http.Header, body []byte) error {
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("error answer Content-Type %q, want application/json", ct)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var e ErrorBody
	if err := dec.Decode(&e); err != nil {
		return fmt.Errorf("error answer is not Twilio's error shape: %w", err)
	}
	switch {
	case e.Code <= 0:
		return errors.New("error answer without a code")
	case e.Message == "":
		return errors.New("error answer without a message")
	case !moreInfo.MatchString(e.MoreInfo) || !strings.HasSuffix(e.MoreInfo, fmt.Sprint(e.Code)):
		return fmt.Errorf("error answer more_info %q does not point at code %d", e.MoreInfo, e.Code)
	case e.Status != status:
		return fmt.Errorf("error answer status %d, HTTP status %d", e.Status, status)
	}
	return nil
}

// CheckResponse validates an answer to the request in: a success against
// the spec, an error (4xx, 5xx) against Twilio's error shape.
func (s *Spec) CheckResponse(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	if status >= 400 {
		return CheckError(status, header, body)
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	})
}

// Transport wraps base (nil: http.DefaultTransport) so that every request
// sent through it, and its answer, is validated; any violation fails t.
// A request the spec does not describe is a failure too.
func (s *Spec) Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	return &transport{spec: s, t: t, base: base, strict: true}
}

// ResponseTransport is Transport for tests that send malformed requests on
// purpose (no credentials, no To): request violations are ignored,
// answers are still validated.
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
	// RoundTrip must not change r; the body it validates is a copy.
	r = r.Clone(r.Context())
	in, err := tr.spec.CheckRequest(r)
	if err != nil && tr.strict {
		tr.t.Errorf("twiliospec: request %s %s does not match the spec: %v", r.Method, r.URL.Path, err)
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
		tr.t.Errorf("twiliospec: answer %d to %s %s does not match the spec: %v\nbody: %s",
			resp.StatusCode, r.Method, r.URL.Path, err, truncate(body))
	}
	return resp, nil
}

// Handler wraps next so that every request it serves, and the answer, is
// validated; any violation fails t.
func (s *Spec) Handler(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in, err := s.CheckRequest(r)
		if err != nil {
			t.Errorf("twiliospec: request %s %s does not match the spec: %v", r.Method, r.URL.Path, err)
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if r.Context().Err() != nil {
			return // the client gave up: there is no answer to check
		}
		if in != nil {
			if err := s.CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
				t.Errorf("twiliospec: answer %d to %s %s does not match the spec: %v\nbody: %s",
					rec.Code, r.Method, r.URL.Path, err, truncate(rec.Body.Bytes()))
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
