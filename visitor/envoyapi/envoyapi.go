// Package envoyapi is a client of Envoy's REST API (https://app.envoy.com)
// for what cloudkey does there: register a visitor as an invite (POST
// /api/v3/invites, with a correlation tag in its user-data), cancel it
// (DELETE /api/v3/invites/{id}), and list the locations and flows a
// manager picks from. It authenticates with OAuth2 client credentials
// (POST /a/auth/v0/token, as Envoy's SDK EnvoyPluginAPI.loginAsPlugin
// does), keeps the token until shortly before it expires, and on a 401
// fetches a new one and tries once more.
//
// Envoy publishes no OpenAPI description: the paths and JSON:API shapes
// are those of Envoy's official SDK (envoy/envoy-integrations-sdk-nodejs,
// ACCESS_APIS.md §2), and the tests check this client's traffic against
// Go mirrors of the SDK's types (visitor/envoysim/envoyshape). Which
// scopes a client-credentials token needs to create invites is [NOT
// CONFIRMED]: Config.Scope sets them.
//
// Errors say what a manager can do: ErrUnauthorized (the client id or
// secret is wrong), ErrNotFound, and *APIError with Envoy's own words.
// The client secret and the tokens are never logged nor part of an error.
//
// It imports only the standard library: the webhook side (events and
// their signature) is visitor/envoy.
package envoyapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultBaseURL is Envoy's API.
const DefaultBaseURL = "https://app.envoy.com"

// DefaultScope is the scope asked for with client credentials: the SDK's
// plugin scope and those of the calls made here.
const DefaultScope = "plugin,token.refresh,invites.read,invites.write,locations.read,flows.read"

// TagField is the user-data field cloudkey puts its correlation tag in.
const TagField = "cloudkey-ref"

// Config configures a Client.
type Config struct {
	// BaseURL is Envoy's API; empty means DefaultBaseURL.
	BaseURL string
	// ClientID and ClientSecret are the OAuth client's credentials. The
	// secret is never logged.
	ClientID, ClientSecret string
	// Scope is asked for with each token; empty means DefaultScope.
	Scope string
	// HTTPClient sends the requests; nil means one with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives token refreshes and failures; nil discards them.
	Logger *slog.Logger
}

// String describes c without its secret.
func (c Config) String() string {
	return fmt.Sprintf("envoy client %s at %s", c.ClientID, c.baseURL())
}

// LogValue implements slog.LogValuer, without the secret.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Config) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

// Client talks to Envoy for one OAuth client. It is safe for concurrent
// use.
type Client struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger

	mu      sync.Mutex
	token   string
	expires time.Time

	last outcome // for State
}

// New validates cfg and returns a Client. It does not connect.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("envoyapi: the OAuth client id and secret are required (Envoy dashboard, Integrations)")
	}
	if u, err := url.Parse(cfg.baseURL()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("envoyapi: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Scope == "" {
		cfg.Scope = DefaultScope
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, log: cfg.Logger}
	if c.http == nil {
		c.http = &http.Client{Timeout: 10 * time.Second}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Errors, matched with errors.Is.
var (
	// ErrUnauthorized: Envoy refused the client id and secret.
	ErrUnauthorized = errors.New("envoyapi: Envoy refused the OAuth client id and secret: check them in the Envoy connection settings")
	// ErrNotFound: the invite (or other resource) does not exist, or no
	// longer does.
	ErrNotFound = errors.New("envoyapi: not found in Envoy")
)

// APIError is an error answer from Envoy.
type APIError struct {
	HTTPStatus int
	// Detail is Envoy's explanation (its JSON:API errors' titles and
	// details), or the start of the body when it had none.
	Detail string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("envoyapi: Envoy answered HTTP %d", e.HTTPStatus)
	switch {
	case e.HTTPStatus == http.StatusUnprocessableEntity || e.HTTPStatus == http.StatusBadRequest:
		msg += " (the invite was refused; check the location and visitor type settings)"
	case e.HTTPStatus == http.StatusForbidden:
		msg += " (the OAuth client lacks a scope for this; check the Envoy integration's permissions)"
	case e.HTTPStatus == http.StatusTooManyRequests || e.HTTPStatus >= 500:
		msg += " (Envoy is unavailable or busy; try again)"
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Temporary reports whether trying again later may succeed.
func (e *APIError) Temporary() bool {
	return e.HTTPStatus == http.StatusTooManyRequests || e.HTTPStatus >= 500
}

// Token state, for the settings' connection state.

// Check fetches a token now (not from the cache) and reports whether
// Envoy accepts the credentials: nil, ErrUnauthorized, or a transport or
// API error.
func (c *Client) Check(ctx context.Context) error {
	c.mu.Lock()
	c.token = ""
	c.mu.Unlock()
	_, err := c.accessToken(ctx)
	c.last.observe(err)
	return err
}

// TokenValid reports whether a token is cached and not expired.
func (c *Client) TokenValid() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token != "" && time.Now().Before(c.expires)
}

// tokenMargin is how long before its expiry a token is renewed, so that
// it does not expire in flight.
const tokenMargin = 30 * time.Second

// accessToken returns the cached token or fetches one.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.expires) {
		return c.token, nil
	}
	tok, ttl, err := c.fetchToken(ctx)
	if err != nil {
		return "", err
	}
	c.token = tok
	c.expires = time.Now().Add(max(ttl-tokenMargin, ttl/2))
	c.log.DebugContext(ctx, "envoyapi: new access token", "expires_in", ttl)
	return tok, nil
}

// invalidate forgets tok if it is still the cached token.
func (c *Client) invalidate(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

func (c *Client) fetchToken(ctx context.Context) (string, time.Duration, error) {
	body, _ := json.Marshal(map[string]string{
		"grant_type": "client_credentials", "client_id": c.cfg.ClientID,
		"client_secret": c.cfg.ClientSecret, "scope": c.cfg.Scope,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.baseURL()+"/a/auth/v0/token", bytes.NewReader(body))
	if err != nil {
		return "", 0, fmt.Errorf("envoyapi: build token request: %w", err)
	}
	req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("envoyapi: get a token: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("envoyapi: read the token answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", 0, ErrUnauthorized
	case resp.StatusCode == http.StatusBadRequest:
		var oe struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &oe) == nil && (oe.Error == "invalid_client" || oe.Error == "unauthorized_client") {
			return "", 0, ErrUnauthorized
		}
		return "", 0, apiError(resp.StatusCode, raw)
	case resp.StatusCode != http.StatusOK:
		return "", 0, apiError(resp.StatusCode, raw)
	}
	var auth struct {
		TokenType   string  `json:"token_type"`
		AccessToken string  `json:"access_token"`
		ExpiresIn   float64 `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &auth); err != nil || auth.AccessToken == "" || !strings.EqualFold(auth.TokenType, "Bearer") {
		return "", 0, errors.New("envoyapi: the token answer has no bearer token")
	}
	ttl := time.Duration(auth.ExpiresIn * float64(time.Second))
	if ttl <= 0 {
		ttl = time.Minute // no lifetime given: renew soon rather than never
	}
	return auth.AccessToken, ttl, nil
}

// apiError reads a JSON:API error document, or keeps the body's start.
func apiError(status int, raw []byte) *APIError {
	var doc struct {
		Errors []struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
		} `json:"errors"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	var parts []string
	if json.Unmarshal(raw, &doc) == nil {
		for _, e := range doc.Errors {
			switch {
			case e.Detail != "":
				parts = append(parts, e.Detail)
			case e.Title != "":
				parts = append(parts, e.Title)
			}
		}
		if doc.Error != "" {
			parts = append(parts, strings.TrimSpace(doc.Error+" "+doc.ErrorDescription))
		}
	}
	detail := strings.Join(parts, "; ")
	if detail == "" {
		detail = strings.Join(strings.Fields(string(raw)), " ")
		if len(detail) > 200 {
			detail = detail[:200] + "…"
		}
	}
	return &APIError{HTTPStatus: status, Detail: detail}
}

// call sends one API request with the cached token; on 401 it fetches a
// new token and sends it once more. It decodes a 2xx answer into out (nil:
// no body expected).
func (c *Client) call(ctx context.Context, method, path string, body any, out any) (err error) {
	defer func() { c.last.observe(err) }()
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("envoyapi: encode %s %s: %w", method, path, err)
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return err
		}
		status, raw, err := c.send(ctx, method, path, tok, payload)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			c.log.InfoContext(ctx, "envoyapi: token refused, fetching a new one", "method", method, "path", path)
			c.invalidate(tok)
			continue
		}
		switch {
		case status == http.StatusUnauthorized:
			return fmt.Errorf("%w (a fresh token was refused too)", ErrUnauthorized)
		case status == http.StatusNotFound:
			return fmt.Errorf("%w: %s %s", ErrNotFound, method, path)
		case status/100 != 2:
			return apiError(status, raw)
		}
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("envoyapi: decode the answer to %s %s: %w", method, path, err)
		}
		return nil
	}
}

func (c *Client) send(ctx context.Context, method, path, tok string, payload []byte) (int, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.baseURL()+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("envoyapi: build %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/vnd.api+json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("envoyapi: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("envoyapi: read the answer to %s %s: %w", method, path, err)
	}
	return resp.StatusCode, raw, nil
}

// NewInvite is a visitor to register.
type NewInvite struct {
	LocationID string
	// FlowID is the visitor type; "" lets Envoy use the location's
	// default.
	FlowID          string
	FullName        string
	Email, Phone    string
	ExpectedArrival time.Time
	// ExpectedDeparture is optional.
	ExpectedDeparture time.Time
	PrivateNotes      string
	// UserData holds custom fields; cloudkey's correlation tag goes under
	// TagField (see Tag).
	UserData map[string]string
	// NotifyVisitor, when false, asks Envoy not to email the visitor
	// (cloudkey sends the guest link itself); nil leaves Envoy's default.
	NotifyVisitor *bool
}

// Invite is an invite as Envoy answers it.
type Invite struct {
	ID                 string
	LocationID, FlowID string
	FullName, Email    string
	Phone              string
	ExpectedArrival    time.Time
	UserData           map[string]string
	Arrived            bool
}

// Tag is the invite's correlation tag, "" when it has none.
func (i Invite) Tag() string { return i.UserData[TagField] }

type jsonapiIdent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

type jsonapiRel struct {
	Data *jsonapiIdent `json:"data"`
}

type inviteCreation struct {
	Data struct {
		Type       string `json:"type"`
		Attributes struct {
			Email                 string             `json:"email,omitempty"`
			ExpectedArrivalTime   string             `json:"expected-arrival-time"`
			ExpectedDepartureTime string             `json:"expected-departure-time,omitempty"`
			FullName              string             `json:"full-name"`
			PrivateNotes          string             `json:"private-notes,omitempty"`
			UserData              map[string]*string `json:"user-data,omitempty"`
			NotifyVisitor         *bool              `json:"notify-visitor,omitempty"`
			Phone                 string             `json:"phone,omitempty"`
		} `json:"attributes"`
		Relationships map[string]jsonapiRel `json:"relationships"`
	} `json:"data"`
}

type inviteDoc struct {
	Data struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Attributes struct {
			Email               *string            `json:"email"`
			ExpectedArrivalTime *string            `json:"expected-arrival-time"`
			FullName            *string            `json:"full-name"`
			UserData            map[string]*string `json:"user-data"`
			Arrived             *bool              `json:"arrived"`
			Phone               *string            `json:"phone"`
		} `json:"attributes"`
		Relationships map[string]jsonapiRel `json:"relationships"`
	} `json:"data"`
}

func (d inviteDoc) invite() Invite {
	a := d.Data.Attributes
	inv := Invite{ID: d.Data.ID, UserData: map[string]string{}}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	inv.FullName, inv.Email, inv.Phone = str(a.FullName), str(a.Email), str(a.Phone)
	if t, err := time.Parse(time.RFC3339, str(a.ExpectedArrivalTime)); err == nil {
		inv.ExpectedArrival = t
	}
	for k, v := range a.UserData {
		inv.UserData[k] = str(v)
	}
	inv.Arrived = a.Arrived != nil && *a.Arrived
	if r := d.Data.Relationships["location"].Data; r != nil {
		inv.LocationID = r.ID
	}
	if r := d.Data.Relationships["flow"].Data; r != nil {
		inv.FlowID = r.ID
	}
	return inv
}

// CreateInvite registers a visitor at a location. Envoy then sends
// invite_created to the webhook, possibly before this returns: put a
// correlation tag in UserData[TagField] and keep the contact details
// under it first.
func (c *Client) CreateInvite(ctx context.Context, in NewInvite) (Invite, error) {
	switch {
	case in.LocationID == "":
		return Invite{}, errors.New("envoyapi: an invite needs the Envoy location id")
	case strings.TrimSpace(in.FullName) == "":
		return Invite{}, errors.New("envoyapi: an invite needs the visitor's full name")
	case in.ExpectedArrival.IsZero():
		return Invite{}, errors.New("envoyapi: an invite needs the expected arrival time")
	case !in.ExpectedDeparture.IsZero() && !in.ExpectedDeparture.After(in.ExpectedArrival):
		return Invite{}, errors.New("envoyapi: the expected departure must be after the arrival")
	}
	var body inviteCreation
	body.Data.Type = "invites"
	a := &body.Data.Attributes
	a.Email, a.FullName, a.Phone, a.PrivateNotes = in.Email, strings.TrimSpace(in.FullName), in.Phone, in.PrivateNotes
	a.ExpectedArrivalTime = in.ExpectedArrival.UTC().Format(time.RFC3339)
	if !in.ExpectedDeparture.IsZero() {
		a.ExpectedDepartureTime = in.ExpectedDeparture.UTC().Format(time.RFC3339)
	}
	a.NotifyVisitor = in.NotifyVisitor
	if len(in.UserData) > 0 {
		a.UserData = map[string]*string{}
		keys := make([]string, 0, len(in.UserData))
		for k := range in.UserData {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := in.UserData[k]
			a.UserData[k] = &v
		}
	}
	body.Data.Relationships = map[string]jsonapiRel{"location": {Data: &jsonapiIdent{ID: in.LocationID, Type: "locations"}}}
	if in.FlowID != "" {
		body.Data.Relationships["flow"] = jsonapiRel{Data: &jsonapiIdent{ID: in.FlowID, Type: "flows"}}
	}
	var doc inviteDoc
	if err := c.call(ctx, http.MethodPost, "/api/v3/invites", body, &doc); err != nil {
		return Invite{}, fmt.Errorf("create the Envoy invite: %w", err)
	}
	if doc.Data.ID == "" {
		return Invite{}, errors.New("envoyapi: create the Envoy invite: the answer has no invite id")
	}
	return doc.invite(), nil
}

// GetInvite fetches invite id; ErrNotFound when it does not exist (or
// was removed).
func (c *Client) GetInvite(ctx context.Context, id string) (Invite, error) {
	var doc inviteDoc
	if err := c.call(ctx, http.MethodGet, "/api/v3/invites/"+url.PathEscape(id), nil, &doc); err != nil {
		return Invite{}, fmt.Errorf("get the Envoy invite %s: %w", id, err)
	}
	return doc.invite(), nil
}

// DeleteInvite cancels invite id; Envoy then sends invite_removed. An
// invite already gone answers ErrNotFound, which a caller cancelling may
// take as done.
func (c *Client) DeleteInvite(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("envoyapi: no invite id to delete")
	}
	if err := c.call(ctx, http.MethodDelete, "/api/v3/invites/"+url.PathEscape(id), nil, nil); err != nil {
		return fmt.Errorf("delete the Envoy invite %s: %w", id, err)
	}
	return nil
}

// Location is an Envoy location.
type Location struct {
	ID, Name, Address, TimeZone string
}

// Flow is a location's sign-in flow (a visitor type).
type Flow struct {
	ID, Name   string
	LocationID string
	// EmployeeCentric flows register employees, not visitors.
	EmployeeCentric bool
	Enabled         bool
}

// Locations lists the locations the client can see.
func (c *Client) Locations(ctx context.Context) ([]Location, error) {
	var doc struct {
		Data []struct {
			ID         string `json:"id"`
			Attributes struct {
				Name     string  `json:"name"`
				Address  string  `json:"address"`
				Timezone *string `json:"timezone"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v3/locations", nil, &doc); err != nil {
		return nil, fmt.Errorf("list the Envoy locations: %w", err)
	}
	out := make([]Location, 0, len(doc.Data))
	for _, d := range doc.Data {
		l := Location{ID: d.ID, Name: d.Attributes.Name, Address: d.Attributes.Address}
		if d.Attributes.Timezone != nil {
			l.TimeZone = *d.Attributes.Timezone
		}
		out = append(out, l)
	}
	return out, nil
}

// Flows lists the flows of locationID ("" for every location).
func (c *Client) Flows(ctx context.Context, locationID string) ([]Flow, error) {
	path := "/api/v3/flows"
	if locationID != "" {
		// The SDK's qs serializer writes filter[location]=… unencoded.
		path += "?filter[location]=" + url.QueryEscape(locationID)
	}
	var doc struct {
		Data []struct {
			ID         string `json:"id"`
			Attributes struct {
				Name            string `json:"name"`
				EmployeeCentric *bool  `json:"employee-centric"`
				Enabled         *bool  `json:"enabled"`
			} `json:"attributes"`
			Relationships map[string]jsonapiRel `json:"relationships"`
		} `json:"data"`
	}
	if err := c.call(ctx, http.MethodGet, path, nil, &doc); err != nil {
		return nil, fmt.Errorf("list the Envoy flows: %w", err)
	}
	out := make([]Flow, 0, len(doc.Data))
	for _, d := range doc.Data {
		f := Flow{ID: d.ID, Name: d.Attributes.Name, LocationID: locationID, Enabled: true}
		if r := d.Relationships["location"].Data; r != nil {
			f.LocationID = r.ID
		}
		f.EmployeeCentric = d.Attributes.EmployeeCentric != nil && *d.Attributes.EmployeeCentric
		if d.Attributes.Enabled != nil {
			f.Enabled = *d.Attributes.Enabled
		}
		out = append(out, f)
	}
	return out, nil
}
