package sim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestStartAndClose(t *testing.T) {
	srv, err := Start(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %s", srv.URL)
	}
	token := login(t, srv.URL)
	if status, _ := call(t, "POST", srv.URL+unlockPath(DemoErinID, DemoErinCloudKeyID), token, entryBody(DemoLobbyID)); status != 204 {
		t.Errorf("unlock: %d", status)
	}
	if srv.Calls(OpUnlock) != 1 { // the Sim's methods through the Server
		t.Errorf("Calls(OpUnlock) = %d", srv.Calls(OpUnlock))
	}

	// Close returns promptly even with a request hanging.
	if err := srv.SetFaults(Faults{Hang: true}); err != nil {
		t.Fatal(err)
	}
	hung := make(chan int)
	go func() {
		status, _ := timed(t, srv.URL+orgPath+"/entries", token, 10*time.Second)
		hung <- status
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if status := <-hung; status != 503 {
		t.Errorf("hung request got %d, want 503", status)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	if _, err := http.Get(srv.URL + "/auth/login"); err == nil {
		t.Error("the server still accepts connections after Close")
	}
}

func TestServe(t *testing.T) {
	s, err := New(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- Serve(ctx, addr, s, logger) }()

	base := "http://" + addr
	var up bool
	for range 100 {
		if resp, err := http.Get(base + "/"); err == nil {
			resp.Body.Close()
			up = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !up {
		t.Fatal("Serve did not start listening")
	}
	login(t, base)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if !strings.Contains(logs.String(), "openpath simulator listening") || !strings.Contains(logs.String(), addr) {
		t.Errorf("logs: %s", logs.String())
	}

	// A busy address is reported.
	busy := httptest.NewServer(http.NotFoundHandler())
	defer busy.Close()
	if err := Serve(context.Background(), strings.TrimPrefix(busy.URL, "http://"), s, nil); err == nil {
		t.Error("Serve on a busy address succeeded")
	}
}

func TestEmailIndex(t *testing.T) {
	users := []*user{{email: "alice@example.com"}, {email: "MALICE@example.com"}, {email: "bob@example.org"}, {email: "aaa@aaa.aa"}}
	x := newEmailIndex(users)
	tests := []struct {
		sub  string
		want []int
	}{
		{"alice@", []int{0, 1}},
		{"ALICE", []int{0, 1}},
		{"example.", []int{0, 1, 2}},
		{"aa", []int{3}},  // user 3 holds "aa" several times: listed once
		{"comb", []int{}}, // would span two emails
		{"org", []int{2}},
		{"", []int{0, 1, 2, 3}},
		{"x\x00", []int{}},
		{"zzz", []int{}},
	}
	for _, tt := range tests {
		if got := x.contains(tt.sub); fmt.Sprint(got) != fmt.Sprint(tt.want) || got == nil {
			t.Errorf("contains(%q) = %v, want %v", tt.sub, got, tt.want)
		}
	}
}

// BenchmarkFindUser measures the simulator's listUsers with an email filter
// in a load-test-sized org (through the handler, without the network).
func BenchmarkFindUser(b *testing.B) {
	s, err := New(GenerateSeed(100_000, 3))
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	login := httptest.NewRequest("POST", "/auth/login", strings.NewReader(`{"email":"bot@cloudkey.local","password":"demo-password"}`))
	s.Handler().ServeHTTP(rec, login)
	token := decode[struct{ Data struct{ Token string } }](b, rec.Body.Bytes()).Data.Token
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("GET", "/orgs/1/users?filter=identity.email:("+LoadUserEmail(i%100_000)+")", nil)
		req.Header.Set("Authorization", token)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
		i += 7919
	}
}
