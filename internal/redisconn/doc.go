// Package redisconn is cloudkey's one home for connecting to Redis: it
// parses Redis URLs and dials a single server, a Sentinel-managed master
// or a Cluster (Dial, ParseURL, Deployment), puts the circuit breaker in
// front of every command any Redis user sends (Guard,
// ErrRedisUnavailable), and starts the embedded, password-protected
// in-process Redis used when none is configured (StartEmbedded).
//
// It knows no Redis keys and no domain: it must not import cache/ or any
// domain or adapter package (unlock, visitor, tenant, their *redis
// adapters), nor server/ or gen/.
package redisconn
