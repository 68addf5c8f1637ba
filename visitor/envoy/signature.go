package envoy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// SignatureHeader is the header Envoy signs its requests with.
const SignatureHeader = "X-Envoy-Signature"

// VerifySignature reports whether header, the X-Envoy-Signature value, is
// the base64 HMAC-SHA256 of the raw request body under secret, as Envoy's
// SDK (EnvoySignatureVerifier) checks it. The comparison is in constant
// time. A missing header, a header that is not base64, or an empty secret
// never verifies: an unconfigured secret must not accept everything.
//
// body must be the bytes as received, before any JSON decoding: a
// re-encoded body would not match.
func VerifySignature(body []byte, header string, secret []byte) bool {
	header = strings.TrimSpace(header)
	if len(secret) == 0 || header == "" {
		return false
	}
	got, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// Sign returns the X-Envoy-Signature value for body under secret, as Envoy
// computes it; tests use it to send signed events.
func Sign(body, secret []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
