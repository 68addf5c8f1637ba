package envoysim

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudkey/cloudkey/access/simfault"
)

// Seed is what the simulator starts with.
type Seed struct {
	// ClientID and ClientSecret are the OAuth client credentials.
	ClientID, ClientSecret string
	// WebhookSecret signs the webhooks; empty means ClientSecret, as
	// Envoy's SDK verifies plugin requests with the client secret.
	WebhookSecret string
	// WebhookURL receives the events; empty sends none (SetWebhookURL).
	WebhookURL string
	// TokenTTL is the access tokens' lifetime; zero means one hour.
	TokenTTL time.Duration
	// PluginID and InstallID go in each event's meta.
	PluginID, InstallID string
	Company             Company
	Locations           []Location
}

// Company is the Envoy account.
type Company struct {
	ID, Name string
}

// Location is an Envoy location and its sign-in flows (visitor types).
type Location struct {
	ID, Name, TimeZone, Address, City, Country, Zip string
	Flows                                           []Flow
}

// Flow is a visitor type of a location.
type Flow struct {
	ID, Name string
	// EmployeeCentric flows are for employees (Protect), not visitors.
	EmployeeCentric bool
}

// Validate reports missing credentials, locations without an id, name or
// flow, and duplicate ids.
func (s Seed) Validate() error {
	if s.ClientID == "" || s.ClientSecret == "" {
		return errors.New("seed needs a client id and secret")
	}
	if s.TokenTTL < 0 {
		return errors.New("token TTL must not be negative")
	}
	if s.Company.ID == "" || s.Company.Name == "" {
		return errors.New("seed needs a company id and name")
	}
	if len(s.Locations) == 0 {
		return errors.New("seed has no location")
	}
	seen := map[string]bool{}
	for _, l := range s.Locations {
		if l.ID == "" || l.Name == "" || len(l.Flows) == 0 {
			return fmt.Errorf("location %q needs an id, a name and a flow", l.ID)
		}
		if seen["l"+l.ID] {
			return fmt.Errorf("location %s appears twice", l.ID)
		}
		seen["l"+l.ID] = true
		if l.TimeZone != "" {
			if _, err := time.LoadLocation(l.TimeZone); err != nil {
				return fmt.Errorf("location %s: time zone: %w", l.ID, err)
			}
		}
		for _, f := range l.Flows {
			if f.ID == "" || f.Name == "" || seen["f"+f.ID] {
				return fmt.Errorf("location %s: flow %q needs a unique id and a name", l.ID, f.ID)
			}
			seen["f"+f.ID] = true
		}
	}
	return nil
}

// The demo Envoy account; the location and flows are those of the webhook
// fixtures in visitor/testdata.
const (
	DemoClientID       = "demo-envoy-client-id"
	DemoClientSecret   = "demo-envoy-client-secret"
	DemoLocationID     = "152347"
	DemoVisitorFlowID  = "31337"
	DemoContractorFlow = "31338"
	DemoEmployeeFlowID = "31339"
)

// DemoSeed is the demo company "Harbor View" with its location "Harbor
// View Residences" (Europe/Paris) and the flows Visitor, Contractor and
// Employee registration.
func DemoSeed() Seed {
	return Seed{
		ClientID: DemoClientID, ClientSecret: DemoClientSecret,
		PluginID: "7c1e6c7e-0d7c-4b7a-9d0e-3c1f2b9a8e11", InstallID: "a5b2c3d4-1111-4222-8333-944455556666",
		Company: Company{ID: "8842", Name: "Harbor View"},
		Locations: []Location{{
			ID: DemoLocationID, Name: "Harbor View Residences", TimeZone: "Europe/Paris",
			Address: "12 Quai de la Gare, 75013 Paris, France", City: "Paris", Country: "FR", Zip: "75013",
			Flows: []Flow{
				{ID: DemoVisitorFlowID, Name: "Visitor"},
				{ID: DemoContractorFlow, Name: "Contractor"},
				{ID: DemoEmployeeFlowID, Name: "Employee registration", EmployeeCentric: true},
			},
		}},
	}
}

// Op is one simulated Envoy operation.
type Op int

// The simulated operations.
const (
	OpToken         Op = iota // POST /a/auth/v0/token
	OpCreateInvite            // POST /api/v3/invites
	OpDeleteInvite            // DELETE /api/v3/invites/{id}
	OpGetInvite               // GET /api/v3/invites/{id}
	OpListLocations           // GET /api/v3/locations
	OpListFlows               // GET /api/v3/flows

	numOps
)

// Known reports whether op is one of the simulator's operations.
func (op Op) Known() bool { return op >= 0 && op < numOps }

func (op Op) String() string {
	names := [...]string{"token", "createInvite", "deleteInvite", "getInvite", "listLocations", "listFlows"}
	if !op.Known() {
		return "Op(" + strconv.Itoa(int(op)) + ")"
	}
	return names[op]
}

// Faults make the simulator slow or failing (see simfault.Faults); the
// login operation is the token endpoint.
type Faults = simfault.Faults[Op]

// Invite is an invite as the simulator holds it.
type Invite struct {
	ID                   string
	LocationID, FlowID   string
	FullName, Email      string
	Phone                string
	PrivateNotes         string
	ExpectedArrival      time.Time
	ExpectedDeparture    time.Time // zero when not given
	UserData             map[string]string
	NotifyVisitor        bool
	Created              time.Time
	Removed              bool
	EntryID              string // set by SignIn
	SecretToken, EditTok string
}

// Entry is a sign-in at a location's front desk.
type Entry struct {
	ID                 string
	LocationID, FlowID string
	InviteID           string // "" for a walk-in
	FullName, Email    string
	Phone              string
	Host, HostEmail    string
	UserData           map[string]string
	SignedIn           time.Time
	SignedOut          time.Time // zero until SignOut
}

// Webhook is one event the simulator POSTed.
type Webhook struct {
	Event     string
	PayloadID string
	Body      []byte
	Signature string
	// HTTPStatus is the receiver's answer; 0 with Err when none came.
	HTTPStatus int
	Err        error
}

// Sim is a simulated Envoy API. It is safe for concurrent use.
type Sim struct {
	handler http.Handler
	seed    Seed
	secret  []byte // webhook signing key
	client  *http.Client

	mu            sync.Mutex
	webhookURL    string
	beforeAnswer  bool
	tokens        map[string]time.Time // access token → expiry
	invites       map[string]*Invite
	inviteOrder   []string
	entries       map[string]*Entry
	nextID        int
	webhooks      []Webhook
	locationsByID map[string]*Location

	calls   [numOps]atomic.Int64
	faults  *simfault.Injector[Op]
	pending sync.WaitGroup // webhooks in flight; Add under mu while not closed

	closeOnce sync.Once
	closed    chan struct{}
	isClosed  bool // guarded by mu
}

// New builds a simulator from seed.
func New(seed Seed) (*Sim, error) {
	if err := seed.Validate(); err != nil {
		return nil, fmt.Errorf("envoysim: %w", err)
	}
	if seed.TokenTTL == 0 {
		seed.TokenTTL = time.Hour
	}
	seed.Locations = slices.Clone(seed.Locations)
	s := &Sim{
		seed:          seed,
		secret:        []byte(seed.WebhookSecret),
		client:        &http.Client{Timeout: 10 * time.Second},
		webhookURL:    seed.WebhookURL,
		tokens:        map[string]time.Time{},
		invites:       map[string]*Invite{},
		entries:       map[string]*Entry{},
		nextID:        9_000_001,
		locationsByID: map[string]*Location{},
		closed:        make(chan struct{}),
	}
	if len(s.secret) == 0 {
		s.secret = []byte(seed.ClientSecret)
	}
	for i := range seed.Locations {
		l := &seed.Locations[i]
		l.Flows = slices.Clone(l.Flows)
		s.locationsByID[l.ID] = l
	}
	s.faults = simfault.NewInjector("envoysim", func(op Op) bool { return op == OpToken }, s.closed, simfault.Answers{
		Write: func(w http.ResponseWriter, status int, _, message string) { writeError(w, status, message) },
	})
	s.handler = s.routes()
	return s, nil
}

// Handler returns the simulator's HTTP handler, paths at the root as
// https://app.envoy.com serves them.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close releases hung requests and waits for the webhooks in flight.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.isClosed = true
		close(s.closed)
		s.mu.Unlock()
	})
	s.pending.Wait()
}

// SetWebhookURL sets where events are POSTed; "" sends none.
func (s *Sim) SetWebhookURL(u string) {
	s.mu.Lock()
	s.webhookURL = u
	s.mu.Unlock()
}

// SetWebhookBeforeAnswer makes POST /api/v3/invites deliver
// invite_created before it answers, so that the webhook overtakes the
// API's answer.
func (s *Sim) SetWebhookBeforeAnswer(on bool) {
	s.mu.Lock()
	s.beforeAnswer = on
	s.mu.Unlock()
}

// SetFaults replaces the injected faults.
func (s *Sim) SetFaults(f Faults) error { return s.faults.Set(f) }

// Calls returns how many requests op received, faulted ones included.
func (s *Sim) Calls(op Op) int64 {
	if !op.Known() {
		return 0
	}
	return s.calls[op].Load()
}

// ExpireTokens makes every access token issued so far invalid, as their
// expiry or a revocation does: the next API call answers 401.
func (s *Sim) ExpireTokens() {
	s.mu.Lock()
	clear(s.tokens)
	s.mu.Unlock()
}

// Invites returns the invites created, removed ones included, oldest
// first.
func (s *Sim) Invites() []Invite {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Invite, 0, len(s.inviteOrder))
	for _, id := range s.inviteOrder {
		out = append(out, cloneInvite(s.invites[id]))
	}
	return out
}

// Invite returns invite id.
func (s *Sim) Invite(id string) (Invite, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.invites[id]
	if !ok {
		return Invite{}, false
	}
	return cloneInvite(inv), true
}

func cloneInvite(inv *Invite) Invite {
	c := *inv
	c.UserData = copyMap(inv.UserData)
	return c
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Webhooks returns the events sent, in the order they were answered.
func (s *Sim) Webhooks() []Webhook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.webhooks)
}

// WaitWebhooks waits until the webhooks in flight have been answered.
func (s *Sim) WaitWebhooks() { s.pending.Wait() }

// SignIn signs the invitee of inviteID in at the front desk: it creates
// an entry linked to the invite and delivers entry_sign_in before
// returning. It returns the entry id.
func (s *Sim) SignIn(inviteID string) (string, error) {
	s.mu.Lock()
	inv, ok := s.invites[inviteID]
	if !ok || inv.Removed {
		s.mu.Unlock()
		return "", fmt.Errorf("envoysim: no invite %s", inviteID)
	}
	e := &Entry{
		ID: s.newID(), LocationID: inv.LocationID, FlowID: inv.FlowID, InviteID: inv.ID,
		FullName: inv.FullName, Email: inv.Email, Phone: inv.Phone, UserData: copyMap(inv.UserData),
		SignedIn: time.Now().UTC().Truncate(time.Second),
	}
	inv.EntryID = e.ID
	s.entries[e.ID] = e
	body := s.entryEvent("entry_sign_in", e)
	s.mu.Unlock()
	return e.ID, s.deliverNow("entry_sign_in", e.ID, body)
}

// Visitor is a walk-in's details.
type Visitor struct {
	FullName, Email, Phone string
	FlowID                 string // "" for the location's first visitor flow
	Host, HostEmail        string
}

// WalkIn signs in a visitor without an invite at locationID and delivers
// entry_sign_in before returning. It returns the entry id.
func (s *Sim) WalkIn(locationID string, v Visitor) (string, error) {
	return s.walkIn(locationID, v, "entry_sign_in")
}

// walkIn records a walk-in entry at locationID and delivers event for it
// before returning the entry id.
func (s *Sim) walkIn(locationID string, v Visitor, event string) (string, error) {
	s.mu.Lock()
	loc, ok := s.locationsByID[locationID]
	if !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("envoysim: no location %s", locationID)
	}
	flow, ok := pickFlow(loc, v.FlowID)
	if !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("envoysim: no flow %s at location %s", v.FlowID, locationID)
	}
	e := &Entry{
		ID: s.newID(), LocationID: loc.ID, FlowID: flow.ID, FullName: v.FullName, Email: v.Email, Phone: v.Phone,
		Host: v.Host, HostEmail: v.HostEmail, SignedIn: time.Now().UTC().Truncate(time.Second),
	}
	s.entries[e.ID] = e
	body := s.entryEvent(event, e)
	s.mu.Unlock()
	return e.ID, s.deliverNow(event, e.ID, body)
}

// SignOut signs entry entryID out and delivers entry_sign_out before
// returning.
func (s *Sim) SignOut(entryID string) error {
	s.mu.Lock()
	e, ok := s.entries[entryID]
	if !ok || !e.SignedOut.IsZero() {
		s.mu.Unlock()
		return fmt.Errorf("envoysim: no entry %s signed in", entryID)
	}
	e.SignedOut = time.Now().UTC().Truncate(time.Second)
	if !e.SignedOut.After(e.SignedIn) {
		e.SignedOut = e.SignedIn.Add(time.Second)
	}
	body := s.entryEvent("entry_sign_out", e)
	s.mu.Unlock()
	return s.deliverNow("entry_sign_out", entryID, body)
}

// pickFlow returns the flow id of loc, or its first visitor flow for "".
func pickFlow(loc *Location, id string) (Flow, bool) {
	for _, f := range loc.Flows {
		if id == "" && !f.EmployeeCentric || f.ID == id {
			return f, true
		}
	}
	return Flow{}, false
}

// newID numbers invites and entries; s.mu is held.
func (s *Sim) newID() string {
	s.nextID++
	return strconv.Itoa(s.nextID)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sign is X-Envoy-Signature: base64 HMAC-SHA256 of body.
func (s *Sim) sign(body []byte) string {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// errDelivery: the receiver did not take an event delivered at once.
var errDelivery = errors.New("envoysim: deliver")

// deliverNow POSTs an event and waits for the answer; nil when no
// webhook URL is set or the receiver answered 2xx.
func (s *Sim) deliverNow(event, id string, body []byte) error {
	s.mu.Lock()
	u := s.webhookURL
	if u == "" || s.isClosed {
		s.mu.Unlock()
		return nil
	}
	s.pending.Add(1)
	s.mu.Unlock()
	defer s.pending.Done()
	wh := s.post(u, event, id, body)
	if wh.Err != nil {
		return fmt.Errorf("%w %s: %w", errDelivery, event, wh.Err)
	}
	if wh.HTTPStatus/100 != 2 {
		return fmt.Errorf("%w %s: the receiver answered %d", errDelivery, event, wh.HTTPStatus)
	}
	return nil
}

// deliverLater POSTs an event in the background.
func (s *Sim) deliverLater(event, id string, body []byte) {
	s.mu.Lock()
	u := s.webhookURL
	if u == "" || s.isClosed {
		s.mu.Unlock()
		return
	}
	s.pending.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.pending.Done()
		s.post(u, event, id, body)
	}()
}

func (s *Sim) post(u, event, id string, body []byte) Webhook {
	wh := Webhook{Event: event, PayloadID: id, Body: body, Signature: s.sign(body)}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Envoy-Signature", wh.Signature)
		req.Header.Set("User-Agent", "Envoy-Webhooks/1.0 (envoysim)")
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			wh.HTTPStatus = resp.StatusCode
			_ = resp.Body.Close()
		}
	}
	wh.Err = err
	s.mu.Lock()
	s.webhooks = append(s.webhooks, wh)
	s.mu.Unlock()
	return wh
}

// marshal encodes v; the simulator's own types always encode.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("envoysim: encode: " + err.Error())
	}
	return b
}
