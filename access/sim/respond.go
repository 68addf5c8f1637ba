package sim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudkey/cloudkey/access"
)

// JSON shapes of the answers, after the published Openpath spec. Only the
// fields cloudkey and its tests can use are filled in.

// emptyMeta is the meta object of every success envelope; the simulator has
// no site-specific access to describe.
var emptyMeta = json.RawMessage(`{}`)

type dataEnvelope struct {
	Data any             `json:"data"`
	Meta json.RawMessage `json:"meta"`
}

// listEnvelope is a list answer. TotalCount counts the items before the
// filter, FilteredCount after it; Data is one page of the filtered items.
type listEnvelope struct {
	TotalCount    int             `json:"totalCount"`
	FilteredCount int             `json:"filteredCount"`
	Cursors       *cursorsJSON    `json:"cursors,omitempty"`
	Data          any             `json:"data"`
	Meta          json.RawMessage `json:"meta"`
}

type cursorsJSON struct {
	NextCursor  *int `json:"nextCursor"` // always null: the simulator pages by offset
	HasNextPage bool `json:"hasNextPage"`
}

type apiError struct {
	Name       string `json:"name"`
	Message    string `json:"message"`
	StatusCode int    `json:"statusCode"`
}

type userJSON struct {
	ID        int           `json:"id"`
	Status    access.Status `json:"status"`
	Identity  identityJSON  `json:"identity"`
	CreatedAt string        `json:"createdAt"`
	UpdatedAt string        `json:"updatedAt"`
}

type identityJSON struct {
	ID        int    `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	FullName  string `json:"fullName"`
}

type credentialTypeJSON struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	ModelName   string `json:"modelName"`
	Description string `json:"description,omitempty"`
}

type credentialJSON struct {
	ID             int                `json:"id"`
	CredentialType credentialTypeJSON `json:"credentialType"`
	CloudKey       *namedJSON         `json:"cloudKey,omitempty"`
	Mobile         *namedJSON         `json:"mobile,omitempty"`
	CreatedAt      string             `json:"createdAt"`
	UpdatedAt      string             `json:"updatedAt"`
}

type namedJSON struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type entryJSON struct {
	ID   int       `json:"id"`
	Name string    `json:"name"`
	Zone *zoneJSON `json:"zone"`
}

type zoneJSON struct {
	ID                int       `json:"id"`
	Name              string    `json:"name"`
	OfflineEntryCount int       `json:"offlineEntryCount"`
	Site              *siteJSON `json:"site"`
}

type siteJSON struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type loginJSON struct {
	IdentityID     int              `json:"identityId"`
	Identity       loginIdentity    `json:"identity"`
	Token          string           `json:"token"`
	TokenScopeList []tokenScopeJSON `json:"tokenScopeList"`
	CreatedAt      string           `json:"createdAt"`
	ExpiresAt      string           `json:"expiresAt"`
}

type loginIdentity struct {
	ID        int           `json:"id"`
	Namespace namespaceJSON `json:"namespace"`
}

type namespaceJSON struct {
	ID int `json:"id"`
}

type tokenScopeJSON struct {
	Org   Org            `json:"org"`
	User  *scopeUserJSON `json:"user,omitempty"`
	Scope []string       `json:"scope"`
}

// scopeUserJSON is the logged-in identity's user in the scope's org.
type scopeUserJSON struct {
	ID int `json:"id"`
}

func (u *user) toJSON(stamp string) userJSON {
	return userJSON{
		ID:     u.id,
		Status: u.status,
		Identity: identityJSON{
			ID:        u.identityID,
			Email:     u.email,
			FirstName: u.firstName,
			LastName:  u.lastName,
			FullName:  u.firstName + " " + u.lastName,
		},
		CreatedAt: stamp,
		UpdatedAt: stamp,
	}
}

func (c *credential) toJSON(stamp string) credentialJSON {
	j := credentialJSON{
		ID:             c.id,
		CredentialType: credentialTypeJSON{ID: c.typ.ID, Name: c.typ.Name, ModelName: c.typ.ModelName},
		CreatedAt:      stamp,
		UpdatedAt:      stamp,
	}
	switch c.typ.ModelName {
	case cloudKeyModel:
		j.CloudKey = &namedJSON{ID: c.id, Name: c.name}
	case "mobile":
		j.Mobile = &namedJSON{ID: c.id, Name: c.name}
	}
	return j
}

// timestamp formats t as Openpath does (JavaScript's toISOString).
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// writeJSON answers with v. It marshals first so that the answer has a
// Content-Length and an encoding failure can still become a 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalServerError", "encode response: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers with Openpath's named-error shape.
func writeError(w http.ResponseWriter, status int, name, message string) {
	body, _ := json.Marshal(apiError{Name: name, Message: message, StatusCode: status})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func badRequest(w http.ResponseWriter, message string) {
	writeError(w, http.StatusBadRequest, "BadRequestError", message)
}

func notFound(w http.ResponseWriter, message string) {
	writeError(w, http.StatusNotFound, "NotFoundError", message)
}

func forbidden(w http.ResponseWriter, message string) {
	writeError(w, http.StatusForbidden, "ForbiddenError", message)
}

// maxBodyBytes bounds request bodies; Openpath's are a few hundred bytes.
const maxBodyBytes = 64 << 10

// decodeBody decodes a JSON request body into v, answering 400 (or 413) and
// reporting false when it cannot.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	return decodeFrom(w, http.MaxBytesReader(w, r.Body, maxBodyBytes), v)
}

// decodeFrom is decodeBody from a reader already bounded by
// http.MaxBytesReader.
func decodeFrom(w http.ResponseWriter, rd io.Reader, v any) bool {
	dec := json.NewDecoder(rd)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, new(http.MaxBytesError)) {
			writeError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeError", "request body is too large")
			return false
		}
		badRequest(w, "malformed JSON body: "+err.Error())
		return false
	}
	if dec.More() {
		badRequest(w, "malformed JSON body: data after the JSON value")
		return false
	}
	return true
}

// page reads limit (1..1000, default 1000) and offset (>= 0, default 0),
// answering 400 and reporting false when they are malformed.
func page(w http.ResponseWriter, r *http.Request) (limit, offset int, ok bool) {
	q := r.URL.Query()
	limit, offset = maxPageSize, 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			badRequest(w, "limit must be an integer from 1 to 1000")
			return 0, 0, false
		}
		limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			badRequest(w, "offset must be a non-negative integer")
			return 0, 0, false
		}
		offset = n
	}
	return limit, offset, true
}

// maxPageSize is Openpath's largest limit, and the simulator's default.
const maxPageSize = 1000

// window returns the bounds of the page [offset, offset+limit) of n items.
func window(n, limit, offset int) (lo, hi int) {
	lo = min(offset, n)
	return lo, min(lo+limit, n)
}
