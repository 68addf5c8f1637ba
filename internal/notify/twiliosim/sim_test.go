package twiliosim

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/notify/twiliosim/twiliospec"
)

const (
	mobile = "+14155550100"
	other  = "+14155550101"
)

// fixture is a simulator on a loopback port with manual delivery, a
// client whose traffic is validated against Twilio's spec, and a
// receiver for status callbacks.
type fixture struct {
	srv      *Server
	checked  *http.Client
	raw      *http.Client
	receiver *receiver
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	seed := DemoSeed()
	seed.StepDelay = 0
	seed.Failed = map[string]int{"+15005550032": 30003}
	srv, err := Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	spec := twiliospec.Load(t)
	rc := &receiver{}
	rs := httptest.NewServer(rc)
	t.Cleanup(rs.Close)
	rc.url = rs.URL + "/sms/status?property=harbor-view"
	return &fixture{
		srv:      srv,
		checked:  &http.Client{Transport: spec.Transport(t, nil)},
		raw:      &http.Client{Transport: spec.ResponseTransport(t, nil)},
		receiver: rc,
	}
}

// receiver keeps the status callbacks it is sent.
type receiver struct {
	url  string
	mu   sync.Mutex
	got  []url.Values
	sigs []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, r.PostForm)
	rc.sigs = append(rc.sigs, r.Header.Get("X-Twilio-Signature"))
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

type answer struct {
	status int
	body   []byte
}

func (a answer) message(t *testing.T) messageJSON {
	t.Helper()
	var m messageJSON
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("message body %s: %v", a.body, err)
	}
	return m
}

func (a answer) apiErr(t *testing.T) ErrorBody {
	t.Helper()
	var e ErrorBody
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("error body %s: %v", a.body, err)
	}
	return e
}

func (f *fixture) do(t *testing.T, c *http.Client, method, path, user, pass string, form url.Values) (answer, error) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, b}, nil
}

func messagesPath(acct string) string { return "/2010-04-01/Accounts/" + acct + "/Messages.json" }

func (f *fixture) create(t *testing.T, c *http.Client, form url.Values) answer {
	t.Helper()
	a, err := f.do(t, c, "POST", messagesPath(DemoAccountSID), DemoAccountSID, DemoAuthToken, form)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (f *fixture) fetch(t *testing.T, sid string) answer {
	t.Helper()
	a, err := f.do(t, f.checked, "GET", "/2010-04-01/Accounts/"+DemoAccountSID+"/Messages/"+sid+".json", DemoAccountSID, DemoAuthToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func send(to, callback string) url.Values {
	v := url.Values{"To": {to}, "From": {DemoFrom}, "Body": {"Your guest pass for Harbor View: https://example.com/g/abc"}}
	if callback != "" {
		v.Set("StatusCallback", callback)
	}
	return v
}

func TestDeliveredWithCallbacks(t *testing.T) {
	f := newFixture(t)
	a := f.create(t, f.checked, send(mobile, f.receiver.url))
	if a.status != http.StatusCreated {
		t.Fatalf("create = %d %s", a.status, a.body)
	}
	m := a.message(t)
	if m.Status != StatusQueued || *m.To != mobile || *m.From != DemoFrom || *m.NumSegments != "1" || m.Price != nil {
		t.Fatalf("created %+v", m)
	}
	sid := *m.SID
	for _, want := range []string{StatusSent, StatusDelivered} {
		if st, err := f.srv.Advance(sid); err != nil || st != want {
			t.Fatalf("Advance = %q, %v; want %s", st, err, want)
		}
		got := f.fetch(t, sid).message(t)
		if got.Status != want || got.DateSent == nil || got.Price == nil {
			t.Fatalf("fetched %+v, want %s with date_sent and price", got, want)
		}
	}
	if st, _ := f.srv.Advance(sid); st != StatusDelivered {
		t.Errorf("a delivered message moved to %s", st)
	}
	f.receiver.mu.Lock()
	defer f.receiver.mu.Unlock()
	if len(f.receiver.got) != 2 {
		t.Fatalf("callbacks = %v, want sent and delivered (none for queued)", f.receiver.got)
	}
	for i, want := range []string{StatusSent, StatusDelivered} {
		p := f.receiver.got[i]
		if p.Get("MessageStatus") != want || p.Get("SmsStatus") != want || p.Get("MessageSid") != sid ||
			p.Get("AccountSid") != DemoAccountSID || p.Get("To") != mobile || p.Get("ErrorCode") != "" {
			t.Errorf("callback %d = %v", i, p)
		}
		if sig := expectedSignature(DemoAuthToken, f.receiver.url, p); f.receiver.sigs[i] != sig {
			t.Errorf("callback %d signature %q, want %q", i, f.receiver.sigs[i], sig)
		}
	}
	if cbs := f.srv.Callbacks(); len(cbs) != 2 || cbs[1].HTTPStatus != http.StatusNoContent || cbs[1].Err != nil {
		t.Errorf("Callbacks() = %+v", cbs)
	}
	if got := f.srv.MessagesTo(mobile); len(got) != 1 || got[0].SID != sid || got[0].Body == "" {
		t.Errorf("MessagesTo = %+v", got)
	}
	if len(f.srv.MessagesTo(other)) != 0 {
		t.Error("MessagesTo(other) is not empty")
	}
}

// expectedSignature is Twilio's algorithm written out independently of
// Sign, over the form values as received.
func expectedSignature(token, u string, p url.Values) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := u
	for _, k := range keys {
		s += k + p.Get(k)
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestSignTwilioVector(t *testing.T) {
	// twilio-go request_validator_test.go, recomputed in SMS_NOTES.md.
	params := map[string]string{
		"Digits": "1234", "CallSid": "CA1234567890ABCDE", "To": "+18005551212", "Caller": "+14158675309",
		"From": "+14158675309", "ReasonConferenceEnded": "test", "Reason": "Participant",
	}
	if got := Sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params); got != "vOEb5UThFn24KEfnOFLQY2AE5FY=" {
		t.Errorf("Sign = %q", got)
	}
}

func TestDeliveryFailures(t *testing.T) {
	tests := []struct {
		to       string
		statuses []string
		code     int
	}{
		{DemoUnreachableNumber, []string{StatusSent, StatusUndelivered}, 30006},
		{DemoFilteredNumber, []string{StatusSent, StatusUndelivered}, 30007},
		{"+15005550032", []string{StatusFailed}, 30003},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			f := newFixture(t)
			sid := *f.create(t, f.checked, send(tt.to, f.receiver.url)).message(t).SID
			for _, want := range tt.statuses {
				if st, err := f.srv.Advance(sid); err != nil || st != want {
					t.Fatalf("Advance = %q, %v; want %s", st, err, want)
				}
			}
			m := f.fetch(t, sid).message(t)
			if m.ErrorCode == nil || *m.ErrorCode != tt.code || m.ErrorMessage == nil {
				t.Errorf("fetched %+v, want error_code %d", m, tt.code)
			}
			f.receiver.mu.Lock()
			last := f.receiver.got[len(f.receiver.got)-1]
			f.receiver.mu.Unlock()
			if last.Get("ErrorCode") != strconv.Itoa(tt.code) || last.Get("MessageStatus") != tt.statuses[len(tt.statuses)-1] {
				t.Errorf("last callback %v", last)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	with := func(edit func(url.Values)) url.Values {
		v := send(mobile, "")
		edit(v)
		return v
	}
	tests := []struct {
		name   string
		form   url.Values
		status int
		code   int
	}{
		{"invalid number (seed)", send(DemoInvalidNumber, ""), 400, CodeInvalidTo},
		{"not E.164", send("555-0100", ""), 400, CodeInvalidTo},
		{"to equals from", send(DemoFrom, ""), 400, CodeInvalidTo},
		{"unsubscribed", send(DemoUnsubscribedNumber, ""), 400, CodeUnsubscribed},
		{"landline", send(DemoLandlineNumber, ""), 400, CodeNotMobile},
		{"no To", with(func(v url.Values) { v.Del("To") }), 400, CodeToRequired},
		{"no sender", with(func(v url.Values) { v.Del("From") }), 400, CodeFromRequired},
		{"no body", with(func(v url.Values) { v.Del("Body") }), 400, CodeBodyRequired},
		{"body too long", with(func(v url.Values) { v.Set("Body", strings.Repeat("a", 1601)) }), 400, CodeBodyTooLong},
		{"from not owned", with(func(v url.Values) { v.Set("From", "+15005550099") }), 400, CodeFromNotOwned},
		{"unknown service", with(func(v url.Values) {
			v.Del("From")
			v.Set("MessagingServiceSid", "MG00000000000000000000000000000000")
		}), 400, CodeUnknownService},
		{"callback host with underscore", with(func(v url.Values) { v.Set("StatusCallback", "https://my_host.example.com/cb") }), 400, CodeBadStatusCallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := f.create(t, f.raw, tt.form)
			if a.status != tt.status || a.apiErr(t).Code != tt.code {
				t.Errorf("= %d %s, want %d code %d", a.status, a.body, tt.status, tt.code)
			}
		})
	}
	if n := len(f.srv.Messages()); n != 0 {
		t.Errorf("%d messages created by refused requests", n)
	}
	auth := []struct{ name, user, pass string }{
		{"no credentials", "", ""},
		{"wrong token", DemoAccountSID, "nope"},
		{"other account", "AC99999999999999999999999999999999", DemoAuthToken},
	}
	for _, tt := range auth {
		t.Run(tt.name, func(t *testing.T) {
			a, err := f.do(t, f.raw, "POST", messagesPath(DemoAccountSID), tt.user, tt.pass, send(mobile, ""))
			if err != nil || a.status != http.StatusUnauthorized || a.apiErr(t).Code != CodeAuthenticate {
				t.Errorf("= %d %s, %v; want 401 code 20003", a.status, a.body, err)
			}
		})
	}
	if a := f.fetch(t, "SM00000000000000000000000000000000"); a.status != http.StatusNotFound || a.apiErr(t).Code != CodeNotFound {
		t.Errorf("fetch unknown = %d %s", a.status, a.body)
	}
}

func TestMessagingService(t *testing.T) {
	f := newFixture(t)
	form := url.Values{"To": {mobile}, "MessagingServiceSid": {DemoMessagingServiceSID}, "Body": {"hello"}}
	m := f.create(t, f.checked, form).message(t)
	if m.Status != StatusAccepted || *m.NumSegments != "0" || *m.MessagingServiceSID != DemoMessagingServiceSID {
		t.Fatalf("created %+v", m)
	}
	f.srv.Settle()
	got := f.fetch(t, *m.SID).message(t)
	if got.Status != StatusDelivered || *got.NumSegments != "1" || *got.From != DemoFrom {
		t.Errorf("settled %+v", got)
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t)
	if err := f.srv.SetFaults(Faults{RateLimitRate: 1, MaxFaults: 1, RetryAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	a := f.create(t, f.checked, send(mobile, ""))
	if a.status != http.StatusTooManyRequests || a.apiErr(t).Code != CodeTooManyRequests {
		t.Fatalf("first = %d %s, want 429 20429", a.status, a.body)
	}
	if a := f.create(t, f.checked, send(mobile, "")); a.status != http.StatusCreated {
		t.Fatalf("after MaxFaults = %d %s", a.status, a.body)
	}
	if err := f.srv.SetFaults(Faults{ErrorRate: 1, ErrorStatus: 500}); err != nil {
		t.Fatal(err)
	}
	if a := f.create(t, f.checked, send(mobile, "")); a.status != 500 || a.apiErr(t).Code != 20500 {
		t.Fatalf("5xx = %d %s", a.status, a.body)
	}
	if err := f.srv.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	f.srv.DropNext(1)
	if _, err := f.do(t, f.checked, "POST", messagesPath(DemoAccountSID), DemoAccountSID, DemoAuthToken, send(mobile, "")); err == nil {
		t.Fatal("a dropped connection gave an answer")
	}
	if a := f.create(t, f.checked, send(mobile, "")); a.status != http.StatusCreated {
		t.Fatalf("after the drop = %d %s", a.status, a.body)
	}
	if n := len(f.srv.MessagesTo(mobile)); n != 2 {
		t.Errorf("%d messages, want 2 (faulted and dropped requests create none)", n)
	}
	if got := f.srv.Calls(OpCreateMessage); got != 5 {
		t.Errorf("Calls(create) = %d, want 5", got)
	}
}

func TestAutoProgress(t *testing.T) {
	seed := DemoSeed()
	seed.StepDelay = time.Millisecond
	srv, err := Start(seed)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	f := &fixture{srv: srv, checked: &http.Client{Transport: twiliospec.Load(t).Transport(t, nil)}}
	sid := *f.create(t, f.checked, send(mobile, "")).message(t).SID
	// Polls for the end state; no assertion on how long it took.
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := f.fetch(t, sid).message(t)
		if m.Status == StatusDelivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s", m.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSegments(t *testing.T) {
	tests := []struct {
		body string
		want int
	}{
		{"hi", 1},
		{strings.Repeat("a", 160), 1},
		{strings.Repeat("a", 161), 2},
		{strings.Repeat("a", 306), 2},
		{strings.Repeat("a", 307), 3},
		{strings.Repeat("€", 80), 1}, // extension: 2 septets each
		{strings.Repeat("€", 81), 2},
		{strings.Repeat("é", 160), 1}, // é is in GSM-7
		{strings.Repeat("ł", 70), 1},
		{strings.Repeat("ł", 71), 2},
		{"Hello 👋", 1},
	}
	for _, tt := range tests {
		if got := segments(tt.body); got != tt.want {
			t.Errorf("segments(%.12q… %d chars) = %d, want %d", tt.body, len([]rune(tt.body)), got, tt.want)
		}
	}
}

func TestSeedValidate(t *testing.T) {
	good := DemoSeed()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*Seed){
		func(s *Seed) { s.Accounts = nil },
		func(s *Seed) { s.Accounts[0].SID = "AC123" },
		func(s *Seed) { s.Accounts[0].AuthToken = "" },
		func(s *Seed) { s.Accounts[0].Numbers = []string{"0612345678"} },
		func(s *Seed) { s.Accounts[0].MessagingServices = []string{"MGxyz"} },
		func(s *Seed) { s.Undelivered = map[string]int{mobile: 21211} },
		func(s *Seed) { s.Accounts = append(s.Accounts, s.Accounts[0]) },
	}
	for i, edit := range bad {
		s := DemoSeed()
		edit(&s)
		if _, err := New(s); err == nil {
			t.Errorf("bad seed %d accepted", i)
		}
	}
}

func TestSpecCatches(t *testing.T) {
	spec := twiliospec.Load(t)
	base := "http://127.0.0.1:1"
	post := func(form url.Values, auth bool) *http.Request {
		r := httptest.NewRequest("POST", base+messagesPath(DemoAccountSID), strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth {
			r.SetBasicAuth(DemoAccountSID, "t")
		}
		return r
	}
	requests := []struct {
		name string
		r    *http.Request
		ok   bool
	}{
		{"good", post(send(mobile, ""), true), true},
		{"no auth", post(send(mobile, ""), false), false},
		{"no To", post(url.Values{"From": {DemoFrom}, "Body": {"x"}}, true), false},
		{"To only", post(url.Values{"To": {mobile}}, true), false},
		{"bad service sid", post(url.Values{"To": {mobile}, "MessagingServiceSid": {"MG1"}, "Body": {"x"}}, true), false},
		{"bad account sid", httptest.NewRequest("GET", base+"/2010-04-01/Accounts/AC1/Messages/SM00000000000000000000000000000000.json", nil), false},
	}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "bad account sid" {
				tt.r.SetBasicAuth(DemoAccountSID, "t")
			}
			_, err := spec.CheckRequest(tt.r)
			if (err == nil) != tt.ok {
				t.Errorf("CheckRequest = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	good, _ := json.Marshal(resource(Message{SID: "SM0123456789abcdef0123456789abcdef", AccountSID: DemoAccountSID,
		To: mobile, From: DemoFrom, Body: "x", Status: StatusQueued, Segments: 1, Created: time.Now(), Updated: time.Now()}))
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	answers := []struct {
		name   string
		status int
		body   string
		ok     bool
	}{
		{"good", 201, string(good), true},
		{"status pending", 201, strings.Replace(string(good), `"queued"`, `"pending"`, 1), false},
		{"RFC 3339 date", 201, withField(t, good, "date_updated", "2026-12-02T14:00:00Z"), false},
		{"bad sid", 201, withField(t, good, "sid", "XX0123456789abcdef0123456789abcdef"), false},
		{"num_segments a number", 201, withField(t, good, "num_segments", 1), false},
		{"error", 400, `{"code":21211,"message":"Invalid 'To' Phone Number","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`, true},
		{"error status mismatch", 400, `{"code":21211,"message":"m","more_info":"https://www.twilio.com/docs/errors/21211","status":401}`, false},
		{"error without code", 400, `{"message":"m","more_info":"https://www.twilio.com/docs/errors/0","status":400}`, false},
		{"error extra field", 400, `{"code":21211,"message":"m","more_info":"https://www.twilio.com/docs/errors/21211","status":400,"error":"x"}`, false},
	}
	for _, tt := range answers {
		t.Run(tt.name, func(t *testing.T) {
			in, err := spec.CheckRequest(post(send(mobile, ""), true))
			if err != nil {
				t.Fatal(err)
			}
			err = spec.CheckResponse(in, tt.status, jsonHeader, []byte(tt.body))
			if (err == nil) != tt.ok {
				t.Errorf("CheckResponse = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// withField returns the JSON object b with key set to v.
func withField(t *testing.T, b []byte, key string, v any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = v
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
