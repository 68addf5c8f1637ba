package twiliosim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudkey/cloudkey/access/simfault"
)

// Op is one simulated Twilio operation. Its String is the operationId of
// Twilio's API description.
type Op int

// The simulated operations.
const (
	OpCreateMessage Op = iota // POST /2010-04-01/Accounts/{AccountSid}/Messages.json
	OpFetchMessage            // GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json

	numOps
)

func (op Op) String() string {
	switch op {
	case OpCreateMessage:
		return "CreateMessage"
	case OpFetchMessage:
		return "FetchMessage"
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// Known reports whether op is one of the simulator's operations.
func (op Op) Known() bool { return op >= 0 && op < numOps }

// Faults make the simulator behave like a slow or failing Twilio (see
// simfault.Faults). Twilio has no login operation: they apply to both
// operations.
type Faults = simfault.Faults[Op]

// Message statuses the simulator uses (Twilio's message_enum_status).
const (
	StatusAccepted    = "accepted"
	StatusQueued      = "queued"
	StatusSent        = "sent"
	StatusDelivered   = "delivered"
	StatusUndelivered = "undelivered"
	StatusFailed      = "failed"
)

// Message is a message as the simulator holds it.
type Message struct {
	SID                 string
	AccountSID          string
	To, From            string
	MessagingServiceSID string
	Body                string
	StatusCallback      string
	Status              string
	ErrorCode           int // set when Status is undelivered or failed
	Segments            int
	Created, Updated    time.Time
	Sent                time.Time // zero until sent
}

// Final reports whether the message's status will not change again.
func (m Message) Final() bool {
	switch m.Status {
	case StatusDelivered, StatusUndelivered, StatusFailed:
		return true
	}
	return false
}

// Callback is one status callback the simulator POSTed.
type Callback struct {
	MessageSID string
	URL        string
	Status     string
	// Params are the form parameters sent, Signature the
	// X-Twilio-Signature header.
	Params    map[string]string
	Signature string
	// HTTPStatus is the receiver's answer; 0 with Err when none came.
	HTTPStatus int
	Err        error
}

// Sim is a simulated Twilio Messages API. It is safe for concurrent use.
type Sim struct {
	handler  http.Handler
	accounts map[string]*Account
	refusals map[string]int // To → create-time error code
	endings  map[string]ending
	step     time.Duration
	client   *http.Client // posts the callbacks

	mu        sync.Mutex
	messages  map[string]*Message
	order     []string // message SIDs, oldest first
	callbacks []Callback

	calls  [numOps]atomic.Int64
	faults *simfault.Injector[Op]
	drops  atomic.Int64

	wg        sync.WaitGroup // auto-progress goroutines; Add under mu, while not closed
	closeOnce sync.Once
	closed    chan struct{}
}

// ending is how delivery ends for a number the seed marks.
type ending struct {
	status string
	code   int
}

// New builds a simulator from seed. It validates the seed and keeps no
// reference to it.
func New(seed Seed) (*Sim, error) {
	if err := seed.Validate(); err != nil {
		return nil, fmt.Errorf("twiliosim: %w", err)
	}
	s := &Sim{
		accounts: map[string]*Account{},
		refusals: map[string]int{},
		endings:  map[string]ending{},
		step:     seed.StepDelay,
		client:   &http.Client{Timeout: 10 * time.Second},
		messages: map[string]*Message{},
		closed:   make(chan struct{}),
	}
	for _, a := range seed.Accounts {
		a.Numbers = slices.Clone(a.Numbers)
		a.MessagingServices = slices.Clone(a.MessagingServices)
		s.accounts[a.SID] = &a
	}
	for _, n := range seed.Invalid {
		s.refusals[n] = CodeInvalidTo
	}
	for _, n := range seed.Unsubscribed {
		s.refusals[n] = CodeUnsubscribed
	}
	for _, n := range seed.NotMobile {
		s.refusals[n] = CodeNotMobile
	}
	for n, c := range seed.Undelivered {
		s.endings[n] = ending{StatusUndelivered, c}
	}
	for n, c := range seed.Failed {
		s.endings[n] = ending{StatusFailed, c}
	}
	s.faults = simfault.NewInjector("twiliosim", func(Op) bool { return false }, s.closed, simfault.Answers{
		Write: func(w http.ResponseWriter, status int, code, message string) {
			c := 0
			_, _ = fmt.Sscan(code, &c)
			writeError(w, status, c, message)
		},
		Codes: map[int]string{
			http.StatusInternalServerError: "20500",
			http.StatusBadGateway:          "20500",
			http.StatusServiceUnavailable:  "20503",
			http.StatusGatewayTimeout:      "20500",
			http.StatusTooManyRequests:     "20429",
		},
	})
	s.handler = s.routes()
	return s, nil
}

// Handler returns the simulator's HTTP handler: Twilio's paths at the
// root, as https://api.twilio.com serves them.
func (s *Sim) Handler() http.Handler { return s.handler }

// Close stops moving messages on their own, releases requests held by
// Hang or delayed by latency (they get 503) and waits for callbacks in
// flight. The handler keeps serving otherwise; Server.Close also stops
// the listener.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		// Under mu, so that no create starts a goroutine after Wait.
		s.mu.Lock()
		close(s.closed)
		s.mu.Unlock()
	})
	s.wg.Wait()
}

// SetFaults replaces the injected faults; it is safe to call while the
// simulator serves.
func (s *Sim) SetFaults(f Faults) error { return s.faults.Set(f) }

// Faults returns the faults in force.
func (s *Sim) Faults() Faults { return s.faults.Get() }

// DropNext makes the next n requests lose their connection without an
// answer, as a network failure does; it adds to drops still pending.
func (s *Sim) DropNext(n int) { s.drops.Add(int64(n)) }

// Calls returns how many requests op received, faulted ones included.
func (s *Sim) Calls(op Op) int64 {
	if !op.Known() {
		return 0
	}
	return s.calls[op].Load()
}

// Messages returns every message created, oldest first.
func (s *Sim) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.order))
	for _, sid := range s.order {
		out = append(out, *s.messages[sid])
	}
	return out
}

// MessagesTo returns the messages created for the number to, oldest
// first.
func (s *Sim) MessagesTo(to string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// Message returns the message sid.
func (s *Sim) Message(sid string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[sid]
	if !ok {
		return Message{}, false
	}
	return *m, true
}

// Callbacks returns the status callbacks posted, in order.
func (s *Sim) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.callbacks)
}

// Advance moves message sid one status further and posts its status
// callback, if it has one, before returning. It reports the new status;
// a message already final does not move.
func (s *Sim) Advance(sid string) (string, error) {
	s.mu.Lock()
	m, ok := s.messages[sid]
	if !ok {
		s.mu.Unlock()
		return "", fmt.Errorf("twiliosim: no message %s", sid)
	}
	if m.Final() {
		st := m.Status
		s.mu.Unlock()
		return st, nil
	}
	s.next(m)
	snap := *m
	acct := s.accounts[m.AccountSID]
	s.mu.Unlock()
	if snap.StatusCallback != "" {
		s.postCallback(snap, acct.AuthToken)
	}
	return snap.Status, nil
}

// Settle moves every message to its final status, posting each callback
// on the way.
func (s *Sim) Settle() {
	for _, m := range s.Messages() {
		for {
			st, err := s.Advance(m.SID)
			if err != nil || (Message{Status: st}).Final() {
				break
			}
		}
	}
}

// next moves m one step; s.mu is held.
func (s *Sim) next(m *Message) {
	now := time.Now()
	end, marked := s.endings[m.To]
	switch m.Status {
	case StatusAccepted:
		m.Status = StatusQueued
	case StatusQueued:
		if marked && end.status == StatusFailed {
			m.Status, m.ErrorCode = StatusFailed, end.code
		} else {
			m.Status, m.Sent = StatusSent, now
		}
	case StatusSent:
		if marked {
			m.Status, m.ErrorCode = end.status, end.code
		} else {
			m.Status = StatusDelivered
		}
	}
	m.Updated = now
}

// progress moves m on its own every step delay until it is final or the
// simulator closes.
func (s *Sim) progress(sid string) {
	defer s.wg.Done()
	t := time.NewTimer(s.step)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		st, err := s.Advance(sid)
		if err != nil || (Message{Status: st}).Final() {
			return
		}
		t.Reset(s.step)
	}
}

// newSID returns prefix and 32 random hex digits.
func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
