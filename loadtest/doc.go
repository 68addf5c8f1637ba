// Package loadtest measures cloudkey under load: `cloudkey loadtest`.
//
// A run measures one or more scenarios (GetMe, ListEntries, Unlock of one
// or several entries, Unlock of one Openpath and one Kisi entry in one
// call (unlock-cross, against an in-process Kisi simulator with the same
// users, its entry ids learnt from the prewarm's ListEntries), a mix, the
// bare gRPC no-op baseline, and noop-http,
// that no-op plus one loopback HTTP call: the floor under an Unlock, and
// noop-redis, the no-op plus one pipelined Redis read shaped as the
// cache's: the floor under a ListEntries read from Redis) one
// after the other with the same settings, so ratios to the baseline and
// to the floor come from one run on one machine. Each scenario has a warm-up phase, drained
// before the measured phase starts so the two never overlap, then a
// measured phase bounded by a duration and an optional request count.
//
// Open loop (the default) sends at a constant arrival rate whatever the
// server does: a scheduler computes each request's intended start
// (phase start + i/rate) and hands it to a worker, and latency is timed
// from that intended start. A server stall therefore shows up in the
// latency of every request scheduled during it (no coordinated omission).
// Closed loop (Concurrency > 0) runs N workers sending back to back, for
// peak-throughput figures.
//
// Latencies go into HDR histograms (microsecond resolution, 3 significant
// digits). Only loopback targets are accepted: this is a tool for one
// machine, not for loading shared systems.
//
// loadtest is a client of cloudkey's public API (gRPC and the REST
// gateway): it owns the harness, the baseline server and the report, and
// must not import cloudkey's wiring, internal/setup or server, directly
// or transitively (internal/layout checks this). The in-process target
// (Config.Self) is started by a TargetStarter the command hands it in
// Config.StartTarget: internal/selftarget.Start.
package loadtest
