// Package visitorredis is visitor.Store in Redis. Its key names are those
// the visitor service has always written (see Store), so data written by
// earlier releases is read as it is.
//
// The Redis adapter of visitor.Store: only the wiring (internal/setup) and
// tests import it; visitor must not (an import cycle, and the rule that
// domains import no Redis).
package visitorredis
