// Package auditredis is the Redis adapter of unlock's audit: StreamAuditor
// (unlock.Auditor) appends attempts to a Redis stream from a background
// writer, with a local spool for what Redis cannot take at shutdown, and
// AuditLog (unlock.AuditReader) reads them back. The stream key and its
// field names are the current release's. It holds no unlock logic and
// must not import server/, gen/ or grpc; internal/setup builds it.
package auditredis
