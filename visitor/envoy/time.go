package envoy

import (
	"encoding/json"
	"time"
)

// timeLayouts are the forms Envoy times arrive in; see Parse.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999-07",
	"2006-01-02 15:04:05.999999999", // no zone: UTC, as Envoy's SDK reads it
	time.RFC1123,
	time.RFC1123Z,
}

// ParseTime parses an Envoy time in any of the accepted forms.
func ParseTime(s string) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func optionalTime(raw json.RawMessage, field string) (time.Time, error) {
	s, err := optionalString(raw, field)
	if err != nil || s == "" {
		return time.Time{}, err
	}
	t, ok := ParseTime(s)
	if !ok {
		return time.Time{}, fieldErr(field, "%q is not a time (RFC 3339, \"2006-01-02 15:04:05\" UTC or RFC 1123)", s)
	}
	return t, nil
}
