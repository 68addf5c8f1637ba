package redact

import "strings"

// phoneKeep is how many trailing digits of a phone number stay readable:
// enough to tell two numbers of one visitor apart, too few to call.
const phoneKeep = 2

// phoneMin is the number of digits from which a run is taken for a phone
// number: shorter numbers (error codes such as 21211, ports, counts) stay.
const phoneMin = 7

// Phone returns p with every digit but the last two replaced by '*', its
// other characters ('+', spaces) kept: "+14155550100" → "+*********00".
// A string with fewer than three digits is returned as "***".
func Phone(p string) string {
	digits := 0
	for i := 0; i < len(p); i++ {
		if isDigit(p[i]) {
			digits++
		}
	}
	if digits <= phoneKeep {
		return "***"
	}
	b := []byte(p)
	seen := 0
	for i, c := range b {
		if isDigit(c) {
			seen++
			if seen <= digits-phoneKeep {
				b[i] = '*'
			}
		}
	}
	return string(b)
}

// Phones returns s with every phone-number-like run in it redacted as
// Phone does: seven or more digits, optionally after a '+', possibly
// separated by single spaces, dots, dashes or parentheses ("+1 (415)
// 555-0100"). Dates written with dashes look the same and are redacted
// too. It returns s itself when there is nothing to redact.
func Phones(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) && !(s[i] == '+' || s[i] == '(') {
			i++
			continue
		}
		end, digits := phoneRun(s, i)
		if digits < phoneMin {
			i = max(end, i+1)
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:i])
		b.WriteString(Phone(s[i:end]))
		last, i = end, end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// phoneRun returns the end of the phone-like run starting at i and the
// number of digits in it. The run ends on a digit or a closing
// parenthesis.
func phoneRun(s string, i int) (end, digits int) {
	j := i
	if s[j] == '+' {
		j++
	}
	end = i
	for j < len(s) {
		c := s[j]
		switch {
		case isDigit(c):
			digits++
			j++
			end = j
		case c == ')' && digits > 0:
			j++
			end = j
		case (c == ' ' || c == '-' || c == '.' || c == '(') && j+1 < len(s) && (isDigit(s[j+1]) || s[j+1] == '('):
			j++
		case c == '(':
			j++
		default:
			return end, digits
		}
	}
	return end, digits
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
