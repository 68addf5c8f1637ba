package twiliosim

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Twilio error codes the simulator answers with (SMS_NOTES.md; Twilio's
// docs/api/errors/NNNNN).
const (
	CodeAuthenticate       = 20003
	CodeNotFound           = 20404
	CodeTooManyRequests    = 20429
	CodeInvalidTo          = 21211
	CodeBodyRequired       = 21602
	CodeFromRequired       = 21603
	CodeToRequired         = 21604
	CodeFromNotOwned       = 21606
	CodeBadStatusCallback  = 21609
	CodeUnsubscribed       = 21610
	CodeNotMobile          = 21614
	CodeBodyTooLong        = 21617
	CodeUnknownService     = 21701
	CodeUnreachable        = 30003
	CodeLandlineOrCarrier  = 30006
	CodeCarrierViolation   = 30007
	maxBodyChars           = 1600
	maxFormBytes           = 64 << 10
	apiVersion             = "2010-04-01"
	messagesPathPrefix     = "/" + apiVersion + "/Accounts/"
	signatureHeader        = "X-Twilio-Signature"
	contentTypeJSON        = "application/json; charset=utf-8"
	contentTypeForm        = "application/x-www-form-urlencoded"
	priceOneSegment        = 0.0079
	priceUnit              = "USD"
	errorMessageUndelivery = "Unknown error"
)

// errorMessages are the error_message of failed and undelivered messages.
var errorMessages = map[int]string{
	CodeUnreachable:       "Unreachable destination handset",
	CodeLandlineOrCarrier: "Landline or unreachable carrier",
	CodeCarrierViolation:  "Carrier violation",
}

// ErrorBody is Twilio's error answer.
type ErrorBody struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, ErrorBody{
		Code: code, Message: message, Status: status,
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":20500,"message":"encoding failed","more_info":"https://www.twilio.com/docs/errors/20500","status":500}`)
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	s.handle(mux, "POST "+messagesPathPrefix+"{AccountSid}/Messages.json", OpCreateMessage, s.createMessage)
	// A wildcard is a whole path segment: {file} is "{Sid}.json".
	s.handle(mux, "GET "+messagesPathPrefix+"{AccountSid}/Messages/{file}", OpFetchMessage, s.fetchMessage)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "The requested resource "+r.URL.Path+" was not found")
	})
	return mux
}

// handle registers one operation: every request is counted, then dropped
// (DropNext), then faults are injected, then the credentials are checked
// (401), and only then does h run.
func (s *Sim) handle(mux *http.ServeMux, pattern string, op Op, h func(http.ResponseWriter, *http.Request, *Account)) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.calls[op].Add(1)
		if s.takeDrop() {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				_ = conn.Close()
				return
			}
			panic(http.ErrAbortHandler) // HTTP/2: abort the stream instead
		}
		if !s.faults.Apply(w, r, op) {
			return
		}
		acct, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		h(w, r, acct)
	})
}

// takeDrop consumes one pending drop, if any.
func (s *Sim) takeDrop() bool {
	for {
		n := s.drops.Load()
		if n <= 0 {
			return false
		}
		if s.drops.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// authenticate checks HTTP Basic AccountSid:AuthToken against the path's
// account.
func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request) (*Account, bool) {
	user, pass, ok := r.BasicAuth()
	sid := r.PathValue("AccountSid")
	acct := s.accounts[sid]
	if !ok || acct == nil || user != sid || !hmac.Equal([]byte(pass), []byte(acct.AuthToken)) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, CodeAuthenticate, "Authenticate")
		return nil, false
	}
	return acct, true
}

func (s *Sim) createMessage(w http.ResponseWriter, r *http.Request, acct *Account) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, contentTypeForm) {
		writeError(w, http.StatusBadRequest, CodeToRequired, "A 'To' phone number is required.")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, CodeToRequired, "A 'To' phone number is required.")
		return
	}
	f := r.PostForm
	to, from, service := f.Get("To"), f.Get("From"), f.Get("MessagingServiceSid")
	body, callback := f.Get("Body"), f.Get("StatusCallback")
	refuse := func(code int, msg string) { writeError(w, http.StatusBadRequest, code, msg) }
	switch {
	case to == "":
		refuse(CodeToRequired, "A 'To' phone number is required.")
		return
	case from == "" && service == "":
		refuse(CodeFromRequired, "A 'From' phone number is required.")
		return
	case body == "" && f.Get("MediaUrl") == "" && f.Get("ContentSid") == "":
		refuse(CodeBodyRequired, "Message body is required.")
		return
	case utf8.RuneCountInString(body) > maxBodyChars:
		refuse(CodeBodyTooLong, "The concatenated message body exceeds the 1600 character limit.")
		return
	case from != "" && !slices.Contains(acct.Numbers, from):
		refuse(CodeFromNotOwned, "The From phone number "+from+" is not a valid, SMS-capable inbound phone number or short code for your account.")
		return
	case service != "" && !slices.Contains(acct.MessagingServices, service):
		refuse(CodeUnknownService, "The Messaging Service Sid "+service+" is invalid.")
		return
	case callback != "" && !validCallback(callback):
		refuse(CodeBadStatusCallback, "The StatusCallback URL "+callback+" is not a valid URL.")
		return
	case !e164.MatchString(to) || to == from:
		refuse(CodeInvalidTo, "Invalid 'To' Phone Number: "+to)
		return
	}
	switch s.refusals[to] {
	case CodeInvalidTo:
		refuse(CodeInvalidTo, "Invalid 'To' Phone Number: "+to)
		return
	case CodeUnsubscribed:
		refuse(CodeUnsubscribed, "Attempt to send to unsubscribed recipient")
		return
	case CodeNotMobile:
		refuse(CodeNotMobile, "'To' number is not a valid mobile number")
		return
	}
	now := time.Now()
	m := &Message{
		SID: newSID("SM"), AccountSID: acct.SID, To: to, From: from, MessagingServiceSID: service,
		Body: body, StatusCallback: callback, Status: StatusQueued, Segments: segments(body),
		Created: now, Updated: now,
	}
	if service != "" {
		m.Status = StatusAccepted
		if from == "" {
			// The service picks a sender; the account's first number.
			if len(acct.Numbers) > 0 {
				m.From = acct.Numbers[0]
			}
		}
	}
	s.mu.Lock()
	s.messages[m.SID] = m
	s.order = append(s.order, m.SID)
	res := resource(*m)
	if s.step > 0 {
		select {
		case <-s.closed:
		default:
			s.wg.Add(1)
			go s.progress(m.SID)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, res)
}

// validCallback reports whether u is an absolute http(s) URL whose host
// has no underscore, as Twilio requires.
func validCallback(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" && !strings.Contains(p.Hostname(), "_")
}

func (s *Sim) fetchMessage(w http.ResponseWriter, r *http.Request, acct *Account) {
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	s.mu.Lock()
	m, found := s.messages[sid]
	var res messageJSON
	if found && m.AccountSID == acct.SID {
		res = resource(*m)
	}
	s.mu.Unlock()
	if !ok || !found || m.AccountSID != acct.SID {
		writeError(w, http.StatusNotFound, CodeNotFound, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// messageJSON is the api.v2010.account.message schema.
type messageJSON struct {
	Body                *string           `json:"body"`
	NumSegments         *string           `json:"num_segments"`
	Direction           string            `json:"direction"`
	From                *string           `json:"from"`
	To                  *string           `json:"to"`
	DateUpdated         *string           `json:"date_updated"`
	Price               *string           `json:"price"`
	ErrorMessage        *string           `json:"error_message"`
	URI                 *string           `json:"uri"`
	AccountSID          *string           `json:"account_sid"`
	NumMedia            *string           `json:"num_media"`
	Status              string            `json:"status"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	SID                 *string           `json:"sid"`
	DateSent            *string           `json:"date_sent"`
	DateCreated         *string           `json:"date_created"`
	ErrorCode           *int              `json:"error_code"`
	PriceUnit           *string           `json:"price_unit"`
	APIVersion          *string           `json:"api_version"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
}

func ptr[T any](v T) *T { return &v }

func rfc2822(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	return ptr(t.UTC().Format(time.RFC1123Z))
}

// resource is m as Twilio answers it.
func resource(m Message) messageJSON {
	uri := messagesPathPrefix + m.AccountSID + "/Messages/" + m.SID
	j := messageJSON{
		Body: ptr(m.Body), Direction: "outbound-api", From: ptr(m.From), To: ptr(m.To),
		DateUpdated: rfc2822(m.Updated), URI: ptr(uri + ".json"), AccountSID: ptr(m.AccountSID),
		NumMedia: ptr("0"), Status: m.Status, SID: ptr(m.SID), DateSent: rfc2822(m.Sent),
		DateCreated: rfc2822(m.Created), APIVersion: ptr(apiVersion), PriceUnit: ptr(priceUnit),
		NumSegments:     ptr(strconv.Itoa(m.Segments)),
		SubresourceURIs: map[string]string{"media": uri + "/Media.json", "feedback": uri + "/Feedback.json"},
	}
	if m.From == "" {
		j.From = nil
	}
	if m.MessagingServiceSID != "" {
		j.MessagingServiceSID = ptr(m.MessagingServiceSID)
		if m.Status == StatusAccepted {
			j.NumSegments = ptr("0") // no sender assigned yet
		}
	}
	if !m.Sent.IsZero() {
		j.Price = ptr("-" + strconv.FormatFloat(priceOneSegment*float64(m.Segments), 'f', 5, 64))
	}
	if m.ErrorCode != 0 {
		j.ErrorCode = ptr(m.ErrorCode)
		msg, ok := errorMessages[m.ErrorCode]
		if !ok {
			msg = errorMessageUndelivery
		}
		j.ErrorMessage = ptr(msg)
	}
	return j
}

// gsm7 is the GSM 03.38 basic character set; its extension characters
// count twice.
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Ext   = "^{}\\[~]|€\f"
)

// segments is how many SMS segments body takes: 160 GSM-7 characters in
// one, 153 each when split; 70 and 67 in UCS-2 (any other character).
func segments(body string) int {
	if body == "" {
		return 1
	}
	septets, ucs2 := 0, false
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			septets++
		case strings.ContainsRune(gsm7Ext, r):
			septets += 2
		default:
			ucs2 = true
		}
	}
	n, one, many := septets, 160, 153
	if ucs2 {
		n, one, many = len(utf16(body)), 70, 67
	}
	if n <= one {
		return 1
	}
	return (n + many - 1) / many
}

func utf16(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			out = append(out, 0, 0)
		} else {
			out = append(out, 0)
		}
	}
	return out
}

// postCallback POSTs m's status to its StatusCallback, signed with token,
// and records the attempt.
func (s *Sim) postCallback(m Message, token string) {
	params := map[string]string{
		"MessageSid": m.SID, "SmsSid": m.SID, "AccountSid": m.AccountSID,
		"From": m.From, "To": m.To, "MessageStatus": m.Status, "SmsStatus": m.Status,
		"ApiVersion": apiVersion,
	}
	if m.MessagingServiceSID != "" {
		params["MessagingServiceSid"] = m.MessagingServiceSID
	}
	if m.ErrorCode != 0 {
		params["ErrorCode"] = strconv.Itoa(m.ErrorCode)
	}
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	cb := Callback{MessageSID: m.SID, URL: m.StatusCallback, Status: m.Status, Params: params, Signature: Sign(token, m.StatusCallback, params)}
	req, err := http.NewRequest(http.MethodPost, m.StatusCallback, strings.NewReader(form.Encode()))
	if err == nil {
		req.Header.Set("Content-Type", contentTypeForm)
		req.Header.Set(signatureHeader, cb.Signature)
		req.Header.Set("User-Agent", "TwilioProxy/1.1")
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			cb.HTTPStatus = resp.StatusCode
			_ = resp.Body.Close()
		}
	}
	cb.Err = err
	s.mu.Lock()
	s.callbacks = append(s.callbacks, cb)
	s.mu.Unlock()
}

// Sign is the X-Twilio-Signature of a form POST to fullURL with params:
// base64 HMAC-SHA1, keyed by the auth token, of the URL followed by each
// parameter, sorted by name, written as name then value.
func Sign(authToken, fullURL string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	for _, k := range keys {
		mac.Write([]byte(k))
		mac.Write([]byte(params[k]))
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
