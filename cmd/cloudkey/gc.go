package main

import (
	"os"
	"runtime/debug"
)

// defaultGCPercent is the GOGC that serve and loadtest use when the
// environment sets none. With Go's default, 100, the collector ran each
// time the heap doubled its small live size: at a few thousand calls a
// second (each allocating several kilobytes in grpc-go and net/http) a
// cycle every few hundred milliseconds, whose mark phase takes a quarter
// of two cores plus assists from the request goroutines, and shrinks the
// stacks of the reused gRPC stream workers, which then grow them again.
// 400 lets the heap reach five times its live size between cycles and
// does a quarter of the collections. GOMEMLIMIT, when set, still bounds
// the heap: Go then collects sooner as the limit nears.
const defaultGCPercent = 400

// memoryLimitBase is, with --cache-memory, serve's soft memory limit
// when the environment sets no GOMEMLIMIT: what the cached users may keep
// (--cache-memory) plus room for the rest of the live heap (the token
// cache, connections, the code's own data: some 70 MB) and the garbage
// between cycles. Without it the heap's five-fold headroom (GOGC 400)
// applied to the cached users too: 100,000 of them took the process to
// 420 MB. Below the limit the collector runs as GOGC says; near it, more
// often.
const memoryLimitBase = 160 << 20

// tuneGC applies defaultGCPercent unless GOGC is set, and a soft memory
// limit of cacheMemory + memoryLimitBase unless GOMEMLIMIT is set or
// cacheMemory is 0 (the load test, whose process holds the harness and
// the simulators too).
func tuneGC(cacheMemory int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && cacheMemory > 0 {
		debug.SetMemoryLimit(cacheMemory + memoryLimitBase)
	}
}
