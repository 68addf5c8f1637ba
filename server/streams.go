package server

// streamWorkers is how many goroutines serve gRPC streams, reused from
// call to call (grpc.NumStreamWorkers); a call that finds them all busy
// gets its own goroutine, as without workers. An Unlock waits on the
// access system deep in net/http, and a fresh goroutine grew its stack
// there on every call (runtime.copystack was 5-14% of the CPU in
// BenchmarkUnlockOne); a reused one keeps its grown stack until a
// garbage collection shrinks it, so the gain comes with fewer
// collections (cmd/cloudkey sets GOGC 400: copystack fell to 3%). Sized
// for the calls in flight on a busy replica, not for the cores, because
// unlock handlers mostly wait.
const streamWorkers = 256
