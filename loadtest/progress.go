package loadtest

import (
	"fmt"
	"io"
	"time"
)

// startProgress prints one line per second to w while a phase runs:
// elapsed time, requests so far, the last second's completion rate, p99
// and errors. It returns a function that stops it; w nil prints nothing.
func startProgress(w io.Writer, label string, start time.Time, rec *recorder, closed bool) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var total, totalErrs int64
		last := start
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				completed, errs, h := rec.tick()
				total += completed
				totalErrs += errs
				sent := rec.sent.Load()
				if closed {
					sent = total
				}
				rps := float64(completed) / now.Sub(last).Seconds()
				last = now
				fmt.Fprintf(w, "%s %5.1fs  sent %d  %.0f/s  p99 %s  errors %d  dropped %d\n",
					label, now.Sub(start).Seconds(), sent, rps,
					fmtMicros(h.ValueAtQuantile(99)), totalErrs, rec.dropped.Load())
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
