package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// SignatureHeader is the header Twilio signs its webhooks with.
const SignatureHeader = "X-Twilio-Signature"

// Errors of ParseCallback, matched with errors.Is.
var (
	// ErrBadSignature: the request is not signed by this account's token
	// (the webhook answers 403).
	ErrBadSignature = errors.New("twilio: status callback signature does not verify")
	// ErrMalformedCallback: signed, but not a message status callback of
	// this account (the webhook answers 400).
	ErrMalformedCallback = errors.New("twilio: malformed status callback")
)

// StatusUpdate is what a status callback says.
type StatusUpdate struct {
	MessageSID string
	Status     Status
	// ErrorCode is set when Status is undelivered or failed.
	ErrorCode int
}

// Reason is the manager-readable cause of a failed delivery, "" when
// there is none.
func (u StatusUpdate) Reason() string {
	if u.ErrorCode == 0 {
		return ""
	}
	return Reason(u.ErrorCode)
}

// ParseCallback verifies a status callback and returns its status.
// callbackURL is the full URL Twilio posted to, as configured in
// StatusCallback (query string included); params are the POST form
// parameters; signature is the X-Twilio-Signature header. Unknown
// parameters are accepted: Twilio adds some without notice.
func (c *Client) ParseCallback(callbackURL string, params url.Values, signature string) (StatusUpdate, error) {
	if !ValidSignature(c.cfg.AuthToken, callbackURL, params, signature) {
		return StatusUpdate{}, ErrBadSignature
	}
	if params.Get("AccountSid") != c.cfg.AccountSID {
		return StatusUpdate{}, fmt.Errorf("%w: AccountSid is not the configured account", ErrMalformedCallback)
	}
	u := StatusUpdate{MessageSID: params.Get("MessageSid"), Status: Status(params.Get("MessageStatus"))}
	if u.MessageSID == "" {
		u.MessageSID = params.Get("SmsSid")
	}
	if u.Status == "" {
		u.Status = Status(params.Get("SmsStatus"))
	}
	if !messageSIDPattern.MatchString(u.MessageSID) {
		return StatusUpdate{}, fmt.Errorf("%w: no MessageSid", ErrMalformedCallback)
	}
	if u.Status == "" {
		return StatusUpdate{}, fmt.Errorf("%w: no MessageStatus", ErrMalformedCallback)
	}
	if ec := params.Get("ErrorCode"); ec != "" {
		code, err := strconv.Atoi(ec)
		if err != nil {
			return StatusUpdate{}, fmt.Errorf("%w: ErrorCode %q is not a number", ErrMalformedCallback, ec)
		}
		u.ErrorCode = code
	}
	return u, nil
}

// ValidSignature reports whether signature is Twilio's X-Twilio-Signature
// for a form POST of params to fullURL under authToken: base64
// HMAC-SHA1 of the URL followed by each parameter sorted by name (first
// value of each), written as name then value. As twilio-go does, the URL
// is tried as given and with its default port (:443, :80) added or
// removed. The comparison is in constant time; an empty token or
// signature never verifies.
func ValidSignature(authToken, fullURL string, params url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil {
		return false
	}
	for _, u := range urlVariants(fullURL) {
		if hmac.Equal(got, mac(authToken, u, params)) {
			return true
		}
	}
	return false
}

// Signature is the X-Twilio-Signature Twilio sends for params posted to
// fullURL; tests use it to sign callbacks.
func Signature(authToken, fullURL string, params url.Values) string {
	return base64.StdEncoding.EncodeToString(mac(authToken, fullURL, params))
}

func mac(authToken, fullURL string, params url.Values) []byte {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := hmac.New(sha1.New, []byte(authToken))
	h.Write([]byte(fullURL))
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte(params.Get(k)))
	}
	return h.Sum(nil)
}

// urlVariants is fullURL as given, then with its scheme's default port
// added or removed.
func urlVariants(fullURL string) []string {
	out := []string{fullURL}
	u, err := url.Parse(fullURL)
	if err != nil || u.Host == "" {
		return out
	}
	def := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	if def == "" {
		return out
	}
	host, port, err := net.SplitHostPort(u.Host)
	switch {
	case err != nil: // no port: add the default
		u.Host = net.JoinHostPort(u.Host, def)
	case port == def:
		u.Host = host
		if strings.Contains(host, ":") {
			u.Host = "[" + host + "]"
		}
	default:
		return out
	}
	return append(out, u.String())
}

// CallbackHandler serves the status callback URL (Config.StatusCallback):
// it verifies each request and calls handle with its status, answering
// 204, or 403 on a bad signature, 400 on a malformed callback and 500
// when handle fails. The URL checked is the configured StatusCallback's
// scheme, host and path with the request's query string, so that it
// works behind a proxy that rewrites the host.
func (c *Client) CallbackHandler(handle func(context.Context, StatusUpdate) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "not a form", http.StatusBadRequest)
			return
		}
		u, err := c.ParseCallback(c.callbackURL(r), r.PostForm, r.Header.Get(SignatureHeader))
		switch {
		case errors.Is(err, ErrBadSignature):
			c.log.WarnContext(r.Context(), "twilio: status callback with a bad signature", "remote", r.RemoteAddr)
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := handle(r.Context(), u); err != nil {
			c.log.ErrorContext(r.Context(), "twilio: status callback not recorded", "sid", u.MessageSID, "status", u.Status, "error", err)
			http.Error(w, "not recorded", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// callbackURL is the URL Twilio signed for r: the configured callback's
// scheme, host and path, and r's query.
func (c *Client) callbackURL(r *http.Request) string {
	u, err := url.Parse(c.cfg.StatusCallback)
	if err != nil || c.cfg.StatusCallback == "" {
		return r.URL.String()
	}
	u.RawQuery = r.URL.RawQuery
	return u.String()
}
