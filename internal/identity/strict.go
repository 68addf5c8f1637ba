package identity

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/golang-jwt/jwt/v5"
)

// The JWT libraries decode a token's header and claims with encoding/json,
// which is lax where a token must not be: a name given twice is accepted
// with the last value winning (two "email" claims, read one way here and
// another way by whoever checked the token before), and a json.Number,
// which is what golang-jwt decodes exp, nbf and iat into, is also filled
// from a JSON string ("exp":"9999999999"). Neither library has an option
// that refuses these, so checkJSON scans the header and the claims with
// jsontext before they are trusted. jsontext refuses duplicate names (at
// any depth, after unescaping, so "\u0065mail" is "email") and invalid
// UTF-8 by default; checkJSON also wants exactly one object per segment
// and exp, nbf and iat, when present, to be JSON numbers.
//
// It runs on a cache miss only (CachedVerifier), before the signature is
// checked: a token it refuses never verifies, so it is never cached.

// numericClaims must be JSON numbers when present (RFC 7519 §2 NumericDate).
var numericClaims = []string{"exp", "nbf", "iat"}

// segments decodes as golang-jwt does with WithStrictDecoding: unpadded
// base64url whose unused bits are zero.
var segments = base64.RawURLEncoding.Strict()

type jsonScanner struct {
	buf  []byte
	name []byte
	r    bytes.Reader
	dec  *jsontext.Decoder
}

var scanners = sync.Pool{New: func() any {
	s := &jsonScanner{}
	s.dec = jsontext.NewDecoder(&s.r)
	return s
}}

// checkJSON checks a compact JWS's header and claims segments; the
// signature and everything else are left to the parser.
func checkJSON(token string) error {
	header, rest, ok := strings.Cut(token, ".")
	claims, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return fmt.Errorf("%w: not three segments", jwt.ErrTokenMalformed)
	}
	s := scanners.Get().(*jsonScanner)
	defer scanners.Put(s)
	if err := s.check(header, nil); err != nil {
		return fmt.Errorf("%w: header: %w", jwt.ErrTokenMalformed, err)
	}
	if err := s.check(claims, numericClaims); err != nil {
		return fmt.Errorf("%w: claims: %w", jwt.ErrTokenMalformed, err)
	}
	return nil
}

// check decodes segment and scans it: one JSON object, no duplicate
// names, the numeric names' values numbers.
func (s *jsonScanner) check(segment string, numeric []string) error {
	n := segments.DecodedLen(len(segment))
	if cap(s.buf) < n {
		s.buf = make([]byte, n)
	}
	n, err := segments.Decode(s.buf[:n], []byte(segment))
	if err != nil {
		return fmt.Errorf("base64: %w", err)
	}
	s.r.Reset(s.buf[:n])
	s.dec.Reset(&s.r) // the defaults: no duplicate names, valid UTF-8
	if tok, err := s.dec.ReadToken(); err != nil {
		return err
	} else if tok.Kind() != '{' {
		return errors.New("not a JSON object")
	}
	for s.dec.PeekKind() != '}' {
		// The name as a raw value (valid until the next read), unquoted
		// into the scratch buffer: no allocation per claim.
		raw, err := s.dec.ReadValue()
		if err != nil {
			return err
		}
		if len(numeric) > 0 {
			s.name, err = jsontext.AppendUnquote(s.name[:0], raw)
			if err != nil {
				return err
			}
			if slices.Contains(numeric, string(s.name)) && s.dec.PeekKind() != '0' {
				return fmt.Errorf("%q is not a number", s.name)
			}
		}
		if err := s.dec.SkipValue(); err != nil {
			return err
		}
	}
	if _, err := s.dec.ReadToken(); err != nil { // '}'
		return err
	}
	if _, err := s.dec.ReadToken(); err == nil {
		return errors.New("data after the object")
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
