// Package kisisim simulates the part of the Kisi REST API
// (https://api.kisi.io) that cloudkey uses, over real HTTP, for one or
// more organisations served by one server, as Kisi serves every
// organisation. Tests, the load-test harness and `cloudkey sim --kind
// kisi` talk to it exactly as to Kisi, through the kisi client. Paths,
// parameters, bodies, status codes and answers follow Kisi's own OpenAPI
// description (testdata/kisi-subset.openapi.json); the tests validate
// every request and answer against it (package kisispec).
//
// # Use
//
//	srv, err := kisisim.Start(kisisim.DemoSeed()) // 127.0.0.1, a free port
//	defer srv.Close()
//	// Authorization: KISI-LOGIN kisisim.DemoHarborAPIKey against srv.URL
//
// New and Handler serve it any other way; Serve runs it until a context
// ends.
//
// # Seeds
//
// A Seed is a list of organisations, each with an API key (its admin's
// login secret), places, locks and users with their access to locks,
// optionally time-boxed. DemoSeed is the demo of PRODUCT.md (ids and keys
// in the Demo* constants); GenerateSeed builds a large organisation for
// load tests.
//
// # API
//
// Every call needs "Authorization: KISI-LOGIN <secret>", the secret of
// the organisation's API key or of a login; otherwise 401. Errors are
// Kisi's {"error", "code"}. POST /logins with the API key logs in on a
// user's behalf (device logins only, at most MaxDeviceLogins per user,
// the least recently used removed past that); GET /login shows the
// current login and DELETE /logins/{id} revokes one. GET /users (email
// filter: exact, ASCII case-insensitive) and PATCH /users/{id}
// (access_enabled) need the API key. GET /locks lists all of the
// organisation's locks for the API key, and for a user's login the locks
// the user has access to now or later. GET /locks/{id}, /places and
// /places/{id} show the caller's organisation only (404 otherwise).
// POST /locks/{id}/unlock enforces the user's rights as Kisi documents
// (see Sim.unlock's order: fcd8ff, fcd8ef, f358de, f35ade, bb4faa,
// a3995f, fad001, fad107, fad10e); the API key unlocks as the admin, and
// Unlocks records that with ByOrgKey. Lists are paged by limit and
// offset with X-Collection-Range "start-end/total", the range requested.
//
// Each user (the API key counts as the admin user) may make 5 requests
// per second, shared by all of the user's logins, as on Kisi; beyond that
// the answer is 429 with Retry-After: 1 (SetRateLimit changes or turns
// it off).
//
// # Observing and steering
//
// Calls counts requests per Op; Unlocks lists the doors opened; User,
// SetUserAccess, SetSCIMAccess, Grant, GrantWindow, Revoke, SetLockState
// and SetLockRestrictions read and change the organisations; Logins
// counts a user's device logins; SetClock sets the clock access windows
// are checked against; SetFaults injects latency, 5xx errors, 429s and
// hangs at run time, as access/sim's Faults do.
//
// It stands in for the real system over real HTTP and imports no cloudkey
// package: no adapter (not access/kisi, not access/sim) and not the
// domain; the serving path reaches it only through the wiring or the sim
// command, never directly. Only tests import its kisispec package.
package kisisim
