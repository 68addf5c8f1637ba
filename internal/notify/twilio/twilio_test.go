package twilio

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/internal/notify/twiliosim"
	"github.com/cloudkey/cloudkey/internal/notify/twiliosim/twiliospec"
)

const mobile = "+14155550100"

// fixture is the simulator (manual delivery), a client whose traffic is
// validated against Twilio's spec, its log, and a status callback server
// serving the client's CallbackHandler.
type fixture struct {
	sim     *twiliosim.Server
	client  *Client
	log     *bytes.Buffer
	updates chan StatusUpdate
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func newFixture(t *testing.T, edit func(*Config)) *fixture {
	t.Helper()
	seed := twiliosim.DemoSeed()
	seed.StepDelay = 0
	sim, err := twiliosim.Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	f := &fixture{sim: sim, updates: make(chan StatusUpdate, 16)}
	mux := http.NewServeMux()
	cb := httptest.NewServer(mux)
	t.Cleanup(cb.Close)
	logs := &syncBuffer{}
	cfg := Config{
		BaseURL: sim.URL, AccountSID: twiliosim.DemoAccountSID, AuthToken: twiliosim.DemoAuthToken,
		From: twiliosim.DemoFrom, StatusCallback: cb.URL + "/sms/status?property=harbor-view",
		HTTPClient: &http.Client{Transport: twiliospec.Load(t).Transport(t, nil)},
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	f.client, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/sms/status", f.client.CallbackHandler(func(_ context.Context, u StatusUpdate) error {
		f.updates <- u
		return nil
	}))
	t.Cleanup(func() {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		for _, secret := range []string{twiliosim.DemoAuthToken, "4155550100", "guest link"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("the log holds %q:\n%s", secret, logs.String())
			}
		}
	})
	f.log = &logs.Buffer
	return f
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSendDelivered(t *testing.T) {
	for _, service := range []bool{false, true} {
		t.Run(map[bool]string{false: "from number", true: "messaging service"}[service], func(t *testing.T) {
			f := newFixture(t, func(c *Config) {
				if service {
					c.From, c.MessagingServiceSID = "", twiliosim.DemoMessagingServiceSID
				}
			})
			m, err := f.client.Send(ctxTimeout(t, 10*time.Second), mobile, "Your guest link: https://example.com/g/abcd")
			if err != nil {
				t.Fatal(err)
			}
			wantFirst := map[bool]Status{false: StatusQueued, true: StatusAccepted}[service]
			if m.Status != wantFirst || m.SID == "" || m.Created.IsZero() {
				t.Fatalf("Send = %+v, want %s", m, wantFirst)
			}
			sent := f.sim.MessagesTo(mobile)
			if len(sent) != 1 || sent[0].Body != "Your guest link: https://example.com/g/abcd" {
				t.Fatalf("simulator holds %+v", sent)
			}
			f.sim.Settle()
			got, err := f.client.Status(ctxTimeout(t, 10*time.Second), m.SID)
			if err != nil || got.Status != StatusDelivered || got.Sent.IsZero() || got.Segments != 1 || got.Reason() != "" {
				t.Fatalf("Status = %+v, %v", got, err)
			}
			// Every callback reached the handler and verified; the last
			// says delivered.
			var last StatusUpdate
			for range len(f.sim.Callbacks()) {
				last = <-f.updates
			}
			if last.MessageSID != m.SID || last.Status != StatusDelivered || last.ErrorCode != 0 {
				t.Errorf("last update %+v", last)
			}
			for _, cb := range f.sim.Callbacks() {
				if cb.HTTPStatus != http.StatusNoContent {
					t.Errorf("callback %s answered %d", cb.Status, cb.HTTPStatus)
				}
			}
		})
	}
}

func TestSendRefusals(t *testing.T) {
	tests := []struct {
		to   string
		code int
	}{
		{twiliosim.DemoInvalidNumber, CodeInvalidTo},
		{twiliosim.DemoUnsubscribedNumber, CodeUnsubscribed},
		{twiliosim.DemoLandlineNumber, CodeNotMobile},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			f := newFixture(t, nil)
			_, err := f.client.Send(ctxTimeout(t, 10*time.Second), tt.to, "hello")
			var re *RefusedError
			if !errors.As(err, &re) || re.Code != tt.code || !errors.Is(err, ErrRefused) {
				t.Fatalf("Send = %v, want a RefusedError %d", err, tt.code)
			}
			if re.Reason != Reason(tt.code) || strings.Contains(err.Error(), "5005550") {
				t.Errorf("error %q: want the reason and no number", err)
			}
			if n := f.sim.Calls(twiliosim.OpCreateMessage); n != 1 {
				t.Errorf("%d create calls, want 1 (a final refusal is not retried)", n)
			}
		})
	}
	t.Run("not E.164", func(t *testing.T) {
		f := newFixture(t, nil)
		if _, err := f.client.Send(ctxTimeout(t, time.Second), "0612345678", "hello"); !errors.Is(err, ErrRefused) {
			t.Fatalf("Send = %v", err)
		}
		if n := f.sim.Calls(twiliosim.OpCreateMessage); n != 0 {
			t.Errorf("%d create calls for a number Twilio cannot take", n)
		}
	})
}

func TestSendConfigurationError(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		code int
	}{
		{"wrong token", func(c *Config) { c.AuthToken = "wrong" }, CodeAuthenticate},
		{"sender not the account's", func(c *Config) { c.From = "+15005550099" }, CodeFromNotOwned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.edit)
			_, err := f.client.Send(ctxTimeout(t, 10*time.Second), mobile, "hello")
			var api *APIError
			if !errors.As(err, &api) || api.Code != tt.code || api.Temporary() || errors.Is(err, ErrRefused) {
				t.Fatalf("Send = %v, want an APIError %d", err, tt.code)
			}
			if !strings.Contains(err.Error(), "SMS settings") || strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q: want an actionable message without the token", err)
			}
			if n := f.sim.Calls(twiliosim.OpCreateMessage); n != 1 {
				t.Errorf("%d create calls, want 1", n)
			}
		})
	}
}

func TestSendRetries(t *testing.T) {
	tests := []struct {
		name   string
		faults twiliosim.Faults
		drops  int
		calls  int64
	}{
		{"429 then success", twiliosim.Faults{RateLimitRate: 1, MaxFaults: 2}, 0, 3},
		{"503 then success", twiliosim.Faults{ErrorRate: 1, MaxFaults: 1}, 0, 2},
		{"dropped connection then success", twiliosim.Faults{}, 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if err := f.sim.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			f.sim.DropNext(tt.drops)
			m, err := f.client.Send(ctxTimeout(t, 10*time.Second), mobile, "hello")
			if err != nil || m.Status != StatusQueued {
				t.Fatalf("Send = %+v, %v", m, err)
			}
			if n := f.sim.Calls(twiliosim.OpCreateMessage); n != tt.calls {
				t.Errorf("%d create calls, want %d", n, tt.calls)
			}
			if n := len(f.sim.MessagesTo(mobile)); n != 1 {
				t.Errorf("%d messages, want 1", n)
			}
		})
	}
}

func TestSendGivesUpAtTheDeadline(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MinBackoff, c.MaxBackoff = 5*time.Millisecond, 5*time.Millisecond })
	if err := f.sim.SetFaults(twiliosim.Faults{ErrorRate: 1, ErrorStatus: 500}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 300*time.Millisecond)
	_, err := f.client.Send(ctx, mobile, "hello")
	var api *APIError
	if !errors.As(err, &api) || api.HTTPStatus != 500 || !api.Temporary() {
		t.Fatalf("Send = %v, want the last 500", err)
	}
	if n := f.sim.Calls(twiliosim.OpCreateMessage); n < 2 {
		t.Errorf("%d create calls: want retries before giving up", n)
	}
	if len(f.sim.Messages()) != 0 {
		t.Error("a message was created")
	}
}

func TestDeliveryFailureStatus(t *testing.T) {
	for _, tt := range []struct {
		to   string
		code int
	}{
		{twiliosim.DemoUnreachableNumber, CodeLandlineOrCarrier},
		{twiliosim.DemoFilteredNumber, CodeCarrierViolation},
	} {
		t.Run(tt.to, func(t *testing.T) {
			f := newFixture(t, nil)
			m, err := f.client.Send(ctxTimeout(t, 10*time.Second), tt.to, "hello")
			if err != nil {
				t.Fatal(err)
			}
			f.sim.Settle()
			got, err := f.client.Status(ctxTimeout(t, 10*time.Second), m.SID)
			if err != nil || got.Status != StatusUndelivered || !got.Status.Failed() || got.ErrorCode != tt.code || got.Reason() != Reason(tt.code) {
				t.Fatalf("Status = %+v, %v", got, err)
			}
			var last StatusUpdate
			for range len(f.sim.Callbacks()) {
				last = <-f.updates
			}
			if last.Status != StatusUndelivered || last.ErrorCode != tt.code || last.Reason() == "" {
				t.Errorf("last update %+v", last)
			}
		})
	}
}

func TestCallbackSignature(t *testing.T) {
	f := newFixture(t, nil)
	cbURL := f.client.cfg.StatusCallback
	params := url.Values{
		"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "SmsSid": {"SM0123456789abcdef0123456789abcdef"},
		"AccountSid": {twiliosim.DemoAccountSID}, "MessageStatus": {"delivered"}, "To": {mobile}, "NewParam": {"x"},
	}
	good := Signature(twiliosim.DemoAuthToken, cbURL, params)
	// The simulator's independent implementation agrees.
	flat := map[string]string{}
	for k := range params {
		flat[k] = params.Get(k)
	}
	if sim := twiliosim.Sign(twiliosim.DemoAuthToken, cbURL, flat); sim != good {
		t.Fatalf("simulator signs %q, client %q", sim, good)
	}
	altered := url.Values{}
	for k, v := range params {
		altered[k] = v
	}
	altered.Set("MessageStatus", "undelivered")
	tests := []struct {
		name   string
		url    string
		params url.Values
		sig    string
		want   error
	}{
		{"good", cbURL, params, good, nil},
		{"wrong token", cbURL, params, Signature("other", cbURL, params), ErrBadSignature},
		{"param altered", cbURL, altered, good, ErrBadSignature},
		{"other URL", cbURL + "&x=1", params, good, ErrBadSignature},
		{"missing", cbURL, params, "", ErrBadSignature},
		{"not base64", cbURL, params, "%%%", ErrBadSignature},
		{"other account", cbURL, withParam(params, "AccountSid", "AC99999999999999999999999999999999"), Signature(twiliosim.DemoAuthToken, cbURL, withParam(params, "AccountSid", "AC99999999999999999999999999999999")), ErrMalformedCallback},
		{"no status", cbURL, withParam(params, "MessageStatus", ""), Signature(twiliosim.DemoAuthToken, cbURL, withParam(params, "MessageStatus", "")), ErrMalformedCallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := f.client.ParseCallback(tt.url, tt.params, tt.sig)
			if !errors.Is(err, tt.want) || (tt.want == nil && (u.Status != StatusDelivered || u.MessageSID != params.Get("MessageSid"))) {
				t.Errorf("ParseCallback = %+v, %v; want %v", u, err, tt.want)
			}
		})
	}
	// Over HTTP: a forged callback is refused with 403 and never handled.
	resp, err := http.PostForm(cbURL, params)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(f.updates) != 0 {
		t.Errorf("unsigned callback = %d, %d updates", resp.StatusCode, len(f.updates))
	}
	req, _ := http.NewRequest("POST", cbURL, strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(SignatureHeader, good)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || (<-f.updates).Status != StatusDelivered {
		t.Errorf("signed callback = %d", resp.StatusCode)
	}
}

func withParam(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vs := range v {
		out[key] = vs
	}
	out.Set(k, val)
	return out
}

func TestValidSignatureTwilioVector(t *testing.T) {
	// twilio-go request_validator_test.go, recomputed in SMS_NOTES.md.
	params := url.Values{
		"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"}, "Caller": {"+14158675309"},
		"From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"},
	}
	const sig = "vOEb5UThFn24KEfnOFLQY2AE5FY="
	for _, u := range []string{
		"https://mycompany.com/myapp.php?foo=1&bar=2",
		"https://mycompany.com:443/myapp.php?foo=1&bar=2", // default port: accepted either way
	} {
		if !ValidSignature("12345", u, params, sig) {
			t.Errorf("ValidSignature(%s) = false", u)
		}
	}
	if ValidSignature("12345", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", params, sig) {
		t.Error("another port verified")
	}
	if ValidSignature("", "https://mycompany.com/myapp.php?foo=1&bar=2", params, sig) {
		t.Error("an empty token verified")
	}
}

func TestNotifier(t *testing.T) {
	f := newFixture(t, nil)
	var sentSID string
	n := NewNotifier(f.client, func(_ context.Context, to string, m Message) { sentSID = m.SID })
	var _ notify.Notifier = n
	msg := notify.Message{To: mobile, Subject: "Your guest pass", Body: "Hello Ada,\n\nOpen this guest link:", Link: "https://example.com/g/Qx7pV2sQmB0c9k3h"}
	if err := n.Send(ctxTimeout(t, 10*time.Second), msg); err != nil {
		t.Fatal(err)
	}
	got := f.sim.MessagesTo(mobile)
	if len(got) != 1 || got[0].Body != msg.Text() || got[0].SID != sentSID {
		t.Fatalf("sent %+v (sid %s)", got, sentSID)
	}
	tests := []struct {
		to   string
		want error
	}{
		{"ada@example.com", notify.ErrUnsupportedRecipient},
		{"06 12 34 56 78", notify.ErrInvalidMessage},
		{twiliosim.DemoUnsubscribedNumber, notify.ErrInvalidMessage},
	}
	for _, tt := range tests {
		msg.To = tt.to
		if err := n.Send(ctxTimeout(t, 10*time.Second), msg); !errors.Is(err, tt.want) {
			t.Errorf("Send(%s) = %v, want %v", tt.to, err, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{AccountSID: twiliosim.DemoAccountSID, AuthToken: "secret-token", From: twiliosim.DemoFrom}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := good.String(); strings.Contains(s, "secret-token") || !strings.Contains(s, good.AccountSID) {
		t.Errorf("String() = %q", s)
	}
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("config", "twilio", good)
	if strings.Contains(b.String(), "secret-token") {
		t.Errorf("logged config holds the token: %s", b.String())
	}
	bad := []func(*Config){
		func(c *Config) { c.AccountSID = "AC1" },
		func(c *Config) { c.AuthToken = "" },
		func(c *Config) { c.From = "" },
		func(c *Config) { c.MessagingServiceSID = twiliosim.DemoMessagingServiceSID },
		func(c *Config) { c.From, c.MessagingServiceSID = "", "MG1" },
		func(c *Config) { c.StatusCallback = "https://my_host/cb" },
		func(c *Config) { c.StatusCallback = "/relative" },
		func(c *Config) { c.BaseURL = "ftp://x" },
	}
	for i, edit := range bad {
		c := good
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("bad config %d accepted", i)
		}
	}
}
