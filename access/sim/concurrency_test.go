package sim

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestMaxInFlight(t *testing.T) {
	srv, err := Start(DemoSeed())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.SetFaults(Faults{Latency: 200 * time.Millisecond, IncludeLogin: true}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			resp, err := http.Post(srv.URL+"/auth/login", "application/json", nil)
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.InFlight() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.InFlight(); n != 5 {
		t.Errorf("InFlight = %d with 5 delayed requests, want 5", n)
	}
	wg.Wait()
	if n, m := srv.InFlight(), srv.MaxInFlight(); n != 0 || m != 5 {
		t.Errorf("after: InFlight = %d, MaxInFlight = %d; want 0, 5", n, m)
	}
	srv.ResetMaxInFlight()
	if m := srv.MaxInFlight(); m != 0 {
		t.Errorf("MaxInFlight after reset = %d", m)
	}
	http.DefaultClient.CloseIdleConnections()
}
