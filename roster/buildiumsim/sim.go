package buildiumsim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudkey/cloudkey/access/simfault"
)

// Sim is a simulated Buildium account served over HTTP. It is safe for
// concurrent use.
type Sim struct {
	handler http.Handler
	start   time.Time

	mu       sync.RWMutex
	clientID string
	secret   string
	rentals  map[int32]Rental
	tenants  map[int32]*Tenant
	leases   map[int32]*Lease

	calls  [numOps]atomic.Int64
	faults *simfault.Injector[Op]
	clock  atomic.Pointer[func() time.Time]

	closeOnce sync.Once
	closed    chan struct{}
}

// New builds a simulator serving seed. It validates the seed and keeps a
// copy.
func New(seed Seed) (*Sim, error) {
	if err := seed.Validate(); err != nil {
		return nil, fmt.Errorf("buildiumsim: %w", err)
	}
	s := &Sim{
		start:    time.Now().UTC().Truncate(time.Second),
		clientID: seed.ClientID, secret: seed.ClientSecret,
		rentals: map[int32]Rental{}, tenants: map[int32]*Tenant{}, leases: map[int32]*Lease{},
		closed: make(chan struct{}),
	}
	for _, r := range seed.Rentals {
		s.rentals[r.ID] = r
	}
	for _, t := range seed.Tenants {
		t := t
		if t.Updated.IsZero() {
			t.Updated = s.start
		}
		s.tenants[t.ID] = &t
	}
	for _, l := range seed.Leases {
		l := cloneLease(l)
		if l.Updated.IsZero() {
			l.Updated = s.start
		}
		s.leases[l.ID] = &l
	}
	s.faults = newFaults(s.closed)
	s.handler = s.routes()
	return s, nil
}

func cloneLease(l Lease) Lease {
	l.Tenants = slices.Clone(l.Tenants)
	l.MoveOuts = slices.Clone(l.MoveOuts)
	return l
}

// Handler returns the simulator's HTTP handler, paths under /v1 as
// https://api.buildium.com serves them.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close releases requests held by faults; the handler keeps serving.
func (s *Sim) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// SetClock sets the clock that stamps changes (nil: the real clock).
func (s *Sim) SetClock(now func() time.Time) {
	if now == nil {
		s.clock.Store(nil)
		return
	}
	s.clock.Store(&now)
}

func (s *Sim) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)().UTC()
	}
	return time.Now().UTC()
}

// Calls returns how many requests op has received.
func (s *Sim) Calls(op Op) int64 { return s.calls[op].Load() }

// SetCredentials replaces the API key (a key rotated or deleted in
// Buildium): requests with the old one get 401.
func (s *Sim) SetCredentials(clientID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clientID, s.secret = clientID, secret
}

// ErrNotFound is returned by the setters for an unknown id.
var ErrNotFound = errors.New("buildiumsim: no such record")

// SetTenantEmail changes a tenant's email ("" removes it), as a manager
// editing the tenant in Buildium.
func (s *Sim) SetTenantEmail(tenantID int32, email string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenants[tenantID]
	if t == nil {
		return ErrNotFound
	}
	t.Email, t.Updated = email, s.now()
	return nil
}

// SetMoveOut records (or, with date "", cancels) a tenant's move-out from
// a lease: a notice while the date is ahead.
func (s *Sim) SetMoveOut(leaseID, tenantID int32, date, notice string) error {
	if err := errors.Join(checkDate(date), checkDate(notice)); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leases[leaseID]
	if l == nil || s.tenants[tenantID] == nil {
		return ErrNotFound
	}
	l.MoveOuts = slices.DeleteFunc(l.MoveOuts, func(m MoveOut) bool { return m.TenantID == tenantID })
	if date != "" {
		l.MoveOuts = append(l.MoveOuts, MoveOut{TenantID: tenantID, Date: date, Notice: notice})
	}
	l.Updated = s.now()
	return nil
}

// SetLease replaces a lease (its status, tenants, move-outs...), stamped
// now.
func (s *Sim) SetLease(l Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases[l.ID] == nil {
		return ErrNotFound
	}
	return s.putLease(l)
}

// AddLease adds a lease (and its tenants, when given), stamped now.
func (s *Sim) AddLease(l Lease, tenants ...Tenant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases[l.ID] != nil {
		return fmt.Errorf("buildiumsim: lease %d exists", l.ID)
	}
	for _, t := range tenants {
		t := t
		t.Updated = s.now()
		s.tenants[t.ID] = &t
	}
	return s.putLease(l)
}

// putLease validates and stores l; s.mu is held.
func (s *Sim) putLease(l Lease) error {
	seed := Seed{ClientID: "x", ClientSecret: "x", Leases: []Lease{l}}
	for id := range s.rentals {
		seed.Rentals = append(seed.Rentals, Rental{ID: id})
	}
	for id := range s.tenants {
		seed.Tenants = append(seed.Tenants, Tenant{ID: id})
	}
	if err := seed.Validate(); err != nil {
		return fmt.Errorf("buildiumsim: %w", err)
	}
	l = cloneLease(l)
	l.Updated = s.now()
	s.leases[l.ID] = &l
	return nil
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	s.handle(mux, "GET /v1/leases", OpGetLeases, s.getLeases)
	s.handle(mux, "GET /v1/leases/{leaseId}", OpGetLeaseByID, s.getLease)
	s.handle(mux, "GET /v1/leases/tenants", OpGetAllTenants, s.getTenants)
	// /v1/leases/tenants/{tenantId} and /v1/leases/{leaseId}/moveouts
	// overlap (ServeMux refuses both): one pattern, told apart here.
	tenant := s.wrap(OpGetTenantByID, s.getTenant)
	moveOuts := s.wrap(OpGetLeaseMoveOutInformationByID, s.getMoveOuts)
	mux.HandleFunc("GET /v1/leases/{a}/{b}", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.PathValue("a") == "tenants":
			r.SetPathValue("tenantId", r.PathValue("b"))
			tenant(w, r)
		case r.PathValue("b") == "moveouts":
			r.SetPathValue("leaseId", r.PathValue("a"))
			moveOuts(w, r)
		default:
			writeError(w, http.StatusNotFound, "NotFound", "No such resource: "+r.Method+" "+r.URL.Path)
		}
	})
	s.handle(mux, "GET /v1/leases/{leaseId}/moveouts/{tenantId}", OpGetLeaseMoveOutDataByTenantID, s.getMoveOut)
	s.handle(mux, "GET /v1/rentals", OpGetAllRentals, s.getRentals)
	s.handle(mux, "GET /v1/rentals/{propertyId}", OpGetRentalByID, s.getRental)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "No such resource: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// handle registers one operation: counted, then faults, then the API key
// (401), then h.
func (s *Sim) handle(mux *http.ServeMux, pattern string, op Op, h http.HandlerFunc) {
	mux.HandleFunc(pattern, s.wrap(op, h))
}

func (s *Sim) wrap(op Op, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.calls[op].Add(1)
		if !s.faults.Apply(w, r, op) {
			return
		}
		id, secret := r.Header.Get("x-buildium-client-id"), r.Header.Get("x-buildium-client-secret")
		s.mu.RLock()
		ok := subtle.ConstantTimeCompare([]byte(id), []byte(s.clientID)) == 1 &&
			subtle.ConstantTimeCompare([]byte(secret), []byte(s.secret)) == 1
		s.mu.RUnlock()
		if !ok {
			writeError(w, http.StatusUnauthorized, "Unauthorized",
				"The request requires both x-buildium-client-id and x-buildium-client-secret of a valid API key.")
			return
		}
		h(w, r)
	}
}

// apiError is Buildium's ApiErrorResponse.
type apiError struct {
	UserMessage string     `json:"UserMessage"`
	ErrorCode   string     `json:"ErrorCode"`
	Errors      []keyValue `json:"Errors,omitempty"`
}

type keyValue struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeErrorKV(w, status, code, msg, nil)
}

func writeErrorKV(w http.ResponseWriter, status int, code, msg string, errs []keyValue) {
	writeJSON(w, status, apiError{UserMessage: msg, ErrorCode: code, Errors: errs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// query is a list request's parameters, parsed; bad collects the errors.
type query struct {
	offset, limit int
	from, to      time.Time
	propertyIDs   map[int32]bool
	bad           []keyValue
}

func parseQuery(r *http.Request) query {
	v := r.URL.Query()
	q := query{limit: 50}
	if s := v.Get("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			q.bad = append(q.bad, keyValue{"offset", "offset must be a non-negative integer"})
		}
		q.offset = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			q.bad = append(q.bad, keyValue{"limit", "limit must be between 1 and 1000"})
		}
		q.limit = n
	}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"lastupdatedfrom", &q.from}, {"lastupdatedto", &q.to}} {
		if s := v.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				q.bad = append(q.bad, keyValue{p.name, p.name + " must be a date-time such as 2026-12-01T10:00:00Z"})
			}
			*p.to = t
		}
	}
	for _, s := range v["propertyids"] {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			q.bad = append(q.bad, keyValue{"propertyids", "propertyids must be integers"})
			continue
		}
		if q.propertyIDs == nil {
			q.propertyIDs = map[int32]bool{}
		}
		q.propertyIDs[int32(n)] = true
	}
	return q
}

// updatedIn reports whether t is within the lastupdated bounds.
func (q query) updatedIn(t time.Time) bool {
	return (q.from.IsZero() || !t.Before(q.from)) && (q.to.IsZero() || !t.After(q.to))
}

// page writes the answers of items[offset:offset+limit], rendered by
// render, with X-Total-Count: only the page is rendered.
func page[T, M any](w http.ResponseWriter, q query, items []T, render func(T) M) {
	w.Header().Set("X-Total-Count", strconv.Itoa(len(items)))
	lo := min(q.offset, len(items))
	hi := min(lo+q.limit, len(items))
	out := make([]M, 0, hi-lo)
	for _, it := range items[lo:hi] {
		out = append(out, render(it))
	}
	writeJSON(w, http.StatusOK, out)
}

func badRequest(w http.ResponseWriter, bad []keyValue) {
	writeErrorKV(w, http.StatusBadRequest, "BadRequest", "The request is not valid.", bad)
}

func pathID(w http.ResponseWriter, r *http.Request, name string) (int32, bool) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 32)
	if err != nil {
		badRequest(w, []keyValue{{name, name + " must be an integer"}})
		return 0, false
	}
	return int32(n), true
}

func (s *Sim) getLeases(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r)
	statuses := map[string]bool{}
	for _, st := range r.URL.Query()["leasestatuses"] {
		if !leaseStatuses[st] {
			q.bad = append(q.bad, keyValue{"leasestatuses", "leasestatuses must be Active, Past or Future"})
		}
		statuses[st] = true
	}
	if len(q.bad) > 0 {
		badRequest(w, q.bad)
		return
	}
	unit := r.URL.Query().Get("unitnumber")
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Lease
	for _, l := range s.sortedLeases() {
		if (q.propertyIDs != nil && !q.propertyIDs[l.PropertyID]) || (len(statuses) > 0 && !statuses[l.Status]) ||
			!q.updatedIn(l.Updated) || (unit != "" && l.UnitNumber != unit) {
			continue
		}
		out = append(out, l)
	}
	page(w, q, out, func(l *Lease) leaseMessage { return s.leaseMessage(l, true) })
}

func (s *Sim) getLease(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "leaseId")
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.leases[id]
	if l == nil {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Lease %d was not found.", id))
		return
	}
	writeJSON(w, http.StatusOK, s.leaseMessage(l, true))
}

func (s *Sim) getTenants(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r)
	if len(q.bad) > 0 {
		badRequest(w, q.bad)
		return
	}
	email := strings.ToLower(r.URL.Query().Get("email"))
	s.mu.RLock()
	defer s.mu.RUnlock()
	leasesOf := map[int32][]*Lease{}
	for _, l := range s.sortedLeases() {
		for _, lt := range l.Tenants {
			leasesOf[lt.TenantID] = append(leasesOf[lt.TenantID], l)
		}
	}
	var out []*Tenant
	for _, t := range s.sortedTenants() {
		ls := leasesOf[t.ID]
		if q.propertyIDs != nil && !slices.ContainsFunc(ls, func(l *Lease) bool { return q.propertyIDs[l.PropertyID] }) {
			continue
		}
		// Buildium's email filter is a contains match.
		if !q.updatedIn(t.Updated) || (email != "" && !strings.Contains(strings.ToLower(t.Email), email)) {
			continue
		}
		out = append(out, t)
	}
	page(w, q, out, func(t *Tenant) tenantMessage { return s.tenantMessage(t, leasesOf[t.ID]) })
}

func (s *Sim) getTenant(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "tenantId")
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t := s.tenants[id]
	if t == nil {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Tenant %d was not found.", id))
		return
	}
	var ls []*Lease
	for _, l := range s.sortedLeases() {
		if slices.ContainsFunc(l.Tenants, func(lt LeaseTenant) bool { return lt.TenantID == id }) {
			ls = append(ls, l)
		}
	}
	writeJSON(w, http.StatusOK, s.tenantMessage(t, ls))
}

func (s *Sim) getMoveOuts(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "leaseId")
	if !ok {
		return
	}
	q := parseQuery(r)
	if len(q.bad) > 0 {
		badRequest(w, q.bad)
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.leases[id]
	if l == nil {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Lease %d was not found.", id))
		return
	}
	page(w, q, moveOutMessages(l.MoveOuts), func(m moveOutMessage) moveOutMessage { return m })
}

func (s *Sim) getMoveOut(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "leaseId")
	if !ok {
		return
	}
	tid, ok := pathID(w, r, "tenantId")
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.leases[id]; l != nil {
		for _, m := range l.MoveOuts {
			if m.TenantID == tid {
				writeJSON(w, http.StatusOK, moveOutMessages([]MoveOut{m})[0])
				return
			}
		}
	}
	writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("No move-out of tenant %d on lease %d.", tid, id))
}

func (s *Sim) getRentals(w http.ResponseWriter, r *http.Request) {
	q := parseQuery(r)
	if len(q.bad) > 0 {
		badRequest(w, q.bad)
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Rental
	for _, r := range s.sortedRentals() {
		if q.propertyIDs != nil && !q.propertyIDs[r.ID] {
			continue
		}
		out = append(out, r)
	}
	page(w, q, out, rentalOf)
}

func (s *Sim) getRental(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "propertyId")
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rt, ok := s.rentals[id]
	if !ok {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("Rental property %d was not found.", id))
		return
	}
	writeJSON(w, http.StatusOK, rentalOf(rt))
}

func rentalOf(r Rental) rentalMessage {
	return rentalMessage{ID: r.ID, Name: r.Name, NumberUnits: r.Units, IsActive: true, RentalType: "Residential", RentalSubType: "MultiFamily"}
}

func (s *Sim) sortedLeases() []*Lease {
	out := make([]*Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *Lease) int { return int(a.ID) - int(b.ID) })
	return out
}

func (s *Sim) sortedTenants() []*Tenant {
	out := make([]*Tenant, 0, len(s.tenants))
	for _, t := range s.tenants {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *Tenant) int { return int(a.ID) - int(b.ID) })
	return out
}

func (s *Sim) sortedRentals() []Rental {
	out := make([]Rental, 0, len(s.rentals))
	for _, r := range s.rentals {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Rental) int { return int(a.ID) - int(b.ID) })
	return out
}
