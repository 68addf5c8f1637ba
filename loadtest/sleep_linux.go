//go:build linux

package loadtest

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfdKickDelay arms the timerfd just after the Go timer, so that when
// it wakes the netpoller the Go timer has already expired and fires.
const timerfdKickDelay = 2 * time.Microsecond

// preciseSleeper sleeps with tens-of-microseconds precision.
//
// Open-loop latency is timed from the intended start, so a late wake-up
// of the scheduler is charged to the server. Go's timers fire on time
// while the Ps are busy (every schedule checks them), but when every P is
// idle the runtime waits for the next timer in epoll_pwait, whose timeout
// is in whole milliseconds: sleeps of 100 µs then last about 1 ms. A
// timerfd registered with Go's netpoller, armed for just after each Go
// timer and never read, wakes that epoll_pwait at the right moment; the
// woken thread then finds the Go timer expired. Nothing is locked to a
// thread and no P waits in a syscall. (Two rejected designs: a locked
// thread in nanosleep(2) was as precise but cost a thread handoff per
// request and starved the workers at 10,000 rps; reading the timerfd
// instead of a Go timer is late by up to sysmon's 10 ms while the Ps are
// busy, as the netpoller is then rarely polled.)
type preciseSleeper struct {
	timer *time.Timer
	f     *os.File // nil: timerfd unavailable, Go timers only
	fd    int
}

// newPreciseSleeper returns a sleeper for one goroutine; release it.
func newPreciseSleeper() *preciseSleeper {
	p := &preciseSleeper{timer: time.NewTimer(time.Hour)}
	p.timer.Stop()
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err == nil {
		// A non-blocking descriptor makes os.NewFile register it with
		// the netpoller's epoll set, which is all the kick needs.
		p.f, p.fd = os.NewFile(uintptr(fd), "loadtest-timerfd"), fd
	}
	return p
}

// release closes the timerfd.
func (p *preciseSleeper) release() {
	p.timer.Stop()
	if p.f != nil {
		p.f.Close()
	}
}

// sleep waits d, returning early when done closes.
func (p *preciseSleeper) sleep(d time.Duration, done <-chan struct{}) {
	p.timer.Reset(d)
	if p.f != nil {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d + timerfdKickDelay))}
		_ = unix.TimerfdSettime(p.fd, 0, &spec, nil) // on failure: a Go timer alone
	}
	select {
	case <-p.timer.C:
	case <-done:
		p.timer.Stop()
	}
}
