// Package twilio sends SMS through Twilio's Programmable Messaging REST
// API (Messages, version 2010-04-01) and follows their delivery: Send
// creates a message, Status fetches it, ParseCallback verifies and reads
// the status callbacks Twilio POSTs, and Notifier delivers internal/notify
// messages (a visitor's guest link) to phone numbers.
//
// Send retries, with exponential backoff and jitter, on 429, 5xx and
// transport errors, for as long as the caller's deadline leaves room for
// the next wait (a dropped connection after Twilio accepted the message
// may then text it twice; Twilio has no idempotency key for messages, and
// a second link beats none). Refusals that are final for the recipient
// (21211 invalid number, 21610 unsubscribed, 21614 not a mobile) come
// back as a *RefusedError with the code and a reason a manager can act
// on, and are never retried; so are the other 4xx (*APIError: the
// account's configuration).
//
// The auth token is never logged and never part of an error; phone
// numbers and message bodies are never logged, and Twilio's own error
// messages (which quote the number) are redacted before they reach an
// error string.
//
// It imports internal/notify (for Notifier) and internal/redact only: no
// Redis, gRPC or the visitor service.
package twilio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/redact"
)

// DefaultBaseURL is Twilio's REST API.
const DefaultBaseURL = "https://api.twilio.com"

// Config configures a Client.
type Config struct {
	// BaseURL is Twilio's API; empty means DefaultBaseURL (tests and the
	// demo give the simulator's URL).
	BaseURL string
	// AccountSID is the account ("AC" and 32 hex digits).
	AccountSID string
	// AuthToken is the account's auth token: the Basic password and the
	// key of callback signatures. A secret: never logged.
	AuthToken string
	// From is the sender: a Twilio number of the account (E.164), a short
	// code or an alphanumeric sender ID. Exactly one of From and
	// MessagingServiceSID is set.
	From string
	// MessagingServiceSID ("MG…") lets Twilio pick the sender.
	MessagingServiceSID string
	// StatusCallback, when set, is the public URL Twilio POSTs delivery
	// statuses to (CallbackHandler or ParseCallback reads them).
	StatusCallback string
	// HTTPClient sends the requests; nil means a client with a 10 s
	// timeout per attempt.
	HTTPClient *http.Client
	// Logger receives retries and failures, without numbers, bodies or
	// the token; nil discards them.
	Logger *slog.Logger
	// Timeout bounds Send and Status when the context has no deadline;
	// zero means 30 s.
	Timeout time.Duration
	// MinBackoff is the first wait between attempts (doubled each time,
	// with jitter, up to MaxBackoff); zero means 250 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
}

var (
	accountSIDPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	serviceSIDPattern = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	messageSIDPattern = regexp.MustCompile(`^(SM|MM)[0-9a-fA-F]{32}$`)
	e164              = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
)

// String describes c without its auth token, so that logging a Config by
// mistake leaks nothing.
func (c Config) String() string {
	sender := "from " + c.From
	if c.MessagingServiceSID != "" {
		sender = "messaging service " + c.MessagingServiceSID
	}
	return fmt.Sprintf("twilio account %s (%s) at %s", c.AccountSID, sender, c.baseURL())
}

// LogValue implements slog.LogValuer, without the auth token.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Config) baseURL() string {
	if c.BaseURL == "" {
		return DefaultBaseURL
	}
	return strings.TrimRight(c.BaseURL, "/")
}

// Validate reports what is missing or malformed, in words an operator can
// act on.
func (c Config) Validate() error {
	switch {
	case !accountSIDPattern.MatchString(c.AccountSID):
		return errors.New("twilio: the account SID must be AC followed by 32 hex digits (Twilio console, Account Info)")
	case c.AuthToken == "":
		return errors.New("twilio: the auth token is empty (Twilio console, Account Info)")
	case (c.From == "") == (c.MessagingServiceSID == ""):
		return errors.New("twilio: set exactly one of the sender number (From) and the Messaging Service SID")
	case c.MessagingServiceSID != "" && !serviceSIDPattern.MatchString(c.MessagingServiceSID):
		return errors.New("twilio: the Messaging Service SID must be MG followed by 32 hex digits")
	}
	if u, err := url.Parse(c.baseURL()); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("twilio: base URL %q is not an http(s) URL", c.BaseURL)
	}
	if c.StatusCallback != "" {
		u, err := url.Parse(c.StatusCallback)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Contains(u.Hostname(), "_") {
			return fmt.Errorf("twilio: status callback %q must be an absolute http(s) URL without '_' in the host", c.StatusCallback)
		}
	}
	if c.Timeout < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 {
		return errors.New("twilio: timeout and backoffs must not be negative")
	}
	return nil
}

// Client talks to one Twilio account. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger
}

// New validates cfg and returns a Client. It does not connect.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	c := &Client{cfg: cfg, http: cfg.HTTPClient, log: cfg.Logger}
	if c.http == nil {
		c.http = &http.Client{Timeout: 10 * time.Second}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Status is a message's delivery status (Twilio's message_enum_status).
type Status string

// The statuses an outbound message goes through.
const (
	StatusAccepted    Status = "accepted"
	StatusScheduled   Status = "scheduled"
	StatusQueued      Status = "queued"
	StatusSending     Status = "sending"
	StatusSent        Status = "sent"
	StatusDelivered   Status = "delivered"
	StatusUndelivered Status = "undelivered"
	StatusFailed      Status = "failed"
	StatusCanceled    Status = "canceled"
	StatusRead        Status = "read"
)

// Final reports whether the status will not change again (read, on
// channels that report it, still can follow delivered; cloudkey's SMS
// stop at delivered).
func (s Status) Final() bool {
	switch s {
	case StatusDelivered, StatusUndelivered, StatusFailed, StatusCanceled, StatusRead:
		return true
	}
	return false
}

// Failed reports whether the message will not reach the recipient.
func (s Status) Failed() bool {
	return s == StatusUndelivered || s == StatusFailed || s == StatusCanceled
}

// Message is what Twilio says of a message.
type Message struct {
	SID    string
	Status Status
	// ErrorCode is Twilio's code when Status is undelivered or failed
	// (30003, 30006, 30007…); Reason says it in words.
	ErrorCode int
	// Segments is how many SMS the body took (0 until a Messaging
	// Service has picked a sender).
	Segments int
	Created  time.Time
	Sent     time.Time // zero until sent
}

// Reason is the manager-readable cause of a failed delivery, "" when the
// message has none.
func (m Message) Reason() string {
	if m.ErrorCode == 0 {
		return ""
	}
	return Reason(m.ErrorCode)
}

// Twilio error codes the package gives meaning to.
const (
	CodeAuthenticate      = 20003
	CodeTooManyRequests   = 20429
	CodeInvalidTo         = 21211
	CodeUnsubscribed      = 21610
	CodeNotMobile         = 21614
	CodeFromNotOwned      = 21606
	CodeBodyTooLong       = 21617
	CodeUnreachable       = 30003
	CodeUnknownHandset    = 30005
	CodeLandlineOrCarrier = 30006
	CodeCarrierViolation  = 30007
	CodeUnknownError      = 30008
)

// reasons are manager-readable words for Twilio's codes.
var reasons = map[int]string{
	CodeAuthenticate:      "Twilio refused the account SID and auth token: check them in the SMS settings",
	CodeFromNotOwned:      "the sender number is not an SMS-capable number of the Twilio account: check the SMS settings",
	21701:                 "the Messaging Service SID is not one of the Twilio account's: check the SMS settings",
	21609:                 "Twilio refused the status callback URL: check the public URL setting",
	CodeBodyTooLong:       "the message is longer than Twilio's 1,600 characters",
	CodeInvalidTo:         "the phone number is not a valid number: check it with the visitor, or use an email address",
	CodeUnsubscribed:      "the phone has unsubscribed from this sender's texts (it replied STOP): the visitor can text START to resume, or use an email address",
	CodeNotMobile:         "the phone number is not a mobile number (a landline?): use a mobile number or an email address",
	CodeUnreachable:       "the phone is unreachable (switched off or out of coverage): try again later or use an email address",
	CodeUnknownHandset:    "the carrier does not know this phone number: check it with the visitor",
	CodeLandlineOrCarrier: "the number is a landline or its carrier cannot be reached: use a mobile number or an email address",
	CodeCarrierViolation:  "the carrier filtered the message as spam (carrier violation): use an email address, or register the sender with the carriers",
	CodeUnknownError:      "the carrier gave no reason for not delivering the message",
}

// Reason is the manager-readable meaning of a Twilio error code.
func Reason(code int) string {
	if r, ok := reasons[code]; ok {
		return r
	}
	return "Twilio error " + strconv.Itoa(code) + " (https://www.twilio.com/docs/errors/" + strconv.Itoa(code) + ")"
}

// ErrRefused matches every *RefusedError.
var ErrRefused = errors.New("twilio: the recipient cannot receive texts")

// RefusedError is a refusal that is final for this recipient: sending
// again will not help, a manager has to use another number or email.
type RefusedError struct {
	Code   int    // 21211, 21610 or 21614
	Reason string // what a manager can do about it
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("twilio: message refused (error %d): %s", e.Code, e.Reason)
}

// Is makes a RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// DeliveryCode is the Twilio code, for callers that record why a message
// was refused without importing this package.
func (e *RefusedError) DeliveryCode() int { return e.Code }

// refusalCodes are the final refusals of a recipient.
var refusalCodes = map[int]bool{CodeInvalidTo: true, CodeUnsubscribed: true, CodeNotMobile: true}

// APIError is any other error answer from Twilio.
type APIError struct {
	HTTPStatus int
	Code       int    // Twilio's code; 0 when the body was not Twilio's
	Message    string // Twilio's message, phone numbers redacted
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("twilio: HTTP %d", e.HTTPStatus)
	if e.Code != 0 {
		msg += fmt.Sprintf(", error %d: %s", e.Code, Reason(e.Code))
	}
	if e.Message != "" {
		msg += " (Twilio: " + e.Message + ")"
	}
	return msg
}

// Temporary reports whether sending again later may succeed: 429 and 5xx.
func (e *APIError) Temporary() bool {
	return e.HTTPStatus == http.StatusTooManyRequests || e.HTTPStatus >= 500
}

// errorBody is Twilio's error answer.
type errorBody struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// messageBody is the part of the Message resource the client reads.
type messageBody struct {
	SID         string  `json:"sid"`
	Status      Status  `json:"status"`
	ErrorCode   *int    `json:"error_code"`
	NumSegments *string `json:"num_segments"`
	DateCreated *string `json:"date_created"`
	DateSent    *string `json:"date_sent"`
}

func (b messageBody) message() Message {
	m := Message{SID: b.SID, Status: b.Status}
	if b.ErrorCode != nil {
		m.ErrorCode = *b.ErrorCode
	}
	if b.NumSegments != nil {
		m.Segments, _ = strconv.Atoi(*b.NumSegments)
	}
	if b.DateCreated != nil {
		m.Created, _ = time.Parse(time.RFC1123Z, *b.DateCreated)
	}
	if b.DateSent != nil {
		m.Sent, _ = time.Parse(time.RFC1123Z, *b.DateSent)
	}
	return m
}

// Send texts body to the number to (E.164) and returns the message as
// Twilio created it (queued, or accepted with a Messaging Service). See
// the package comment for retries and errors.
func (c *Client) Send(ctx context.Context, to, body string) (Message, error) {
	if !e164.MatchString(to) {
		return Message{}, &RefusedError{Code: CodeInvalidTo, Reason: "the phone number is not in international format (+ and country code): " + Reason(CodeInvalidTo)}
	}
	if strings.TrimSpace(body) == "" {
		return Message{}, errors.New("twilio: the message body is empty")
	}
	form := url.Values{"To": {to}, "Body": {body}}
	if c.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", c.cfg.MessagingServiceSID)
	} else {
		form.Set("From", c.cfg.From)
	}
	if c.cfg.StatusCallback != "" {
		form.Set("StatusCallback", c.cfg.StatusCallback)
	}
	encoded := form.Encode()
	path := "/2010-04-01/Accounts/" + c.cfg.AccountSID + "/Messages.json"
	m, err := c.do(ctx, "send", http.MethodPost, path, func() io.Reader { return strings.NewReader(encoded) }, http.StatusCreated)
	if err != nil {
		return Message{}, err
	}
	c.log.DebugContext(ctx, "twilio: message created", "sid", m.SID, "status", m.Status, "segments", m.Segments)
	return m, nil
}

// Status fetches message sid, to follow its delivery when no status
// callback is configured (or one was missed). It retries as Send does.
func (c *Client) Status(ctx context.Context, sid string) (Message, error) {
	if !messageSIDPattern.MatchString(sid) {
		return Message{}, fmt.Errorf("twilio: %q is not a message SID (SM or MM and 32 hex digits)", sid)
	}
	path := "/2010-04-01/Accounts/" + c.cfg.AccountSID + "/Messages/" + sid + ".json"
	return c.do(ctx, "status", http.MethodGet, path, nil, http.StatusOK)
}

// do sends one API call, retrying temporary failures while ctx allows.
func (c *Client) do(ctx context.Context, op, method, path string, body func() io.Reader, want int) (Message, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	var last error // the previous attempt's error
	for attempt := 1; ; attempt++ {
		m, retryAfter, err := c.once(ctx, method, path, body, want)
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil && last != nil {
			// The deadline cut this attempt short: the previous answer
			// says more than "context deadline exceeded".
			return Message{}, fmt.Errorf("twilio: %s after %d attempts: %w (last answer: %w)", op, attempt, ctx.Err(), last)
		}
		last = err
		var api *APIError
		temporary := errors.As(err, &api) && api.Temporary() ||
			!errors.As(err, &api) && !errors.Is(err, ErrRefused) && !errors.Is(err, errDecode) && ctx.Err() == nil
		if !temporary {
			return Message{}, err
		}
		wait := c.backoff(attempt, retryAfter)
		deadline, _ := ctx.Deadline()
		if time.Until(deadline) < wait {
			c.log.WarnContext(ctx, "twilio: giving up before the deadline", "op", op, "attempts", attempt, "error", redact.Phones(err.Error()))
			return Message{}, fmt.Errorf("twilio: %s gave up after %d attempts, the deadline leaving no room for another: %w", op, attempt, err)
		}
		c.log.InfoContext(ctx, "twilio: retrying", "op", op, "attempt", attempt, "wait", wait, "error", redact.Phones(err.Error()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Message{}, fmt.Errorf("twilio: %s after %d attempts: %w (last: %w)", op, attempt, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// backoff is the wait before attempt+1: Retry-After when Twilio sent one,
// else MinBackoff doubled per attempt up to MaxBackoff, with "equal
// jitter" (half fixed, half random) so that senders that failed together
// do not retry together.
func (c *Client) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, c.cfg.MaxBackoff)
	}
	d := c.cfg.MinBackoff << min(attempt-1, 20)
	if d <= 0 || d > c.cfg.MaxBackoff {
		d = c.cfg.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

var errDecode = errors.New("twilio: unexpected answer")

// once makes one attempt. It returns the message, or an error with the
// Retry-After the answer asked for.
func (c *Client) once(ctx context.Context, method, path string, body func() io.Reader, want int) (Message, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		rd = body()
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.baseURL()+path, rd)
	if err != nil {
		return Message{}, 0, fmt.Errorf("twilio: build request: %w", err)
	}
	req.SetBasicAuth(c.cfg.AccountSID, c.cfg.AuthToken)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Message{}, 0, fmt.Errorf("twilio: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Message{}, 0, fmt.Errorf("twilio: read the answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode == want {
		var b messageBody
		if err := json.Unmarshal(raw, &b); err != nil || b.SID == "" || b.Status == "" {
			return Message{}, 0, fmt.Errorf("%w: HTTP %d to %s %s without a message resource", errDecode, resp.StatusCode, method, path)
		}
		return b.message(), 0, nil
	}
	var eb errorBody
	_ = json.NewDecoder(bytes.NewReader(raw)).Decode(&eb)
	if refusalCodes[eb.Code] && resp.StatusCode < 500 {
		return Message{}, 0, &RefusedError{Code: eb.Code, Reason: Reason(eb.Code)}
	}
	return Message{}, retryAfter(resp.Header.Get("Retry-After")), &APIError{
		HTTPStatus: resp.StatusCode, Code: eb.Code, Message: redact.Phones(eb.Message),
	}
}

// retryAfter reads a Retry-After header in seconds (Twilio sends no
// dates); 0 when absent or unreadable.
func retryAfter(h string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}
