package kisispec

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestTransportReportsViolations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"message":"Nope"}`))
	}))
	defer srv.Close()
	spec := Load(t)
	tests := []struct {
		name, auth string
		strict     bool
		want       []string // substrings of the recorded errors, in order
	}{
		{"bad answer", "KISI-LOGIN x", true, []string{"answer 200"}},
		{"bad request and answer", "", true, []string{"request POST", "answer 200"}},
		{"bad request, lenient", "", false, []string{"answer 200"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			tr := spec.ResponseTransport(rec, nil)
			if tt.strict {
				tr = spec.Transport(rec, nil)
			}
			req, _ := http.NewRequest("POST", srv.URL+"/locks/1/unlock", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if len(rec.errors) != len(tt.want) {
				t.Fatalf("errors %q, want %d", rec.errors, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(rec.errors[i], w) {
					t.Errorf("error %d %q lacks %q", i, rec.errors[i], w)
				}
			}
		})
	}
}
