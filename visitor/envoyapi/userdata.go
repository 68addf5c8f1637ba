package envoyapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// UserData reads the user-data of an event payload (visitor/envoy's
// Event.Payload, the raw JSON:API invite or entry): Envoy's webhooks send
// it as a list of {field, value}, its REST API as an object; both are
// read. A payload without user-data gives an empty map.
func UserData(payload json.RawMessage) (map[string]string, error) {
	var p struct {
		Attributes struct {
			UserData json.RawMessage `json:"user-data"`
		} `json:"attributes"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("envoyapi: payload is not a JSON:API resource: %w", err)
	}
	out := map[string]string{}
	raw := bytes.TrimSpace(p.Attributes.UserData)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
		return out, nil
	case raw[0] == '[':
		var items []struct {
			Field string  `json:"field"`
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, fmt.Errorf("envoyapi: user-data list: %w", err)
		}
		for _, it := range items {
			if it.Value != nil {
				out[it.Field] = *it.Value
			} else {
				out[it.Field] = ""
			}
		}
		return out, nil
	case raw[0] == '{':
		var m map[string]*string
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("envoyapi: user-data object: %w", err)
		}
		for k, v := range m {
			if v != nil {
				out[k] = *v
			} else {
				out[k] = ""
			}
		}
		return out, nil
	}
	return nil, errors.New("envoyapi: user-data is neither a list nor an object")
}

// Tag returns the correlation tag (user-data field TagField) of an event
// payload, "" when it has none or the payload cannot be read.
func Tag(payload json.RawMessage) string {
	ud, err := UserData(payload)
	if err != nil {
		return ""
	}
	return ud[TagField]
}
