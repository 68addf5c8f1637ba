// Package twiliosim simulates the part of Twilio's Programmable Messaging
// REST API (https://api.twilio.com, version 2010-04-01) that cloudkey
// uses to text guest links, over real HTTP: creating a message and
// fetching it, the message's delivery status moving on, and the signed
// status callbacks Twilio POSTs. Paths, parameters, bodies and answers
// follow Twilio's own OpenAPI description (the subset embedded in
// twiliospec); the tests validate every request and answer against it,
// and error answers against Twilio's error shape.
//
// # Use
//
//	srv, err := twiliosim.Start(twiliosim.DemoSeed()) // 127.0.0.1, a free port
//	defer srv.Close()
//	// POST srv.URL+"/2010-04-01/Accounts/"+twiliosim.DemoAccountSID+"/Messages.json"
//	// with HTTP Basic DemoAccountSID:DemoAuthToken
//
// New and Handler serve it any other way; Serve runs it until a context
// ends.
//
// # API
//
// POST /2010-04-01/Accounts/{AccountSid}/Messages.json (form-encoded)
// needs HTTP Basic with the account SID and its auth token (401, code
// 20003, otherwise), To, one of From (a number of the account) and
// MessagingServiceSid (one of the account's), and one of Body, MediaUrl
// and ContentSid. Refusals are Twilio's, checked in this order: 21604 (no
// To), 21603/21602 (no sender, no body), 21617 (body over 1,600
// characters), 21606 (From not the account's), 21701 (unknown Messaging
// Service; the simulator's choice of code), 21609 (bad StatusCallback),
// 21211 (To not E.164, To equal to From, or a number the seed lists as
// invalid), 21610 (the seed's unsubscribed numbers), 21614 (the seed's
// numbers that are not mobile). Each answers 400 with Twilio's error body
// {code, message, more_info, status}. A message created answers 201 with
// the Message resource: status queued, or accepted with a Messaging
// Service (num_segments "0" then, as Twilio does).
//
// GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json answers 200
// with the resource, or 404 (code 20404).
//
// # Delivery
//
// A message moves queued → sent → delivered (accepted → queued first with
// a Messaging Service). For a number in Seed.Undelivered it ends
// undelivered with the seed's error code (30003, 30006, 30007…); in
// Seed.Failed, failed with the code, straight from queued. With
// Seed.StepDelay set it moves one step per delay on its own; with zero
// (tests) it moves only when Advance or Settle says, so that tests need no
// timing. Each status after the first is POSTed to the message's
// StatusCallback, form-encoded, with MessageSid, SmsSid, AccountSid, From,
// To, MessageStatus, SmsStatus, ApiVersion (and MessagingServiceSid,
// ErrorCode when they apply), signed with X-Twilio-Signature: base64
// HMAC-SHA1, keyed by the auth token, of the URL followed by every
// parameter, sorted by name, as name then value.
//
// # Observing and steering
//
// Messages and MessagesTo show what was sent (the inspection API for
// tests), Callbacks the callbacks posted and their answers, Calls the
// requests per Op. SetFaults injects latency, 5xx, 429 (code 20429) and
// hangs, as the access simulators do (access/simfault); DropNext closes
// the next connections without an answer.
//
// It stands in for Twilio over real HTTP and imports no cloudkey package
// but the simulators' shared access/simfault and access/simhttp: not the
// sender (internal/notify/twilio). Only tests import its twiliospec package.
package twiliosim
