// Package redact makes personal data and secrets safe to log: an email
// keeps its first character and its domain ("a***@example.com"), and
// token-like strings (bearer tokens, guest-link tokens, API keys) keep
// their first four characters. Text redacts both inside free text, such
// as an error message that quotes a URL or a cache key.
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
	tokenMin    = 24
	tokenAlways = 32 // from here even a run without digits is a secret
	tokenKeep   = 4
)

// Text returns s with every email in it redacted as Email does and every
// token-like run (at least 24 characters of [A-Za-z0-9_-] with a digit,
// or at least 32 of them) cut to its first four characters and "…".
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
		j, digit := i, false
		for j < len(s) && isTokenChar(s[j]) {
			digit = digit || ('0' <= s[j] && s[j] <= '9')
			j++
		}
		if n := j - i; n >= tokenAlways || (n >= tokenMin && digit) {
			b.WriteString(s[i : i+tokenKeep])
			b.WriteString("…")
		} else {
			b.WriteString(s[i:j])
		}
		i = j
	}
	return b.String()
}

// needsWork is the cheap scan that lets Text return s unchanged.
func needsWork(s string) bool {
	run, digit := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '@' {
			return true
		}
		if !isTokenChar(c) {
			run, digit = 0, false
			continue
		}
		run++
		digit = digit || ('0' <= c && c <= '9')
		if run >= tokenAlways || (run >= tokenMin && digit) {
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
