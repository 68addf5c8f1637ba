// Package kisi is cloudkey's client for Kisi's REST API (api.kisi.io):
// the organisation key finds users by email and creates, on first use, a
// device login on each user's behalf; the user's locks are listed and
// unlocked with that user's own login, so Kisi authorizes every unlock
// for that person. It implements access.System.
//
// It imports access and the standard library; it must not import Redis,
// gRPC or generated code: logins are kept through LoginStore.
package kisi
