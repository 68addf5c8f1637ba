// Package envoysim simulates the part of Envoy's REST API
// (https://app.envoy.com) that cloudkey uses to register visitors, and the
// webhooks Envoy sends back, over real HTTP, for tests and the demo.
//
// Envoy publishes no OpenAPI description. The shapes here are those of
// Envoy's official SDK (envoy/envoy-integrations-sdk-nodejs: the
// resources, payloads and EnvoyMeta types, EnvoyUserAPI and
// EnvoyPluginAPI for the paths), summarised in ACCESS_APIS.md §2; the
// tests check every request, answer and webhook against Go mirrors of
// those types with strict decoding and the SDK's required fields
// (package envoyshape). Error bodies, which the SDK does not type, follow
// JSON:API's error object, and the token endpoint's RFC 6749 [NOT
// CONFIRMED against Envoy].
//
// # Use
//
//	srv, err := envoysim.Start(envoysim.DemoSeed()) // 127.0.0.1, a free port
//	defer srv.Close()
//	srv.SetWebhookURL("http://127.0.0.1:8080/v1/envoy/webhook")
//
// # API
//
// POST /a/auth/v0/token (OAuth2 client credentials, as
// EnvoyPluginAPI.loginAsPlugin: HTTP Basic client_id:client_secret, a JSON
// or form body with grant_type client_credentials) answers EnvoyMetaAuth
// {token_type "Bearer", access_token, expires_in, refresh_token null}; a
// wrong client answers 401 invalid_client. Every /api/v3 call needs
// "Authorization: Bearer <token>" with a token not expired (401
// otherwise). POST /api/v3/invites ({data: {type "invites", attributes:
// InviteCreationAttributes, relationships: {location, flow?}}}) answers 201
// {data: InviteModel}; 422 names a missing full-name, a bad
// expected-arrival-time, an unknown location or a flow not of the
// location. DELETE /api/v3/invites/{id} answers 204 (404 when unknown).
// GET /api/v3/invites/{id}, GET /api/v3/locations and GET /api/v3/flows
// (filter[location]) list what the seed has.
//
// # Webhooks
//
// With a webhook URL set, the simulator POSTs the events Envoy sends:
// invite_created after a POST, invite_removed after a DELETE, and
// entry_sign_in / entry_sign_out when a test calls SignIn, WalkIn or
// SignOut. A body is {meta: EnvoyEventMeta, payload: InvitePayload |
// EntryPayload}, signed with X-Envoy-Signature: base64 HMAC-SHA256 of the
// body under the webhook secret, exactly as visitor/envoy verifies it.
// The invite's user-data (an object in the REST API) comes back in the
// payload as Envoy's [{field, value}] list, so a correlation tag set at
// creation is found in invite_created. The invite payload has no phone,
// as the SDK's InvitePayload has none: the phone given at creation does
// not come back.
//
// A demo run by hand signs visitors in and out with the control paths
// (control.go), which stand for the front desk and are not Envoy's API:
// POST /_sim/invites/{id}/sign-in and POST /_sim/entries/{id}/sign-out.
//
// invite_created is sent after the POST is answered, unless
// SetWebhookBeforeAnswer(true) makes it arrive first (the race cloudkey
// must handle). WaitWebhooks waits for the webhooks in flight; Webhooks
// lists what was sent and the answers.
//
// It stands in for Envoy over real HTTP and imports no cloudkey package
// but the simulators' shared access/simfault and access/simhttp: not
// visitor/envoy, not the envoyapi client.
package envoysim
