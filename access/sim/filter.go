package sim

import (
	"fmt"
	"strings"
)

// filterTerm is one `field:(value)` term of Openpath's filter parameter.
type filterTerm struct {
	field, value string
}

// parseFilter splits a filter such as `identity.email:(a@b.c) status:(A)`
// into its terms. Terms are separated by spaces and all must hold. A value
// runs to the first ')', so it cannot itself contain one.
func parseFilter(s string) ([]filterTerm, error) {
	var terms []filterTerm
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return terms, nil
		}
		open := strings.Index(s, ":(")
		if open <= 0 {
			return nil, fmt.Errorf("filter term %q is not field:(value)", s)
		}
		field := s[:open]
		if strings.ContainsAny(field, " ()") {
			return nil, fmt.Errorf("filter field %q is malformed", field)
		}
		rest := s[open+2:]
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return nil, fmt.Errorf("filter term for %s has no closing parenthesis", field)
		}
		terms = append(terms, filterTerm{field: field, value: rest[:end]})
		s = rest[end+1:]
	}
}
