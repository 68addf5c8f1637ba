// Package sim simulates the part of the Openpath (Avigilon Alta) REST API
// that cloudkey uses, over real HTTP. Tests, the load-test harness and the
// server's embedded default mode talk to it exactly as to
// https://api.openpath.com, through the openpath client.
//
// # Use
//
//	srv, err := sim.Start(sim.DemoSeed()) // 127.0.0.1, a free port
//	defer srv.Close()
//	client, err := openpath.New(openpath.Config{
//		BaseURL: srv.URL, Email: sim.DemoServiceEmail, Password: sim.DemoServicePassword,
//	})
//
// New and Handler serve it any other way; Serve runs it until a context
// ends (the `cloudkey sim` subcommand).
//
// # Seeds
//
// A Seed is one organisation: the service account that may log in,
// credential types, entries and users. DemoSeed is the embedded demo
// organisation (ids in the Demo* constants), LoadSeed reads a JSON file in
// the same format, GenerateSeed builds a large one for load tests.
//
// # API
//
// Paths, bodies, status codes and envelopes follow the published Openpath
// spec: POST /auth/login (JSON or form body) answers 201 with a token; every
// other call needs it in the Authorization header (raw, or "Bearer "
// prefixed) and gets 401 TokenNotFoundError, JsonWebTokenError or
// TokenExpiredError otherwise. Success bodies are {"data": ..., "meta": {}},
// lists add totalCount (before the filter) and filteredCount (after it) and
// take limit (1..1000, default 1000) and offset. Errors are
// {"name", "message", "statusCode"}; an unknown org, user or entry is 404,
// a malformed body or parameter 400.
//
// cloudKeyEntryUnlock authorizes as Openpath does: 403 unless the user is
// active, the credential is that user's cloud key and the entry is assigned
// to the user.
//
// generateCloudKeyUnlockToken issues a time-limited unlock token on a
// cloud key (authorized the same way, for every entry it covers), and
// POST /tokens/cloudKeyUnlockTokens/{token}/use, which needs no session
// token, opens one of its entries: 404 for an unknown token, 403 before its
// notBefore, from its expires on, for an entry it does not cover, or when
// the user it was issued on could no longer open the entry. Guest passes
// use these with the service account's own user: when a seeded user has
// the service account's email (the demo seed's "Envoy Bot"), the login
// names it in tokenScopeList[].user.
//
// # Observing and steering
//
// Calls counts requests per Op; Unlocks lists the doors opened; User,
// SetUserStatus, AssignEntry and UnassignEntry read and change the
// organisation; ExpireTokens and SetTokenTTL exercise token expiry;
// UnlockTokens lists the unlock tokens issued and SetClock sets the clock
// their windows are checked against; SetFaults injects latency, 5xx
// errors, 429 rate limits with Retry-After, and hangs at run time.
//
// It stands in for the real system over real HTTP and imports access and
// internal/identity only; the serving path reaches it only through
// internal/setup, never directly.
package sim
