package loadtest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/unlock"
)

// Kind is what a scenario sends.
type Kind string

// The scenario kinds.
const (
	KindMe          Kind = "me"           // GetMe
	KindList        Kind = "list"         // ListEntries
	KindUnlock      Kind = "unlock"       // Unlock of one of the user's entries
	KindUnlockMulti Kind = "unlock-multi" // Unlock of Config.UnlockEntries of the user's entries
	KindUnlockCross Kind = "unlock-cross" // Unlock of the user's first Openpath and first Kisi entry (ids from the prewarm's ListEntries)
	KindMix         Kind = "mix"          // 70% list, 25% unlock (one entry), 5% me
	KindNoop        Kind = "noop"         // the bare gRPC no-op baseline service
	KindNoopHTTP    Kind = "noop-http"    // the no-op plus one loopback HTTP call (the floor of an access-system call)
	KindNoopRedis   Kind = "noop-redis"   // the no-op plus one pipelined Redis read shaped as the cache's (the floor of a list served from Redis)
)

var kinds = []Kind{KindMe, KindList, KindUnlock, KindUnlockMulti, KindUnlockCross, KindMix, KindNoop, KindNoopHTTP, KindNoopRedis}

// baseline reports whether k is served by the baseline server rather
// than cloudkey.
func (k Kind) baseline() bool { return k == KindNoop || k == KindNoopHTTP || k == KindNoopRedis }

// Transport is how requests reach cloudkey.
type Transport string

// The transports.
const (
	GRPC Transport = "grpc"
	REST Transport = "rest" // through the grpc-gateway on the HTTP address
)

// Scenario is one thing measured in a run.
type Scenario struct {
	Kind      Kind
	Transport Transport
}

// String is the scenario as written on the command line: "list",
// "list:rest" (gRPC is the default and not written).
func (s Scenario) String() string {
	if s.Transport == REST {
		return string(s.Kind) + ":" + string(REST)
	}
	return string(s.Kind)
}

// ParseScenarios parses a comma-separated list like "list,unlock,list:rest".
// An item may end in ":grpc" or ":rest"; without one, def applies.
func ParseScenarios(list string, def Transport) ([]Scenario, error) {
	if def != GRPC && def != REST {
		return nil, fmt.Errorf("--transport: unknown transport %q (want grpc or rest)", def)
	}
	var out []Scenario
	seen := map[Scenario]bool{}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, tr, hasTr := strings.Cut(item, ":")
		s := Scenario{Kind: Kind(name), Transport: def}
		if hasTr {
			s.Transport = Transport(tr)
			if s.Transport != GRPC && s.Transport != REST {
				return nil, fmt.Errorf("--scenario: unknown transport %q in %q (want grpc or rest)", tr, item)
			}
		}
		if !validKind(s.Kind) {
			return nil, fmt.Errorf("--scenario: unknown scenario %q (want one of %s)", name, kindNames())
		}
		if s.Kind.baseline() {
			if hasTr && s.Transport == REST {
				return nil, fmt.Errorf("--scenario: %s is a gRPC service only; %q is not available", s.Kind, item)
			}
			s.Transport = GRPC
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--scenario: empty (want one or more of %s)", kindNames())
	}
	return out, nil
}

func validKind(k Kind) bool {
	for _, v := range kinds {
		if k == v {
			return true
		}
	}
	return false
}

func kindNames() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Where the harness takes its users from.
const (
	UsersSimGenerated = "sim-generated" // sim.GenerateSeed(Users, EntriesPerUser)
	UsersDemo         = "demo"          // the demo organisation's active users with entries
)

// Config is a load-test run. ParseFlags builds one from command-line
// flags; Validate reports the first bad field, named by its flag.
type Config struct {
	// Scenarios are measured in order. With Baseline, noop is measured
	// first (once) and the others are compared with it.
	Scenarios []Scenario
	Baseline  bool

	// Rate is the open-loop arrival rate in requests per second.
	Rate float64
	// Concurrency > 0 selects closed loop: that many workers send back
	// to back and Rate is ignored.
	Concurrency int
	// Duration bounds each scenario's measured phase; Requests (> 0) also
	// bounds its request count.
	Duration time.Duration
	Requests int64
	// Rounds > 1 splits each scenario's Duration (and Requests) into that
	// many slices and measures the scenarios interleaved, round by round,
	// so that a burst of noise from a shared machine falls on all of them
	// rather than on one, and the ratios hold.
	Rounds int
	// Warmup runs before each scenario's measured phase and is excluded.
	Warmup time.Duration
	// Timeout is each request's deadline, counted from its intended start.
	Timeout time.Duration
	// MaxInflight bounds open-loop requests outstanding (queued in the
	// harness or sent); a send beyond it is dropped and counted.
	MaxInflight int
	// Workers bounds the open-loop sender goroutines; 0 means as many as
	// MaxInflight, started as needed (the harness then never queues).
	Workers int
	// Conns is how many gRPC connections requests are spread over.
	Conns int
	// UnlockEntries is how many entries unlock-multi opens per call.
	UnlockEntries int

	// Users and EntriesPerUser describe the generated organisation: the
	// simulator's seed with Self, the external simulator's otherwise.
	Users          int
	EntriesPerUser int
	// UsersFrom is UsersSimGenerated or UsersDemo.
	UsersFrom string
	// Properties > 1 spreads the generated users over that many
	// properties, each on an Openpath simulator of its own (Self only;
	// see portfolio.go): user i belongs to property i mod Properties.
	Properties int
	// Prewarm calls ListEntries once for every user before each scenario,
	// so the measured phase sees cache hits. unlock-cross needs it: it
	// learns each user's Openpath and Kisi entry ids from the answers.
	Prewarm bool

	// Self starts cloudkey in process (with RedisURL, or a redis-server
	// the harness starts, or the embedded Redis as a last resort).
	// Otherwise GRPCAddr and HTTPAddr name a running one whose tokens are
	// signed with TokenSecret.
	Self bool
	// StartTarget starts the in-process cloudkey (Self): the command sets
	// internal/selftarget.Start. Not a flag.
	StartTarget TargetStarter
	GRPCAddr    string
	HTTPAddr    string
	TokenSecret string
	RedisURL    string
	// AccountTTL, EntriesTTL and SimLatency configure the in-process
	// cloudkey and simulator (Self only); zero keeps the defaults.
	AccountTTL time.Duration
	EntriesTTL time.Duration
	SimLatency time.Duration
	// AccessURL, when set, is a simulator run apart (cloudkey sim, with
	// the same --users and --entries-per-user) that the in-process
	// cloudkey calls instead of starting its own (Self only): it can then
	// run on CPUs of its own, as an access system runs on its own
	// hardware. Its call counts and timings are not in the report.
	AccessURL string

	// JSONPath and PlotPath (.png or .svg) are written by the caller with
	// Report.WriteJSON and Report.WritePlot; Validate checks them early.
	JSONPath string
	PlotPath string

	// BaselineAddr, when set, is a running baseline (another process's
	// --serve-baseline) to measure instead of an in-process one.
	BaselineAddr string

	// FromJSON, when set, asks the command to print (and plot) a report
	// saved with --json instead of running anything.
	FromJSON string

	// ServeBaseline, when set, asks the command to serve the no-op
	// baseline on this loopback address until interrupted, and measure
	// nothing: the server peer tools are pointed at.
	ServeBaseline string
	// NoopUpstream, when set, is where the in-process baseline's NoopHTTP
	// posts (another process's --serve-noop-upstream) instead of a no-op
	// HTTP server of its own. ServeNoopUpstream asks the command to serve
	// only that upstream on this loopback address until interrupted.
	NoopUpstream      string
	ServeNoopUpstream string

	// Progress receives a live line per second; nil: none.
	Progress io.Writer
	// Logger receives the in-process cloudkey's logs; nil: slog.Default.
	Logger *slog.Logger
}

// Defaults are the flag defaults.
func Defaults() Config {
	return Config{
		Scenarios:      []Scenario{{Kind: KindList, Transport: GRPC}},
		Rate:           1000,
		Duration:       10 * time.Second,
		Rounds:         1,
		Warmup:         2 * time.Second,
		Timeout:        5 * time.Second,
		MaxInflight:    10_000,
		Conns:          4,
		UnlockEntries:  5,
		Users:          10_000,
		EntriesPerUser: 5,
		UsersFrom:      UsersSimGenerated,
		Properties:     1,
		Prewarm:        true,
		Self:           true,
	}
}

// ClosedLoop reports whether the run is closed loop.
func (c Config) ClosedLoop() bool { return c.Concurrency > 0 }

// Validate reports the first invalid setting, naming its flag, so that
// nothing starts on bad input.
func (c Config) Validate() error {
	if c.ServeNoopUpstream != "" {
		return loopbackAddr("--serve-noop-upstream", c.ServeNoopUpstream)
	}
	if c.NoopUpstream != "" {
		if err := loopbackURL("--noop-upstream", c.NoopUpstream); err != nil {
			return err
		}
		if c.BaselineAddr != "" {
			return errors.New("--noop-upstream configures the in-process baseline; --baseline-addr names another process's")
		}
	}
	if c.ServeBaseline != "" {
		return loopbackAddr("--serve-baseline", c.ServeBaseline)
	}
	if c.FromJSON != "" {
		return c.checkPlotPath()
	}
	switch {
	case len(c.Scenarios) == 0 && !c.Baseline:
		return errors.New("--scenario: no scenario to measure")
	case !(c.Rate > 0) || c.Rate > 1e7:
		return fmt.Errorf("--rate must be a positive number of requests per second (at most 1e7), got %v", c.Rate)
	case c.Concurrency < 0:
		return fmt.Errorf("--concurrency must not be negative (0 selects open loop at --rate), got %d", c.Concurrency)
	case c.Duration <= 0:
		return fmt.Errorf("--duration must be positive, got %v", c.Duration)
	case c.Rounds <= 0 || c.Rounds > 1000:
		return fmt.Errorf("--rounds must be between 1 and 1000, got %d", c.Rounds)
	case c.Rounds > 1 && c.Duration/time.Duration(c.Rounds) < 100*time.Millisecond:
		return fmt.Errorf("--rounds %d leaves slices of %v; keep --duration/--rounds at least 100ms", c.Rounds, c.Duration/time.Duration(c.Rounds))
	case c.Requests < 0:
		return fmt.Errorf("--requests must not be negative (0 means no count limit), got %d", c.Requests)
	case c.Warmup < 0:
		return fmt.Errorf("--warmup must not be negative, got %v", c.Warmup)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout must be positive, got %v", c.Timeout)
	case c.MaxInflight <= 0:
		return fmt.Errorf("--max-inflight must be positive, got %d", c.MaxInflight)
	case c.Workers < 0:
		return fmt.Errorf("--workers must not be negative (0 means up to --max-inflight), got %d", c.Workers)
	case c.Conns <= 0 || c.Conns > 1024:
		return fmt.Errorf("--conns must be between 1 and 1024, got %d", c.Conns)
	case c.UnlockEntries <= 0 || c.UnlockEntries > unlock.MaxUnlockEntries:
		return fmt.Errorf("--unlock-entries must be between 1 and %d, got %d", unlock.MaxUnlockEntries, c.UnlockEntries)
	case c.Users <= 0:
		return fmt.Errorf("--users must be positive, got %d", c.Users)
	case c.EntriesPerUser <= 0:
		return fmt.Errorf("--entries-per-user must be positive, got %d", c.EntriesPerUser)
	case c.UsersFrom != UsersSimGenerated && c.UsersFrom != UsersDemo:
		return fmt.Errorf("--users-from must be %s or %s, got %q", UsersSimGenerated, UsersDemo, c.UsersFrom)
	case c.UsersFrom == UsersSimGenerated && c.UnlockEntries > c.EntriesPerUser && c.measures(KindUnlockMulti):
		return fmt.Errorf("--unlock-entries (%d) must not exceed --entries-per-user (%d)", c.UnlockEntries, c.EntriesPerUser)
	case c.AccountTTL < 0 || c.EntriesTTL < 0 || c.SimLatency < 0:
		return errors.New("--account-ttl, --entries-ttl and --sim-latency must not be negative")
	}
	if err := c.checkCross(); err != nil {
		return err
	}
	if err := c.checkProperties(); err != nil {
		return err
	}
	if c.BaselineAddr != "" {
		if err := loopbackAddr("--baseline-addr", c.BaselineAddr); err != nil {
			return err
		}
	}
	if err := c.checkPlotPath(); err != nil {
		return err
	}
	if !c.needsCloudkey() {
		return nil
	}
	if c.Self {
		if c.GRPCAddr != "" || c.HTTPAddr != "" {
			return errors.New("--self starts cloudkey in process: give it or --grpc-addr/--http-addr, not both")
		}
		if c.RedisURL != "" {
			if err := loopbackURL("--redis-url", c.RedisURL); err != nil {
				return err
			}
		}
		if c.AccessURL != "" {
			if c.SimLatency != 0 {
				return errors.New("--sim-latency sets the in-process simulator's latency; with --access-url, start cloudkey sim with --latency instead")
			}
			if err := loopbackURL("--access-url", c.AccessURL); err != nil {
				return err
			}
		}
		return nil
	}
	if c.AccountTTL != 0 || c.EntriesTTL != 0 || c.SimLatency != 0 || c.AccessURL != "" {
		return errors.New("--account-ttl, --entries-ttl, --sim-latency and --access-url configure the in-process cloudkey: they need --self")
	}
	if c.GRPCAddr == "" && c.usesTransport(GRPC) {
		return errors.New("--grpc-addr is required without --self")
	}
	if c.HTTPAddr == "" && c.usesTransport(REST) {
		return errors.New("--http-addr is required without --self for REST scenarios")
	}
	for flag, addr := range map[string]string{"--grpc-addr": c.GRPCAddr, "--http-addr": c.HTTPAddr} {
		if addr != "" {
			if err := loopbackAddr(flag, addr); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkCross refuses what unlock-cross cannot run with.
func (c Config) checkCross() error {
	if !c.measures(KindUnlockCross) {
		return nil
	}
	switch {
	case !c.Prewarm:
		return errors.New("--prewarm=false: unlock-cross learns each user's Openpath and Kisi entry ids from the prewarm's ListEntries; keep --prewarm on")
	case c.UsersFrom != UsersSimGenerated:
		return fmt.Errorf("--users-from %s: unlock-cross needs the generated users (%s), whom the in-process Kisi simulator also knows", c.UsersFrom, UsersSimGenerated)
	case c.Self && c.AccessURL != "":
		return errors.New("--access-url: unlock-cross needs the in-process Openpath and Kisi simulators; an Openpath simulator apart is not supported with it")
	}
	return nil
}

func (c Config) checkPlotPath() error {
	if ext := strings.ToLower(filepath.Ext(c.PlotPath)); c.PlotPath != "" && ext != ".png" && ext != ".svg" {
		return fmt.Errorf("--plot: %q must end in .png or .svg", c.PlotPath)
	}
	return nil
}

// measures reports whether kind is among the scenarios.
func (c Config) measures(kind Kind) bool {
	for _, s := range c.Scenarios {
		if s.Kind == kind {
			return true
		}
	}
	return false
}

func (c Config) usesTransport(t Transport) bool {
	for _, s := range c.Scenarios {
		if !s.Kind.baseline() && s.Transport == t {
			return true
		}
	}
	return false
}

// needsCloudkey reports whether any scenario talks to cloudkey (noop
// alone needs only the in-process baseline server).
func (c Config) needsCloudkey() bool {
	for _, s := range c.Scenarios {
		if !s.Kind.baseline() {
			return true
		}
	}
	return false
}

// loopbackAddr refuses anything but a loopback host:port: the harness
// must never load a shared or remote system.
func loopbackAddr(flag, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port: %v", flag, addr, err)
	}
	if port == "" {
		return fmt.Errorf("%s: %q has no port", flag, addr)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("%s: %q is not a loopback address; the harness only loads this machine (use 127.0.0.1, ::1 or localhost)", flag, addr)
	}
	return nil
}

func loopbackURL(flag, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %v", flag, err)
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%s: %q is not a loopback address; the harness only loads this machine", flag, raw)
	}
	return nil
}

// isLoopbackHost accepts loopback IP literals and "localhost" (which
// resolves to loopback by RFC 6761); names that need DNS are refused
// rather than resolved, as a resolver could send us anywhere.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
