package envoysim

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const contentTypeAPI = "application/vnd.api+json"

// writeError answers a JSON:API error document.
func writeError(w http.ResponseWriter, status int, detail string) {
	type apiError struct {
		Status string `json:"status"`
		Title  string `json:"title"`
		Detail string `json:"detail,omitempty"`
	}
	writeJSON(w, status, contentTypeAPI, map[string][]apiError{"errors": {{
		Status: strconv.Itoa(status), Title: http.StatusText(status), Detail: detail,
	}}})
}

// writeOAuthError answers an RFC 6749 §5.2 error.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="envoy"`)
	}
	writeJSON(w, status, "application/json", map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(marshal(v))
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	s.handle(mux, "POST /a/auth/v0/token", OpToken, false, s.token)
	s.handle(mux, "POST /api/v3/invites", OpCreateInvite, true, s.createInvite)
	s.handle(mux, "GET /api/v3/invites/{id}", OpGetInvite, true, s.getInvite)
	s.handle(mux, "DELETE /api/v3/invites/{id}", OpDeleteInvite, true, s.deleteInvite)
	s.handle(mux, "GET /api/v3/locations", OpListLocations, true, s.listLocations)
	s.handle(mux, "GET /api/v3/flows", OpListFlows, true, s.listFlows)
	s.controlRoutes(mux) // control.go
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such path: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// handle registers one operation: counted, then faults, then (API calls)
// the bearer token, then h.
func (s *Sim) handle(mux *http.ServeMux, pattern string, op Op, bearer bool, h http.HandlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.calls[op].Add(1)
		if !s.faults.Apply(w, r, op) {
			return
		}
		if bearer && !s.authorized(w, r) {
			return
		}
		h(w, r)
	})
}

func (s *Sim) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || !time.Now().Before(exp) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "The access token is missing, invalid or expired.")
		return false
	}
	return true
}

// token is the OAuth2 token endpoint, client credentials only.
func (s *Sim) token(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "unreadable body")
		return
	}
	var req struct {
		GrantType    string `json:"grant_type"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Scope        string `json:"scope"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
			return
		}
		req.GrantType, req.ClientID, req.ClientSecret, req.Scope = f.Get("grant_type"), f.Get("client_id"), f.Get("client_secret"), f.Get("scope")
	} else if err := json.Unmarshal(body, &req); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "the body is neither JSON nor a form")
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = req.ClientID, req.ClientSecret
	}
	if req.GrantType != "client_credentials" {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(s.seed.ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(s.seed.ClientSecret)) != 1 {
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	tok := randomHex(24)
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.seed.TokenTTL)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, "application/json", map[string]any{
		"token_type": "Bearer", "access_token": tok, "expires_in": int(s.seed.TokenTTL / time.Second),
		"refresh_token": nil, "refresh_token_expires_in": nil,
	})
}

// createRequest is {data: InviteCreationModel}.
type createRequest struct {
	Data struct {
		Type       string `json:"type"`
		Attributes struct {
			Email                 string             `json:"email"`
			ExpectedArrivalTime   string             `json:"expected-arrival-time"`
			ExpectedDepartureTime string             `json:"expected-departure-time"`
			FullName              string             `json:"full-name"`
			PrivateNotes          string             `json:"private-notes"`
			UserData              map[string]*string `json:"user-data"`
			NotifyVisitor         *bool              `json:"notify-visitor"`
			Attested              bool               `json:"attested"`
			Phone                 string             `json:"phone"`
		} `json:"attributes"`
		Relationships map[string]struct {
			Data *ident `json:"data"`
		} `json:"relationships"`
	} `json:"data"`
}

func (s *Sim) createInvite(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	var req createRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed invite document: "+err.Error())
		return
	}
	d, a := req.Data, req.Data.Attributes
	if d.Type != "invites" {
		writeError(w, http.StatusUnprocessableEntity, `data.type must be "invites"`)
		return
	}
	if strings.TrimSpace(a.FullName) == "" {
		writeError(w, http.StatusUnprocessableEntity, "full-name can't be blank")
		return
	}
	arrival, err := time.Parse(time.RFC3339, a.ExpectedArrivalTime)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "expected-arrival-time must be an ISO 8601 time")
		return
	}
	var departure time.Time
	if a.ExpectedDepartureTime != "" {
		if departure, err = time.Parse(time.RFC3339, a.ExpectedDepartureTime); err != nil || !departure.After(arrival) {
			writeError(w, http.StatusUnprocessableEntity, "expected-departure-time must be an ISO 8601 time after the arrival")
			return
		}
	}
	locRel := d.Relationships["location"].Data
	flowRel := d.Relationships["flow"].Data
	s.mu.Lock()
	var loc *Location
	if locRel != nil && locRel.Type == "locations" {
		loc = s.locationsByID[locRel.ID]
	}
	if loc == nil {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "relationships.location must name a location of the company")
		return
	}
	flowID := ""
	if flowRel != nil {
		flowID = flowRel.ID
	}
	flow, ok := pickFlow(loc, flowID)
	if !ok || flow.EmployeeCentric {
		s.mu.Unlock()
		writeError(w, http.StatusUnprocessableEntity, "relationships.flow must name a visitor flow of the location")
		return
	}
	inv := &Invite{
		ID: s.newID(), LocationID: loc.ID, FlowID: flow.ID, FullName: strings.TrimSpace(a.FullName),
		Email: a.Email, Phone: a.Phone, PrivateNotes: a.PrivateNotes, ExpectedArrival: arrival.UTC(),
		ExpectedDeparture: departure.UTC(), NotifyVisitor: a.NotifyVisitor == nil || *a.NotifyVisitor,
		Created: time.Now().UTC(), SecretToken: randomHex(3), EditTok: randomHex(3),
	}
	if departure.IsZero() {
		inv.ExpectedDeparture = time.Time{}
	}
	if len(a.UserData) > 0 {
		inv.UserData = map[string]string{}
		for k, v := range a.UserData {
			if v != nil {
				inv.UserData[k] = *v
			} else {
				inv.UserData[k] = ""
			}
		}
	}
	s.invites[inv.ID] = inv
	s.inviteOrder = append(s.inviteOrder, inv.ID)
	res := map[string]any{"data": inviteResource(inv)}
	event := s.inviteEvent("invite_created", inv)
	before := s.beforeAnswer
	s.mu.Unlock()
	if before {
		_ = s.deliverNow("invite_created", inv.ID, event)
	}
	writeJSON(w, http.StatusCreated, contentTypeAPI, res)
	if !before {
		s.deliverLater("invite_created", inv.ID, event)
	}
}

func (s *Sim) getInvite(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	inv, ok := s.invites[r.PathValue("id")]
	var res map[string]any
	if ok && !inv.Removed {
		res = map[string]any{"data": inviteResource(inv)}
	}
	s.mu.Unlock()
	if res == nil {
		writeError(w, http.StatusNotFound, "no invite "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, contentTypeAPI, res)
}

func (s *Sim) deleteInvite(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	inv, ok := s.invites[r.PathValue("id")]
	if !ok || inv.Removed {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "no invite "+r.PathValue("id"))
		return
	}
	inv.Removed = true
	event := s.inviteEvent("invite_removed", inv)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	s.deliverLater("invite_removed", inv.ID, event)
}

func (s *Sim) listLocations(w http.ResponseWriter, _ *http.Request) {
	data := make([]locationModel, 0, len(s.seed.Locations))
	for _, l := range s.seed.Locations {
		data = append(data, locationModel{
			ID: l.ID, Type: "locations",
			Attributes: locationAttrs{
				Name: l.Name, Address: l.Address, City: nullable(l.City), Zip: nullable(l.Zip), Timezone: nullable(l.TimeZone),
			},
			Relationships: map[string]any{},
		})
	}
	writeJSON(w, http.StatusOK, contentTypeAPI, map[string]any{"data": data})
}

func (s *Sim) listFlows(w http.ResponseWriter, r *http.Request) {
	only := r.URL.Query().Get("filter[location]")
	data := []flowModel{}
	for _, l := range s.seed.Locations {
		if only != "" && l.ID != only {
			continue
		}
		for _, f := range l.Flows {
			data = append(data, flowModel{
				ID: f.ID, Type: "flows",
				Attributes:    flowAttrs{Name: f.Name, EmployeeCentric: f.EmployeeCentric, Enabled: true},
				Relationships: map[string]rel{"location": relTo("locations", l.ID)},
			})
		}
	}
	writeJSON(w, http.StatusOK, contentTypeAPI, map[string]any{"data": data})
}
