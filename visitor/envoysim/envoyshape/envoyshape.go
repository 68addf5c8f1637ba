// Package envoyshape checks Envoy API and webhook traffic against the
// shapes of Envoy's official SDK (envoy/envoy-integrations-sdk-nodejs):
// Envoy publishes no OpenAPI description, so the SDK's TypeScript types
// are the best description there is. Each type here mirrors one of them
// (named in its comment); bodies are decoded strictly (a field the SDK
// does not declare is an error) and the SDK's non-optional fields are
// required, with the JSON type it declares. Error bodies, which the SDK
// does not type, are checked against JSON:API's error object (API) and
// RFC 6749's error response (token endpoint).
//
// Test support: only tests import it (the Envoy simulator's and the
// envoyapi client's); it imports no cloudkey package.
package envoyshape

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// JSONAPIData is util/json-api/JSONAPIData: a resource identifier.
type JSONAPIData struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Relationship is one entry of JSONAPIModel.relationships.
type Relationship struct {
	Data json.RawMessage `json:"data"` // JSONAPIData | Array<JSONAPIData> | null
}

// TokenRequest is the body EnvoyPluginAPI.loginAsPlugin posts to
// /a/auth/v0/token (client_credentials).
type TokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	Scope        string `json:"scope"`
}

// MetaAuth is sdk/EnvoyMeta.ts EnvoyMetaAuth: the token answer.
type MetaAuth struct {
	TokenType             string  `json:"token_type"`
	AccessToken           string  `json:"access_token"`
	ExpiresIn             float64 `json:"expires_in"`
	RefreshToken          *string `json:"refresh_token"`
	RefreshTokenExpiresIn *int    `json:"refresh_token_expires_in"`
}

// InviteCreationAttributes is resources/InviteResource.ts
// InviteCreationAttributes (every field optional).
type InviteCreationAttributes struct {
	Email                 *string            `json:"email,omitempty"`
	ExpectedArrivalTime   *string            `json:"expected-arrival-time,omitempty"`
	ExpectedDepartureTime *string            `json:"expected-departure-time,omitempty"`
	FullName              *string            `json:"full-name,omitempty"`
	PrivateNotes          *string            `json:"private-notes,omitempty"`
	UserData              map[string]*string `json:"user-data,omitempty"`
	NotifyVisitor         *bool              `json:"notify-visitor,omitempty"`
	Attested              *bool              `json:"attested,omitempty"`
	Phone                 *string            `json:"phone,omitempty"`
}

// InviteAttributes is resources/InviteResource.ts InviteAttributes.
type InviteAttributes struct {
	AdditionalGuests      *int               `json:"additional-guests,omitempty"`
	ApprovalStatus        *json.RawMessage   `json:"approval-status,omitempty"`
	Email                 *string            `json:"email,omitempty"`
	ExpectedArrivalTime   *string            `json:"expected-arrival-time,omitempty"`
	ExpectedDepartureTime *string            `json:"expected-departure-time,omitempty"`
	FullName              *string            `json:"full-name,omitempty"`
	GuestUpdatedAt        *string            `json:"guest-updated-at,omitempty"`
	IsPresigned           *bool              `json:"is-presigned,omitempty"`
	PrivateNotes          *string            `json:"private-notes,omitempty"`
	UserData              map[string]*string `json:"user-data,omitempty"`
	NotifyVisitor         *bool              `json:"notify-visitor,omitempty"`
	CreatedFrom           *string            `json:"created-from,omitempty"`
	Arrived               *bool              `json:"arrived,omitempty"`
	Attested              *bool              `json:"attested,omitempty"`
	EntrySignedOutAt      *string            `json:"entry-signed-out-at,omitempty"`
	ReminderSentAt        *string            `json:"reminder-sent-at,omitempty"`
	Phone                 *string            `json:"phone,omitempty"`
	CreatedAt             *string            `json:"created-at,omitempty"`
	UpdatedAt             *string            `json:"updated-at,omitempty"`
}

// LocationAttributes is resources/LocationResource.ts LocationAttributes
// (name and address required; the SDK's other fields optional, the ones
// the simulator sends listed).
type LocationAttributes struct {
	Name                  string  `json:"name"`
	Address               string  `json:"address"`
	City                  *string `json:"city,omitempty"`
	State                 *string `json:"state,omitempty"`
	Zip                   *string `json:"zip,omitempty"`
	Locale                *string `json:"locale,omitempty"`
	Timezone              *string `json:"timezone,omitempty"`
	CompanyNameOverride   *string `json:"company-name-override,omitempty"`
	Disabled              *bool   `json:"disabled,omitempty"`
	PreRegistrationEnable *bool   `json:"pre-registration-enabled,omitempty"`
	HostApprovalEnabled   *bool   `json:"host-approval-enabled,omitempty"`
	CreatedAt             *string `json:"created-at,omitempty"`
	UpdatedAt             *string `json:"updated-at,omitempty"`
}

// FlowAttributes is resources/FlowResource.ts FlowAttributes.
type FlowAttributes struct {
	Name            string  `json:"name"`
	EmployeeCentric *bool   `json:"employee-centric,omitempty"`
	Enabled         *bool   `json:"enabled,omitempty"`
	CreatedAt       *string `json:"created-at,omitempty"`
	UpdatedAt       *string `json:"updated-at,omitempty"`
}

// UserDataItem is one element of an event payload's user-data.
type UserDataItem struct {
	Field string  `json:"field"`
	Value *string `json:"value"`
}

// InvitePayloadAttributes is payloads/InvitePayload.ts attributes.
type InvitePayloadAttributes struct {
	EmployeeScreeningFlow   bool              `json:"employee-screening-flow"`
	FullName                string            `json:"full-name"`
	Email                   *string           `json:"email"`
	InviterName             *string           `json:"inviter-name"`
	InviterEmail            *string           `json:"inviter-email"`
	ExpectedArrivalTime     string            `json:"expected-arrival-time"`
	PrivateNotes            *string           `json:"private-notes"`
	Arrived                 bool              `json:"arrived"`
	BeenHereBefore          bool              `json:"been-here-before"`
	FlowName                string            `json:"flow-name"`
	FlowID                  string            `json:"flow-id"`
	UserData                []UserDataItem    `json:"user-data"`
	NDA                     *string           `json:"nda,omitempty"`
	SecretToken             string            `json:"secret-token"`
	EditToken               string            `json:"edit-token"`
	PhotoURL                *string           `json:"photo-url"`
	QRCode                  *string           `json:"qr-code"`
	QRCodeSentAt            *string           `json:"qr-code-sent-at"`
	PreregistrationComplete bool              `json:"preregistration-complete"`
	ReminderSentAt          *string           `json:"reminder-sent-at"`
	LegalDocs               []json.RawMessage `json:"legal-docs,omitempty"`
	SignedInAt              *string           `json:"signed-in-at,omitempty"`
	SignedOutAt             *string           `json:"signed-out-at,omitempty"`
}

var invitePayloadRequired = []string{
	"employee-screening-flow", "full-name", "email", "inviter-name", "inviter-email", "expected-arrival-time",
	"private-notes", "arrived", "been-here-before", "flow-name", "flow-id", "user-data", "secret-token",
	"edit-token", "photo-url", "qr-code", "qr-code-sent-at", "preregistration-complete", "reminder-sent-at",
}

// Thumbnails is payloads/EntryPayload.ts attributes.thumbnails.
type Thumbnails struct {
	Large    *string `json:"large"`
	Original *string `json:"original"`
	Small    *string `json:"small"`
}

// EntryPayloadAttributes is payloads/EntryPayload.ts attributes.
type EntryPayloadAttributes struct {
	FullName              string            `json:"full-name"`
	PhoneNumber           *string           `json:"phone-number,omitempty"`
	Email                 *string           `json:"email"`
	EmployeeScreeningFlow bool              `json:"employee-screening-flow"`
	Host                  *string           `json:"host"`
	HostEmail             *string           `json:"host-email"`
	PrivateNotes          *string           `json:"private-notes"`
	SignedInAt            string            `json:"signed-in-at"`
	SignedOutAt           *string           `json:"signed-out-at,omitempty"`
	Thumbnails            Thumbnails        `json:"thumbnails"`
	FlowName              string            `json:"flow-name"`
	NDA                   *string           `json:"nda,omitempty"`
	LegalDocs             []json.RawMessage `json:"legal-docs,omitempty"`
	UserData              []UserDataItem    `json:"user-data"`
}

var entryPayloadRequired = []string{
	"full-name", "email", "employee-screening-flow", "host", "host-email", "private-notes",
	"signed-in-at", "thumbnails", "flow-name", "user-data",
}

// MetaJob is sdk/EnvoyMeta.ts EnvoyMetaJob.
type MetaJob struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Identifier string `json:"identifier"`
}

// MetaLocationAttributes is EnvoyMetaLocation.attributes.
type MetaLocationAttributes struct {
	Name                string   `json:"name"`
	CompanyNameOverride *string  `json:"company-name-override"`
	Timezone            string   `json:"timezone"`
	Locale              *string  `json:"locale"`
	Address             string   `json:"address"`
	AddressLineOne      *string  `json:"address-line-one"`
	AddressLineTwo      *string  `json:"address-line-two"`
	City                *string  `json:"city"`
	State               *string  `json:"state"`
	Country             *string  `json:"country"`
	Zip                 *string  `json:"zip"`
	Longitude           *float64 `json:"longitude"`
	Latitude            *float64 `json:"latitude"`
	CreatedAt           string   `json:"created-at"`
}

// MetaCompanyAttributes is EnvoyMetaCompany.attributes.
type MetaCompanyAttributes struct {
	Name      string `json:"name"`
	Active    bool   `json:"active"`
	CreatedAt string `json:"created-at"`
}

var (
	metaRequired            = []string{"event", "plugin_id", "install_id", "config", "job", "location", "company", "auth"}
	metaLocationRequired    = []string{"name", "company-name-override", "timezone", "locale", "address", "address-line-one", "address-line-two", "city", "state", "country", "zip", "longitude", "latitude", "created-at"}
	metaCompanyRequired     = []string{"name", "active", "created-at"}
	metaAuthRequired        = []string{"token_type", "access_token", "expires_in", "refresh_token", "refresh_token_expires_in"}
	resourceRequired        = []string{"id", "type", "attributes"}
	creationRequired        = []string{"type", "attributes"}
	jsonAPIErrorStatusMatch = regexp.MustCompile(`^[1-5][0-9]{2}$`)
)

// object decodes raw, a JSON object, strictly into v after checking that
// every required key is present.
func object(raw json.RawMessage, v any, where string, required ...string) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil || keys == nil {
		return fmt.Errorf("%s: not a JSON object", where)
	}
	for _, k := range required {
		if _, ok := keys[k]; !ok {
			return fmt.Errorf("%s: required field %q missing", where, k)
		}
	}
	if v == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return nil
}

// resource checks a JSON:API resource object of type typ whose attributes
// decode into attrs with the required keys.
func resource(raw json.RawMessage, where, typ string, idRequired bool, attrs any, attrsRequired ...string) error {
	var r struct {
		ID            *string                 `json:"id"`
		Type          string                  `json:"type"`
		Attributes    json.RawMessage         `json:"attributes"`
		Relationships map[string]Relationship `json:"relationships"`
	}
	required := creationRequired
	if idRequired {
		required = resourceRequired
	}
	if err := object(raw, &r, where, required...); err != nil {
		return err
	}
	if !idRequired && r.ID != nil {
		return fmt.Errorf("%s: a resource to create has no id", where)
	}
	if idRequired && (r.ID == nil || *r.ID == "") {
		return fmt.Errorf("%s: id is empty", where)
	}
	if r.Type != typ {
		return fmt.Errorf("%s: type %q, want %q", where, r.Type, typ)
	}
	for name, rel := range r.Relationships {
		if err := relationship(rel.Data, where+".relationships."+name); err != nil {
			return err
		}
	}
	return object(r.Attributes, attrs, where+".attributes", attrsRequired...)
}

// relationship checks relationship data: null, an identifier or an array
// of them.
func relationship(data json.RawMessage, where string) error {
	d := bytes.TrimSpace(data)
	switch {
	case len(d) == 0:
		return fmt.Errorf("%s: data missing", where)
	case bytes.Equal(d, []byte("null")):
		return nil
	case d[0] == '[':
		var ids []json.RawMessage
		if err := json.Unmarshal(d, &ids); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		for _, id := range ids {
			if err := identifier(id, where); err != nil {
				return err
			}
		}
		return nil
	}
	return identifier(d, where)
}

func identifier(raw json.RawMessage, where string) error {
	var id JSONAPIData
	if err := object(raw, &id, where+".data", "id", "type"); err != nil {
		return err
	}
	if id.ID == "" || id.Type == "" {
		return fmt.Errorf("%s.data: empty id or type", where)
	}
	return nil
}

// document returns the "data" member of a JSON:API document, strictly.
func document(body []byte, where string) (json.RawMessage, error) {
	var doc struct {
		Data     json.RawMessage   `json:"data"`
		Included []json.RawMessage `json:"included,omitempty"`
		Meta     json.RawMessage   `json:"meta,omitempty"`
		Links    json.RawMessage   `json:"links,omitempty"`
	}
	if err := object(body, &doc, where, "data"); err != nil {
		return nil, err
	}
	return doc.Data, nil
}

// CheckTokenRequest validates a token request body: JSON as the SDK sends
// it, or the form encoding of RFC 6749.
func CheckTokenRequest(contentType string, body []byte) error {
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		return nil // the form has no JSON shape; the simulator checks its fields
	}
	var r TokenRequest
	return object(body, &r, "token request", "grant_type")
}

// CheckTokenResponse validates the token endpoint's 200 answer.
func CheckTokenResponse(body []byte) error {
	var a MetaAuth
	if err := object(body, &a, "token answer", metaAuthRequired...); err != nil {
		return err
	}
	if a.TokenType != "Bearer" || a.AccessToken == "" || a.ExpiresIn <= 0 {
		return fmt.Errorf("token answer: token_type %q, empty token or expires_in %v", a.TokenType, a.ExpiresIn)
	}
	return nil
}

// CheckInviteCreation validates the body of POST /api/v3/invites
// (EnvoyUserAPI.createInvite: {data: InviteCreationModel}).
func CheckInviteCreation(body []byte) error {
	data, err := document(body, "invite creation")
	if err != nil {
		return err
	}
	return resource(data, "invite creation data", "invites", false, &InviteCreationAttributes{})
}

// CheckInvite validates an answer {data: InviteModel}.
func CheckInvite(body []byte) error {
	data, err := document(body, "invite")
	if err != nil {
		return err
	}
	return resource(data, "invite data", "invites", true, &InviteAttributes{})
}

// CheckLocations validates GET /api/v3/locations: {data: LocationModel[]}.
func CheckLocations(body []byte) error {
	return list(body, "locations", &LocationAttributes{}, "name", "address")
}

// CheckFlows validates GET /api/v3/flows: {data: FlowModel[]}.
func CheckFlows(body []byte) error {
	return list(body, "flows", &FlowAttributes{}, "name")
}

func list(body []byte, typ string, attrs any, required ...string) error {
	data, err := document(body, typ)
	if err != nil {
		return err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil || items == nil {
		return fmt.Errorf("%s: data is not an array", typ)
	}
	for i, it := range items {
		if err := resource(it, fmt.Sprintf("%s data[%d]", typ, i), typ, true, attrs, required...); err != nil {
			return err
		}
	}
	return nil
}

// CheckAPIError validates a JSON:API error document {errors: [{status,
// title, detail}]}.
func CheckAPIError(status int, body []byte) error {
	var doc struct {
		Errors []struct {
			Status string `json:"status"`
			Title  string `json:"title"`
			Detail string `json:"detail,omitempty"`
			Code   string `json:"code,omitempty"`
		} `json:"errors"`
	}
	if err := object(body, &doc, "error document", "errors"); err != nil {
		return err
	}
	if len(doc.Errors) == 0 {
		return errors.New("error document: no error")
	}
	for _, e := range doc.Errors {
		if !jsonAPIErrorStatusMatch.MatchString(e.Status) || e.Status != fmt.Sprint(status) || e.Title == "" {
			return fmt.Errorf("error document: status %q (HTTP %d), title %q", e.Status, status, e.Title)
		}
	}
	return nil
}

// CheckOAuthError validates a token endpoint error (RFC 6749 §5.2).
func CheckOAuthError(body []byte) error {
	var e struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description,omitempty"`
	}
	if err := object(body, &e, "token error", "error"); err != nil {
		return err
	}
	switch e.Error {
	case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope":
		return nil
	}
	return fmt.Errorf("token error: %q is not an RFC 6749 error code", e.Error)
}

// CheckWebhook validates an event body Envoy POSTs: {meta:
// EnvoyEventMeta, payload: InvitePayload | EntryPayload}, the payload
// chosen by meta.event.
func CheckWebhook(body []byte) error {
	var b struct {
		Meta    json.RawMessage `json:"meta"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := object(body, &b, "event", "meta", "payload"); err != nil {
		return err
	}
	var meta struct {
		Event     string          `json:"event"`
		PluginID  string          `json:"plugin_id"`
		InstallID string          `json:"install_id"`
		Config    map[string]any  `json:"config"`
		Job       MetaJob         `json:"job"`
		Location  json.RawMessage `json:"location"`
		Company   json.RawMessage `json:"company"`
		Auth      json.RawMessage `json:"auth"`
	}
	if err := object(b.Meta, &meta, "event meta", metaRequired...); err != nil {
		return err
	}
	if err := object(mustField(b.Meta, "job"), nil, "event meta.job", "id", "name", "identifier"); err != nil {
		return err
	}
	if err := resource(meta.Location, "event meta.location", "locations", true, &MetaLocationAttributes{}, metaLocationRequired...); err != nil {
		return err
	}
	if err := resource(meta.Company, "event meta.company", "companies", true, &MetaCompanyAttributes{}, metaCompanyRequired...); err != nil {
		return err
	}
	if a := bytes.TrimSpace(meta.Auth); !bytes.Equal(a, []byte("null")) {
		if err := object(a, &MetaAuth{}, "event meta.auth", metaAuthRequired...); err != nil {
			return err
		}
	}
	switch {
	case strings.HasPrefix(meta.Event, "invite_"), meta.Event == "upcoming_visit", meta.Event == "qr_code_sent":
		return resource(b.Payload, "event payload", "invites", true, &InvitePayloadAttributes{}, invitePayloadRequired...)
	case strings.HasPrefix(meta.Event, "entry_"):
		return resource(b.Payload, "event payload", "entries", true, &EntryPayloadAttributes{}, entryPayloadRequired...)
	}
	return fmt.Errorf("event meta.event %q is not an invite or entry event", meta.Event)
}

func mustField(obj json.RawMessage, key string) json.RawMessage {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(obj, &m)
	return m[key]
}

// Transport wraps base (nil: http.DefaultTransport) so that every request
// to Envoy's API sent through it, and its answer, is checked against the
// SDK's shapes; any violation fails t.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		var body []byte
		if r.Body != nil {
			var err error
			if body, err = io.ReadAll(r.Body); err != nil {
				return nil, err
			}
			_ = r.Body.Close()
			r = r.Clone(r.Context())
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		route := r.Method + " " + r.URL.Path
		if err := checkRequest(r, body); err != nil {
			t.Errorf("envoyshape: request %s: %v", route, err)
		}
		resp, err := base.RoundTrip(r)
		if err != nil {
			return resp, err
		}
		answer, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(answer))
		if err := CheckResponse(r.Method, r.URL.Path, resp.StatusCode, answer); err != nil {
			t.Errorf("envoyshape: answer %d to %s: %v\nbody: %.2000s", resp.StatusCode, route, err, answer)
		}
		return resp, nil
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func checkRequest(r *http.Request, body []byte) error {
	switch {
	case r.URL.Path == "/a/auth/v0/token":
		return CheckTokenRequest(r.Header.Get("Content-Type"), body)
	case !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "):
		return errors.New("no Bearer token")
	case r.Method == http.MethodPost && r.URL.Path == "/api/v3/invites":
		return CheckInviteCreation(body)
	}
	return nil
}

// CheckResponse validates an answer to method path.
func CheckResponse(method, path string, status int, body []byte) error {
	if path == "/a/auth/v0/token" {
		switch {
		case status == http.StatusOK:
			return CheckTokenResponse(body)
		case status == http.StatusTooManyRequests || status >= 500:
			return CheckAPIError(status, body) // the gateway's, not OAuth's
		}
		return CheckOAuthError(body)
	}
	if status >= 400 {
		return CheckAPIError(status, body)
	}
	switch {
	case method == http.MethodDelete && status == http.StatusNoContent:
		if len(body) != 0 {
			return errors.New("204 with a body")
		}
		return nil
	case strings.HasPrefix(path, "/api/v3/invites"):
		return CheckInvite(body)
	case path == "/api/v3/locations":
		return CheckLocations(body)
	case path == "/api/v3/flows":
		return CheckFlows(body)
	}
	return fmt.Errorf("no shape for %s %s", method, path)
}
