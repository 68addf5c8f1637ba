package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	for _, tt := range []struct {
		format, want string
		wantErr      bool
	}{
		{"", `msg="sent to a***@example.com"`, false},
		{"text", `msg="sent to a***@example.com"`, false},
		{"json", `"msg":"sent to a***@example.com"`, false},
		{"yaml", "", true},
	} {
		var buf bytes.Buffer
		log, err := newLogger(&buf, tt.format)
		if (err != nil) != tt.wantErr {
			t.Fatalf("format %q: err %v", tt.format, err)
		}
		if err != nil {
			continue
		}
		log.Info("sent to alice@example.com")
		if !strings.Contains(buf.String(), tt.want) {
			t.Errorf("format %q: %q lacks %q", tt.format, buf.String(), tt.want)
		}
	}
}
