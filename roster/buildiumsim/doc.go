// Package buildiumsim simulates the part of Buildium's Open API
// (https://api.buildium.com/v1) that cloudkey's roster pull uses, over
// real HTTP: leases, tenants, move-outs and rental properties, read-only.
// Paths, parameters, answers and errors follow Buildium's own OpenAPI
// description (buildiumspec embeds the subset; PMS_APIS.md §6), and the
// tests validate every request and answer against it.
//
// # Use
//
//	srv, err := buildiumsim.Start(buildiumsim.DemoSeed()) // 127.0.0.1, a free port
//	defer srv.Close()
//	// x-buildium-client-id / x-buildium-client-secret against srv.URL
//
// # API
//
// Every request needs both x-buildium-client-id and
// x-buildium-client-secret matching the seed's key, else 401 with
// Buildium's ApiErrorResponse. Lists are paged by offset (zero-based) and
// limit (1..1000, default 50) with the total in X-Total-Count, sorted by
// id; lastupdatedfrom/lastupdatedto (UTC date-times) filter by when a
// lease or tenant last changed; propertyids and leasestatuses are
// repeated parameters. A malformed parameter is 400, an unknown id 404.
// Absent fields are omitted, never null (the spec has no nullable field).
//
// # Observing and steering
//
// Calls counts requests per Op; SetTenantEmail, SetMoveOut, SetLease and
// AddLease change the data as a manager would in Buildium, stamping the
// change with the simulator's clock (SetClock); SetFaults injects latency,
// 5xx, 429 with Retry-After and hangs (access/simfault), and
// SetCredentials rotates the key so that old credentials get 401.
//
// It imports no cloudkey package but the shared simulator plumbing
// (access/simfault, access/simhttp).
package buildiumsim
