package schedule

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runs' counters, labelled by job kind (the name before
// its first ':'): one series per kind, however many properties.
type metrics struct {
	runs      *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	takeovers *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudkey_schedule_runs_total",
			Help: "Scheduled job runs on this replica, by job kind and result (ok, error; abandoned: stopped at shutdown, lost: another replica took its lease over).",
		}, []string{"job", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cloudkey_schedule_run_duration_seconds",
			Help:    "Time a scheduled job run took on this replica, by job kind.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"job"}),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloudkey_schedule_takeovers_total",
			Help: "Runs this replica took over after their lease expired (the replica running them stopped or lost Redis), by job kind.",
		}, []string{"job"}),
	}
	var err error
	m.runs, err = register(reg, m.runs)
	if err == nil {
		m.seconds, err = register(reg, m.seconds)
	}
	if err == nil {
		m.takeovers, err = register(reg, m.takeovers)
	}
	return m, err
}

// register registers c, or returns the collector already registered
// under its name (two schedulers on one registry share the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func kind(job string) string {
	k, _, _ := strings.Cut(job, ":")
	return k
}

func (m *metrics) observe(job, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(kind(job), result).Inc()
	m.seconds.WithLabelValues(kind(job)).Observe(took.Seconds())
}

func (m *metrics) reclaimed(job string) {
	if m != nil {
		m.takeovers.WithLabelValues(kind(job)).Inc()
	}
}
