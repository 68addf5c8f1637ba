// Package visitor is cloudkey's visitor domain: per-location settings,
// Envoy events, guest passes, guest unlock and Protect (employee
// activation). It holds no transport: the webhook, the admin API and the
// guest page call it.
//
// # Settings
//
// UpdateSettings validates a location's settings all or nothing and answers
// like Rhombus' updateEnvoyIntegrationV2 (error flag and message, warnings,
// failed ids, misconfigured entries). Entry mappings are checked against
// the access system: the entry must exist and the integration's service
// account must be able to open it.
//
// Each refusal lists one Violation per field at fault (its path in the
// API's settings and its own problem); ErrorMsg summarises them. What is
// saved but does not behave as a plain mapping would is a warning, and
// listed with the misconfigured entries marked Warning: an entry another
// location of the property maps too (the seed's misconfiguredDoors; from
// an index of entry → locations per property kept with each save), and an
// entry with remote unlock off.
//
// After the seed's IEnvoyType, three switches default to on when omitted,
// as its nullable booleans do, so that settings saved before them keep
// their meaning: Enabled (off: no new pass, Envoy's events acknowledged,
// refusals recorded and audited as pass_refused, passes already issued
// working until they end), EntryMapping.RemoteUnlock (off: no guest pass
// opens the entry, checked at each tap, and the guest page leaves it out)
// and Hosts[email].GuestsEnabled (false: that host's guests get no pass;
// the host is the one Envoy's entry or invite names, else the tile
// contact).
//
// # Properties
//
// A location is one property's: the first UpdateSettings records the
// property in the settings, and another property can neither read nor
// change them (ErrOtherProperty, which never names the owner); settings
// saved before properties are Config.DefaultProperty's. Entry checks,
// passes (each pass records its property when issued), guest unlocks and
// Protect act through the property's access system, resolved by
// Config.Access at each use; a property without one cannot set
// locations up (ErrNoGuestAccess).
//
// # Visits and the event state machine
//
// A visit is keyed by its invite ("inv:{id}") or, for a walk-in, by its
// Envoy entry ("ent:{id}"); a sign-in with an invite joins the invite's
// visit, and a link entry → visit remembers that for later events. A visit
// gathers facts (expected arrival, sign-in, sign-out, visitor type,
// contact) and its pass follows from them, whatever order they came in:
//
//	invite_created/updated  create or update the invite's visit; with invite
//	                        only on, a pass [arrival − advance, arrival +
//	                        duration); off, none (passes come at sign-in)
//	entry_sign_in           with an invite: join its visit, one pass (invite
//	                        only on: window widened to cover [sign-in,
//	                        sign-in + duration)); invite only off: a pass
//	                        [sign-in, sign-in + SignInMaxDuration) that the
//	                        sign-out ends; a walk-in gets one only with
//	                        invite only off
//	entry_sign_out          end the pass at once
//	invite_removed          end the pass at once
//	entry_blacklist_deny    end the pass at once; the visit stays ended
//	entry_blacklist_review  hold: no pass, an existing one opens nothing,
//	                        until an event for the entry carries
//	                        approval-status approved or Approve
//
// Tile registrations (Register) follow the invite window whatever invite
// only says: the tile issues the pass itself. A blocked visitor type, a
// type mapped to no entry or invite only refuse the pass; the reason is
// recorded on the visit and in the location's log (Visit, Decisions). An
// existing pass that becomes refused (its type now blocked) ends.
//
// Ending is terminal: the ended visit stays as a tombstone for the
// retention period. So a sign-out that overtakes its sign-in leaves a
// tombstone the sign-in then finds (no pass), and an update or sign-in after
// an invite's removal finds the removed visit (it stays removed).
//
// Each event's changes to visits are one optimistic store transaction
// (VisitStore.Transact; in Redis, WATCH the visit and link keys and
// MULTI/EXEC the writes), run again on conflict, so concurrent events for
// one visit on several replicas serialise. Side effects (sending the
// link) happen after the commit.
//
// # Idempotency
//
// An event is recognised by SHA-256 of its name, location and payload
// (meta changes between deliveries). It is claimed with SET NX before it is
// handled and its outcome stored for EventTTL afterwards; a redelivery
// returns that outcome with Duplicate set and does nothing. A failed
// handling releases the claim so that Envoy's redelivery is handled. The
// state machine is idempotent as well (one visit per invite or entry, the
// link sent once per contact), so even an event the digest misses makes no
// second pass.
//
// # Passes and guest unlock
//
// The link token is 256 random bits, base64url, sent as BaseURL/g/{token}
// through the Notifier (to the email and to the phone, for a visitor with
// both) and stored only as its SHA-256. Each message's delivery state
// (the notifier's id and status, a refusal's code and reason) is kept
// with the pass; UpdateDelivery applies the delivery system's status
// reports. The guest page and messages name the building: Envoy's
// location name, the tenant building's, else the property's. PassView and
// GuestUnlock enforce the window here (no upstream call outside it) and the
// access system enforces it again: the first unlock issues an Openpath
// cloud-key unlock token on the service account with notBefore/expires set
// to the window, used once per tap. An unknown token looks exactly like an
// ended pass.
//
// # Protect and the scheduler
//
// A passed screening (employee_entry_sign_in, see screeningRefusal)
// activates the employee's access-system user and schedules its suspension
// after the employee access duration; employee_entry_sign_out suspends at
// once. Excluded employees are never touched. Scheduled suspensions are in
// the store's JobQueue, so they survive restarts; RunScheduler on every
// replica claims due jobs atomically with a lease (in Redis, a Lua script
// moving each from the due set to a claimed set), so one replica runs it.
// Activation, sign-out and the scheduled suspension of one employee take a
// per-user lock (Locker), and a claimed job runs only if it was not
// rescheduled or cancelled since its claim.
//
// It must not import Redis, gRPC or the generated API (internal/layout
// checks): storage goes through Store, implemented by
// visitor/visitorredis.
package visitor
