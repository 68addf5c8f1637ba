package loadtest

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Usage introduces `cloudkey loadtest -h`.
const Usage = `usage: cloudkey loadtest [flags]

Measures cloudkey on this machine (loopback only). By default it starts
cloudkey in process with a simulator of --users generated users and a
private redis-server, and sends --rate requests per second (open loop,
latency from each request's intended start) for --duration after --warmup.

  cloudkey loadtest --scenario list,unlock,me --baseline --concurrency 64   # peak, ratios to the no-op RPC
  cloudkey loadtest --scenario unlock --rate 5000 --plot unlock.png           # latency at a fixed rate
  cloudkey loadtest --grpc-addr 127.0.0.1:9090 --scenario me                  # a running cloudkey
  cloudkey loadtest --scenario unlock-multi,unlock-cross --unlock-entries 2 --concurrency 64 --rounds 3   # two systems vs one
  cloudkey loadtest --scenario list,unlock --baseline --concurrency 64 --users 100000 --properties 1000   # a portfolio

Flags:
`

// ParseFlags builds a Config from `cloudkey loadtest` arguments, with
// environment defaults from getenv (CLOUDKEY_TOKEN_SECRET,
// CLOUDKEY_REDIS_URL), and validates it. Usage and flag errors go to out.
// The definitions live here, not in the command, so that the tests can
// check that each bad flag is refused by name.
func ParseFlags(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Defaults()
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, Usage)
		fs.PrintDefaults()
	}
	scenarios := fs.String("scenario", "list", "comma-separated scenarios: me, list, unlock, unlock-multi (--unlock-entries Openpath doors per call), unlock-cross (one Openpath and one Kisi door per call, the Kisi one on an in-process Kisi simulator with the same users; needs --prewarm, and with unlock-multi --unlock-entries 2 its ratio to unlock-multi is printed), mix (70% list, 25% unlock, 5% me), noop (the bare gRPC baseline), noop-http (the no-op plus one loopback HTTP call: the floor under an unlock, and unlock's ratio to it is printed), noop-redis (the no-op plus one pipelined Redis read shaped as the cache's, on the harness's Redis: the floor under a list read from Redis, and list's ratio to it is printed); an item may end in :grpc or :rest, e.g. list,list:rest")
	transport := fs.String("transport", string(GRPC), "default transport of the scenarios: grpc or rest (REST goes through the gateway on --http-addr)")
	fs.BoolVar(&c.Baseline, "baseline", c.Baseline, "also measure the bare grpc-go no-op service first, with the same settings, and print each scenario's throughput and p99 as a ratio to it")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "open-loop arrival rate, requests per second")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "closed loop: this many workers send back to back (--rate is ignored); use it for peak throughput, e.g. 64")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured time per scenario")
	fs.Int64Var(&c.Requests, "requests", c.Requests, "at most this many measured requests per scenario (0: no limit; --duration still bounds)")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "split --duration into this many slices and interleave the scenarios slice by slice, so noise on a shared machine hits them all alike (ratios hold); e.g. 5")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "unmeasured warm-up before each scenario")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "per-request deadline, from the request's intended start")
	fs.IntVar(&c.MaxInflight, "max-inflight", c.MaxInflight, "open loop: most requests outstanding; sends beyond it are dropped and counted")
	fs.IntVar(&c.Workers, "workers", c.Workers, "open loop: most sender goroutines (0: up to --max-inflight, so nothing queues in the harness)")
	fs.IntVar(&c.Conns, "conns", c.Conns, "gRPC connections, used round robin")
	fs.IntVar(&c.UnlockEntries, "unlock-entries", c.UnlockEntries, "entries per call in the unlock-multi scenario (2 to compare with unlock-cross)")
	fs.IntVar(&c.Users, "users", c.Users, "users in the generated organisation (user0@load.example.com ...); requests pick one uniformly")
	fs.IntVar(&c.EntriesPerUser, "entries-per-user", c.EntriesPerUser, "entries each generated user may open")
	fs.IntVar(&c.Properties, "properties", c.Properties, "spread the generated users over this many properties (p0000, p0001, ...), each on an in-process Openpath simulator of its own; user i is at property i mod N, its token names it, and its door ids are learnt from the prewarm's ListEntries (with --self only; not with --access-url or unlock-cross)")
	fs.StringVar(&c.UsersFrom, "users-from", c.UsersFrom, "sim-generated (the organisation `cloudkey sim --users N --entries-per-user M` serves) or demo (alice@ and erin@example.com)")
	fs.BoolVar(&c.Prewarm, "prewarm", c.Prewarm, "call ListEntries once for every user before each scenario, so the measured phase sees cache hits")
	fs.BoolVar(&c.Self, "self", c.Self, "start cloudkey in process on 127.0.0.1 (default unless --grpc-addr or --http-addr is given)")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "", "a running cloudkey's gRPC address (loopback only)")
	fs.StringVar(&c.HTTPAddr, "http-addr", "", "a running cloudkey's HTTP address, for REST scenarios (loopback only)")
	fs.StringVar(&c.TokenSecret, "token-secret", getenv("CLOUDKEY_TOKEN_SECRET"), "HS256 key the target verifies tokens with (env CLOUDKEY_TOKEN_SECRET; default: the development key)")
	fs.StringVar(&c.RedisURL, "redis-url", getenv("CLOUDKEY_REDIS_URL"), "with --self: Redis for the in-process cloudkey (env CLOUDKEY_REDIS_URL; default: a redis-server the harness starts, else the embedded one, whose figures mean nothing)")
	fs.DurationVar(&c.AccountTTL, "account-ttl", 0, "with --self: the in-process cloudkey's --account-ttl (0: its default)")
	fs.DurationVar(&c.EntriesTTL, "entries-ttl", 0, "with --self: the in-process cloudkey's --entries-ttl (0: its default)")
	fs.DurationVar(&c.SimLatency, "sim-latency", 0, "with --self: latency the simulator adds to every access-system call")
	fs.StringVar(&c.AccessURL, "access-url", "", "with --self: a simulator run apart (cloudkey sim with the same --users and --entries-per-user, loopback only) for the in-process cloudkey to call instead of its own, e.g. pinned to other CPUs with taskset")
	fs.StringVar(&c.JSONPath, "json", "", "write the full report as JSON to this file")
	fs.StringVar(&c.PlotPath, "plot", "", "write a latency-by-percentile chart to this file (.png or .svg)")
	fs.StringVar(&c.BaselineAddr, "baseline-addr", "", "measure the no-op baseline served by another process (cloudkey loadtest --serve-baseline) instead of starting one in process")
	fs.StringVar(&c.FromJSON, "from-json", "", "print (and with --plot, draw) a report saved with --json; runs nothing")
	fs.StringVar(&c.NoopUpstream, "noop-upstream", "", "the URL noop-http's HTTP call goes to: another process's --serve-noop-upstream (loopback only; default: a no-op HTTP server in this process)")
	fs.StringVar(&c.ServeNoopUpstream, "serve-noop-upstream", "", "only serve noop-http's HTTP side on this loopback address until interrupted, to run it apart (e.g. on another CPU) and name it with --noop-upstream; measures nothing")
	fs.StringVar(&c.ServeBaseline, "serve-baseline", "", "only serve the no-op baseline on this loopback address until interrupted, for peer tools (ghz --proto loadtest/testdata/baseline.proto); measures nothing")
	quiet := fs.Bool("quiet", false, "no live progress line")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// --self is the default only when no address is given; an explicit
	// --self together with an address is refused by Validate.
	if !set["self"] && (c.GRPCAddr != "" || c.HTTPAddr != "") {
		c.Self = false
	}
	var err error
	if c.Scenarios, err = ParseScenarios(*scenarios, Transport(strings.ToLower(*transport))); err != nil {
		return Config{}, err
	}
	if *quiet {
		c.Progress = nil
	} else {
		c.Progress = out
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// formatRate prints a rate without a needless fraction.
func formatRate(r float64) string {
	if r == float64(int64(r)) {
		return strconv.FormatInt(int64(r), 10)
	}
	return strconv.FormatFloat(r, 'f', 1, 64)
}
