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

// tuneGC applies defaultGCPercent unless GOGC is set.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
