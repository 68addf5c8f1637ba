package kisisim

import (
	"context"
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
	f := &fixture{srv: srv, checked: (&fixture{}).clientFor(t)}
	if a := f.do(t, "POST", unlockPath(DemoPoolID), DemoHarborAPIKey, ""); a.status != 200 {
		t.Errorf("unlock: %d", a.status)
	}
	if srv.Calls(OpUnlock) != 1 { // the Sim's methods through the Server
		t.Errorf("Calls(OpUnlock) = %d", srv.Calls(OpUnlock))
	}
	// Close returns promptly even with a request hanging.
	must(t, srv.SetFaults(Faults{Hang: true}))
	hung := make(chan int)
	go func() {
		status, _ := f.timed(t, "/locks", DemoHarborAPIKey, 10*time.Second)
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
	if _, err := http.Get(srv.URL + "/locks"); err == nil {
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
	f := &fixture{srv: &Server{Sim: s, URL: base}, checked: (&fixture{}).clientFor(t)}
	if a := f.do(t, "GET", "/locks", DemoFoundryAPIKey, ""); a.status != 200 {
		t.Errorf("GET /locks: %d", a.status)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	if !strings.Contains(logs.String(), "kisi simulator listening") || !strings.Contains(logs.String(), addr) {
		t.Errorf("logs: %s", logs.String())
	}
	if strings.Contains(logs.String(), DemoHarborAPIKey) {
		t.Errorf("Serve logged an API key: %s", logs.String())
	}

	// A busy address is reported.
	busy := httptest.NewServer(http.NotFoundHandler())
	defer busy.Close()
	if err := Serve(context.Background(), strings.TrimPrefix(busy.URL, "http://"), s, nil); err == nil {
		t.Error("Serve on a busy address succeeded")
	}
}

// BenchmarkFindUser measures GET /users?email= in a load-test-sized org
// (through the handler, without the network).
func BenchmarkFindUser(b *testing.B) {
	s, err := New(GenerateSeed(100_000, 3))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("GET", "/users?email="+LoadUserEmail(i%100_000), nil)
		req.Header.Set("Authorization", "KISI-LOGIN "+LoadAPIKey)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
		i += 7919
	}
}
