//go:build !linux

package loadtest

import "time"

// preciseSleeper falls back to Go timers, which may wake up to about a
// millisecond late on an idle machine; open-loop latencies then include
// that slack. The figures we quote come from Linux.
type preciseSleeper struct{}

func newPreciseSleeper() *preciseSleeper { return &preciseSleeper{} }

func (p *preciseSleeper) release() {}

func (p *preciseSleeper) sleep(d time.Duration, done <-chan struct{}) {
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-done:
		t.Stop()
	}
}
