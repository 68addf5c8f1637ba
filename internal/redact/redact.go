// Package redact makes personal data and secrets safe to log: an email
// keeps its first character and its domain ("a***@example.com"), and
// token-like strings (bearer tokens, guest-link tokens, API keys) keep
// their first four characters. Text redacts both inside free text, such
// as an error message that quotes a URL or a cache key.
//
// It imports only the standard library.
package redact

import (
	"log/slog"
	"strings"
)

// Email returns e with its local part cut to its first character:
// "alice@example.com" → "a***@example.com". A string without '@' is
// returned as "***", so a caller passing something else by mistake does
// not log it.
func Email(e string) string {
	at := strings.LastIndexByte(e, '@')
	if at <= 0 {
		return "***"
	}
	return e[:1] + "***" + e[at:]
}

// tokenMin is the length from which a run of token characters is taken
// for a secret: shorter ids (pass ids, request ids, entry ids) stay
// readable, while every token cloudkey meets (JWT segments, 43-character
// guest tokens, admin keys, access-system tokens) is longer.
const (
	tokenMin   = 24
	tokenMixed = 32 // from here a run of both cases is a secret even without a digit
	tokenKeep  = 4
)

// Text returns s with every email in it redacted as Email does and every
// token-like run of [A-Za-z0-9_-] cut to its first four characters and
// "…": 24 or more characters with a digit, or 32 or more with both upper
// and lower case letters (random base64 nearly always has a digit, and
// has both cases; long ALL_CAPS names and words do not look like it).
// It returns s itself, without allocating, when there is nothing to
// redact.
func Text(s string) string {
	if !needsWork(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if !isTokenChar(c) && c != '.' && c != '+' && c != '%' {
			b.WriteByte(c)
			i++
			continue
		}
		// An email: local part [A-Za-z0-9._%+-]+ '@' domain.
		if j := localEnd(s, i); j < len(s) && s[j] == '@' && j > i {
			if k := domainEnd(s, j+1); k > j+1 {
				b.WriteByte(s[i])
				b.WriteString("***")
				b.WriteString(s[j:k])
				i = k
				continue
			}
		}
		if !isTokenChar(c) {
			b.WriteByte(c)
			i++
			continue
		}
		j := i
		var cl classes
		for j < len(s) && isTokenChar(s[j]) {
			cl.add(s[j])
			j++
		}
		if cl.secret(j - i) {
			b.WriteString(s[i : i+tokenKeep])
			b.WriteString("…")
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

// classes records which kinds of characters a run has.
type classes struct{ digit, upper, lower bool }

func (c *classes) add(b byte) {
	switch {
	case '0' <= b && b <= '9':
		c.digit = true
	case 'A' <= b && b <= 'Z':
		c.upper = true
	case 'a' <= b && b <= 'z':
		c.lower = true
	}
}

func (c classes) secret(n int) bool {
	return n >= tokenMin && c.digit || n >= tokenMixed && c.upper && c.lower
}

// needsWork is the cheap scan that lets Text return s unchanged.
func needsWork(s string) bool {
	run := 0
	var cl classes
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '@' {
			return true
		}
		if !isTokenChar(c) {
			run, cl = 0, classes{}
			continue
		}
		run++
		cl.add(c)
		if cl.secret(run) {
			return true
		}
	}
	return false
}

func isTokenChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

func localEnd(s string, i int) int {
	for i < len(s) && (isTokenChar(s[i]) || s[i] == '.' || s[i] == '+' || s[i] == '%') {
		i++
	}
	return i
}

// domainEnd returns the end of a domain with at least one dot starting at
// i, or i when there is none.
func domainEnd(s string, i int) int {
	j, dot := i, false
	for j < len(s) && (isTokenChar(s[j]) || s[j] == '.') {
		dot = dot || (s[j] == '.' && j > i)
		j++
	}
	for j > i && s[j-1] == '.' { // a sentence's full stop is not the domain's
		j--
	}
	if !dot || !strings.Contains(s[i:j], ".") {
		return i
	}
	return j
}

// Revealed marks a log value that must be logged as is, past a redacting
// handler: the development log notifier's guest links, which exist to be
// opened by the developer. Use it nowhere else.
type Revealed string

// LogValue implements slog.LogValuer.
func (r Revealed) LogValue() slog.Value { return slog.StringValue(string(r)) }
