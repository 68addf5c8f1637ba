// Package kisi is cloudkey's client for Kisi's REST API (api.kisi.io):
// the organisation key finds users by email and creates, on first use, a
// device login on each user's behalf; the user's locks are listed and
// unlocked with that user's own login, so Kisi authorizes every unlock
// for that person. It implements access.System.
//
// The organisation key is never sent with an unlock. Its calls share one
// token bucket (Config.OrgRate), and each user's calls one bucket per user,
// because Kisi allows 5 requests per second per user; a call waits for its
// token within its caller's deadline and fails with ErrRateLimited, unsent,
// when the deadline comes first. Like openpath, a circuit breaker and a
// bound on requests in flight (access/guard) protect cloudkey from a
// failing Kisi, and reads are retried with backoff; an unlock is sent a
// second time only after an answer that says it was not processed (429,
// or 401 for a login Kisi no longer accepts, which is then re-created).
//
// Check proves a new connection before it is saved (the key is an
// administrator's, the configured places exist), and DeleteLogins deletes
// at Kisi the logins a removed connection made.
//
// Of cloudkey's packages it imports access, access/guard and
// internal/identity (canonical emails) only, besides gobreaker,
// x/time/rate, x/sync and golang-lru; it must not import Redis, gRPC or
// generated code: logins are kept through LoginStore.
package kisi
