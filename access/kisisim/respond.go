package kisisim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Kisi error codes (KISI_NOTES §4; ORIG info.description). Those starting
// with "000" are the simulator's own, for answers Kisi documents no code
// for.
const (
	codeAccessDisabled  = "fcd8ff" // 403 Access disabled.
	codeAccessDenied    = "fcd8ef" // 403 Access denied.
	codeNotYetValid     = "f358de" // 403 not yet valid
	codeNoLongerValid   = "f35ade" // 403 no longer valid
	codeNotCloseEnough  = "bb4faa" // 403 reader restriction: no proximity proof
	codeTooFarAway      = "a3995f" // 403 geofence: no (or a far) location
	codeLockedDown      = "fad001" // 409 door locked down
	codeLockOffline     = "fad107" // 503 wireless lock offline
	codeLockNotFound    = "fad10e" // 404 door not found
	codeUnauthorized    = "000401"
	codeForbidden       = "000403"
	codeNotFound        = "000404"
	codeBadRequest      = "000400"
	codeRateLimited     = "000429"
	codeTooLarge        = "000413"
	codeUnprocessable   = "000422"
	messageUnlocked     = "Unlocked!"
	resourceTypeLock    = "Lock"
	resourceTypePlace   = "Place"
	resourceTypeUser    = "User"
	resourceTypeOrg     = "Organization"
	geofenceRadiusMeter = 100.0
)

// apiError is Kisi's Error schema.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

type placeRefJSON struct {
	ID        int      `json:"id"`
	Name      string   `json:"name"`
	Latitude  *float64 `json:"latitude"`
	Longitude *float64 `json:"longitude"`
}

// lockJSON is the "Lock" variant of the spec (not the group-link one).
type lockJSON struct {
	ID                         int          `json:"id"`
	ResourceType               string       `json:"resource_type"`
	CreatedAt                  string       `json:"created_at"`
	UpdatedAt                  string       `json:"updated_at"`
	Configured                 bool         `json:"configured"`
	Description                *string      `json:"description"`
	FirstToArriveRequiredUntil *string      `json:"first_to_arrive_required_until"`
	FirstToArriveSatisfied     bool         `json:"first_to_arrive_satisfied"`
	Latitude                   *float64     `json:"latitude"`
	LockedDown                 bool         `json:"locked_down"`
	LockedDownSince            *string      `json:"locked_down_since"`
	Longitude                  *float64     `json:"longitude"`
	Name                       string       `json:"name"`
	OnScheduledUnlock          bool         `json:"on_scheduled_unlock"`
	Online                     bool         `json:"online"`
	Open                       bool         `json:"open"`
	OrderID                    *int         `json:"order_id"`
	Unlocked                   bool         `json:"unlocked"`
	GeofenceRestrictionEnabled bool         `json:"geofence_restriction_enabled"`
	GeofenceRestrictionRadius  float64      `json:"geofence_restriction_radius"`
	ReaderRestrictionEnabled   bool         `json:"reader_restriction_enabled"`
	TimeRestrictionEnabled     bool         `json:"time_restriction_enabled"`
	TimeRestrictionTimeZone    *string      `json:"time_restriction_time_zone"`
	PlaceID                    int          `json:"place_id"`
	Place                      placeRefJSON `json:"place"`
	FloorID                    *int         `json:"floor_id"`
	GroupsCount                int          `json:"groups_count"`
	UnlockedUntil              *string      `json:"unlocked_until"`
}

type orgRefJSON struct {
	ID           int    `json:"id"`
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
	Domain       string `json:"domain"`
}

// placeJSON is the "Place" variant of the spec.
type placeJSON struct {
	ID                int        `json:"id"`
	ResourceType      string     `json:"resource_type"`
	Name              string     `json:"name"`
	Description       *string    `json:"description"`
	CreatedAt         string     `json:"created_at"`
	UpdatedAt         string     `json:"updated_at"`
	Latitude          *float64   `json:"latitude"`
	Longitude         *float64   `json:"longitude"`
	Address           string     `json:"address"`
	Image             *string    `json:"image"`
	TimeZone          *string    `json:"time_zone"`
	TZTimeZone        *string    `json:"tz_time_zone"`
	LocksCount        int        `json:"locks_count"`
	IntegrationsCount int        `json:"integrations_count"`
	LockedDown        bool       `json:"locked_down"`
	LockedDownSince   *string    `json:"locked_down_since"`
	OccupancyRate     *float64   `json:"occupancy_rate"`
	OrganizationID    int        `json:"organization_id"`
	Organization      orgRefJSON `json:"organization"`
	Color             *string    `json:"color"`
	Logo              *string    `json:"logo"`
	UserID            *int       `json:"user_id"`
	MembersCount      int        `json:"members_count"`
}

type userJSON struct {
	ID                  int             `json:"id"`
	ResourceType        string          `json:"resource_type"`
	Name                string          `json:"name"`
	Email               string          `json:"email"`
	CreatedAt           string          `json:"created_at"`
	UpdatedAt           string          `json:"updated_at"`
	Metadata            json.RawMessage `json:"metadata"`
	Image               *string         `json:"image"`
	OTPRequiredForLogin bool            `json:"otp_required_for_login"`
	PasswordFlowEnabled bool            `json:"password_flow_enabled"`
	AccessEnabled       bool            `json:"access_enabled"`
	LastAccessedAt      *string         `json:"last_accessed_at"`
	SCIMAccessEnabled   bool            `json:"scim_access_enabled"`
	Notes               *string         `json:"notes"`
	OrganizationID      int             `json:"organization_id"`
	Confirmed           bool            `json:"confirmed"`
	GroupsCount         int             `json:"groups_count"`
}

type loginUserJSON struct {
	ID           int    `json:"id"`
	ResourceType string `json:"resource_type"`
	Email        string `json:"email"`
	Name         string `json:"name"`
}

// loginJSON is the spec's Login as GET /login answers it.
type loginJSON struct {
	ID               int             `json:"id"`
	CreatedAt        string          `json:"created_at"`
	UpdatedAt        string          `json:"updated_at"`
	Type             string          `json:"type"`
	Name             *string         `json:"name"`
	Primary          bool            `json:"primary"`
	Expire           bool            `json:"expire"`
	LastUsedAt       *string         `json:"last_used_at"`
	DeviceBrand      *string         `json:"device_brand"`
	DeviceModel      *string         `json:"device_model"`
	OSName           *string         `json:"os_name"`
	UserID           int             `json:"user_id"`
	User             loginUserJSON   `json:"user"`
	App              json.RawMessage `json:"app"`
	UserAgent        json.RawMessage `json:"user_agent"`
	Device           json.RawMessage `json:"device"`
	OS               json.RawMessage `json:"os"`
	SCRAMCredentials json.RawMessage `json:"scram_credentials"`
}

// createdLoginJSON is the Login POST /logins answers: with the secret
// (and authentication_token, its deprecated alias) and more.
type createdLoginJSON struct {
	loginJSON
	Secret                   string  `json:"secret"`
	AuthenticationToken      string  `json:"authentication_token"`
	HasPrimaryDevice         bool    `json:"has_primary_device"`
	Email                    string  `json:"email"`
	NotificationsUnreadCount int     `json:"notifications_unread_count"`
	OTPRequiredForLogin      bool    `json:"otp_required_for_login"`
	OTPEnabledAt             *string `json:"otp_enabled_at"`
	Image                    *string `json:"image"`
	PrimaryLoginExists       bool    `json:"primary_login_exists"`
}

var (
	emptyObject = json.RawMessage(`{}`)
	jsonNull    = json.RawMessage(`null`)
)

// lockToJSON renders l; s.mu is held for reading.
func (s *Sim) lockToJSON(l *lock) lockJSON {
	j := lockJSON{
		ID: l.id, ResourceType: resourceTypeLock, CreatedAt: s.stamp, UpdatedAt: s.stamp,
		Configured: l.configured, LockedDown: l.lockedDown, Name: l.name, Online: l.online,
		GeofenceRestrictionEnabled: l.geofence, GeofenceRestrictionRadius: geofenceRadiusMeter,
		ReaderRestrictionEnabled: l.reader, PlaceID: l.place.id,
		Place:       placeRefJSON{ID: l.place.id, Name: l.place.name},
		GroupsCount: 1,
	}
	if l.lockedDown {
		t := timestamp(l.lockedDownSince)
		j.LockedDownSince = &t
	}
	return j
}

func (s *Sim) placeToJSON(p *place) placeJSON {
	members := 0
	for _, u := range p.org.users {
		if len(u.access) > 0 {
			members++
		}
	}
	return placeJSON{
		ID: p.id, ResourceType: resourceTypePlace, Name: p.name, CreatedAt: s.stamp, UpdatedAt: s.stamp,
		LocksCount: countLocks(p), OrganizationID: p.org.id,
		Organization: orgRefJSON{ID: p.org.id, ResourceType: resourceTypeOrg, Name: p.org.name, Domain: p.org.domain},
		MembersCount: members,
	}
}

func countLocks(p *place) int {
	n := 0
	for _, l := range p.org.locks {
		if l.place == p {
			n++
		}
	}
	return n
}

// userToJSON renders u; s.mu is held for reading.
func (s *Sim) userToJSON(u *user) userJSON {
	return userJSON{
		ID: u.id, ResourceType: resourceTypeUser, Name: u.name, Email: u.email,
		CreatedAt: s.stamp, UpdatedAt: s.stamp, Metadata: emptyObject,
		AccessEnabled: u.accessEnabled, SCIMAccessEnabled: u.scimEnabled,
		OrganizationID: u.org.id, Confirmed: true, GroupsCount: len(u.access),
	}
}

// loginToJSON renders l as GET /login does; s.mu is held.
func loginToJSON(l *login) loginJSON {
	created := timestamp(l.created)
	used := timestamp(l.lastUsed)
	j := loginJSON{
		ID: l.id, CreatedAt: created, UpdatedAt: used, Type: l.typ, Name: l.name, Expire: l.expire,
		LastUsedAt: &used, UserID: l.user.id,
		User: loginUserJSON{ID: l.user.id, ResourceType: resourceTypeUser, Email: l.user.email, Name: l.user.name},
		App:  emptyObject, UserAgent: emptyObject, Device: emptyObject, OS: emptyObject,
		SCRAMCredentials: jsonNull,
	}
	return j
}

// createdLoginToJSON renders l as POST /logins does; s.mu is held.
func createdLoginToJSON(l *login) createdLoginJSON {
	return createdLoginJSON{loginJSON: loginToJSON(l), Secret: l.secret, AuthenticationToken: l.secret, Email: l.user.email}
}

// timestamp formats t as Kisi does (RFC 3339 with milliseconds, UTC).
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// writeJSON answers with v. It marshals first so that the answer has a
// Content-Length and an encoding failure can still become a 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "ffffff", "encode response: "+err.Error())
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers with Kisi's Error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body, _ := json.Marshal(apiError{Error: message, Code: code})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// maxBodyBytes bounds request bodies; Kisi's are a few hundred bytes.
const maxBodyBytes = 64 << 10

// decodeBody decodes a JSON request body into v, answering 400 (or 413)
// and reporting false when it cannot. An empty body is an error unless
// optional, when it leaves v alone and reports true.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		if optional && errors.Is(err, io.EOF) {
			return true
		}
		if errors.Is(err, new(http.MaxBytesError)) {
			writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge, "request body is too large")
			return false
		}
		writeError(w, http.StatusBadRequest, codeBadRequest, "malformed JSON body: "+err.Error())
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, codeBadRequest, "malformed JSON body: data after the JSON value")
		return false
	}
	return true
}

// Kisi's page sizes (KISI_NOTES §5) and largest offset.
const (
	defaultLimit   = 50
	maxLocksLimit  = 250
	maxUsersLimit  = 100
	maxOffset      = 20000
	collectionHead = "X-Collection-Range"
)

// page reads limit (1..maxLimit, default 50) and offset (0..20000),
// answering 400 and reporting false when they are malformed.
func page(w http.ResponseWriter, r *http.Request, maxLimit int) (limit, offset int, ok bool) {
	q := r.URL.Query()
	limit = defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			writeError(w, http.StatusBadRequest, codeBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(maxLimit))
			return 0, 0, false
		}
		limit = n
	}
	if s := q.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxOffset {
			writeError(w, http.StatusBadRequest, codeBadRequest, "offset must be an integer from 0 to 20000")
			return 0, 0, false
		}
		offset = n
	}
	return limit, offset, true
}

// writePage answers one page of a list of total items. X-Collection-Range
// is the range requested, offset to offset+limit-1, over the total, as
// Kisi's description says ("offset 10 and limit 10 ... 10-19/15"); so an
// empty page still has a value the spec's pattern accepts (0-49/0), never
// "*/0".
func writePage(w http.ResponseWriter, items any, limit, offset, total int) {
	w.Header().Set(collectionHead, strconv.Itoa(offset)+"-"+strconv.Itoa(offset+limit-1)+"/"+strconv.Itoa(total))
	writeJSON(w, http.StatusOK, items)
}

// window returns the bounds of the page [offset, offset+limit) of n items.
func window(n, limit, offset int) (lo, hi int) {
	lo = min(offset, n)
	return lo, min(lo+limit, n)
}

// pathID parses the numeric id path parameter, answering 404 (the spec
// lists no 400) when it is not one.
func pathID(w http.ResponseWriter, r *http.Request, code string) (int, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		writeError(w, http.StatusNotFound, code, "Not found.")
		return 0, false
	}
	return id, true
}
