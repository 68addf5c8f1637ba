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
// # Observing and steering
//
// Calls counts requests per Op; Unlocks lists the doors opened; User,
// SetUserStatus, AssignEntry and UnassignEntry read and change the
// organisation; ExpireTokens and SetTokenTTL exercise token expiry;
// SetFaults injects latency, errors and hangs at run time.
package sim
