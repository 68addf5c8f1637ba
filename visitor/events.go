package visitor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// ErrEventInProgress: the same event is being handled right now (a
// redelivery raced the first delivery). The webhook should answer 503 so
// that Envoy delivers it again later: answering 200 could lose the event
// if the first handling then failed.
var ErrEventInProgress = errors.New("visitor: the same event is being handled")

// ErrMalformedEvent is envoy.ErrMalformed: HandleEvent's error for a body
// that is not a usable event (an *envoy.FieldError names the field); the
// webhook answers 400.
var ErrMalformedEvent = envoy.ErrMalformed

// VerifySignature is envoy.VerifySignature: whether header (the
// X-Envoy-Signature value) is the base64 HMAC-SHA256 of the raw body under
// secret, compared in constant time. The webhook calls it before
// HandleEvent and answers 401, recording nothing, when it fails.
func VerifySignature(body []byte, header string, secret []byte) bool {
	return envoy.VerifySignature(body, header, secret)
}

// pendingTTL bounds how long an event is marked as being handled: if the
// replica handling it dies, a redelivery after this is handled afresh
// (the state machine is idempotent, so that is safe).
const pendingTTL = 2 * time.Minute

const pendingMark = "pending"

type eventHandler func(context.Context, envoy.Event, Outcome) (Outcome, error)

func (s *Service) handlerFor(name string) eventHandler {
	switch name {
	case envoy.InviteCreated, envoy.InviteUpdated:
		return s.onEnvoyInvite // tile_envoy.go
	case envoy.InviteRemoved:
		return s.onInviteRemoved
	case envoy.EntrySignIn:
		return s.onSignIn
	case envoy.EntrySignOut:
		return s.onSignOut
	case envoy.EntryBlacklistReview:
		return s.onBlacklistReview
	case envoy.EntryBlacklistDeny:
		return s.onBlacklistDeny
	case envoy.EmployeeEntrySignIn:
		return s.onEmployeeSignIn
	case envoy.EmployeeEntrySignOut:
		return s.onEmployeeSignOut
	}
	return nil
}

// HandleEvent handles one Envoy event body. The caller (the webhook) has
// verified its signature with envoy.VerifySignature and bounded its size.
//
// A malformed body is an error matching envoy.ErrMalformed (an
// *envoy.FieldError names the field): answer 400. Events cloudkey does not
// act on are ActionIgnored. A redelivered event does nothing and returns the
// first handling's outcome with Duplicate set; one being handled right now
// is ErrEventInProgress. Any other error is transient (Redis, the access
// system or the notifier failed): the event is not marked handled, so that
// Envoy's redelivery is handled afresh.
//
// Events are recognised by a digest of their name, location and payload,
// not of the whole body: meta carries a fresh auth token and job id on
// every delivery. Two different events with the same payload would change
// nothing anyway; the state machine is idempotent on its own, and the
// digest only spares the work.
func (s *Service) HandleEvent(ctx context.Context, raw []byte) (Outcome, error) {
	ev, err := envoy.Parse(raw)
	if err != nil {
		return Outcome{}, fmt.Errorf("visitor: %w", err)
	}
	out := Outcome{At: s.now().UTC(), Event: ev.Name, Location: ev.Location.ID}
	switch ev.Type {
	case envoy.TypeInvite:
		out.InviteID, out.EntryID = ev.ID, ev.EntryID
	default:
		out.EntryID, out.InviteID = ev.ID, ev.InviteID
	}
	h := s.handlerFor(ev.Name)
	if h == nil {
		return ignored(out, "cloudkey does not act on "+ev.Name+" events"), nil
	}

	key := eventDigest(ev)
	if prev, done, err := s.claimEvent(ctx, key); err != nil || done {
		return prev, err
	}
	res, err := h(ctx, ev, out)
	if err != nil {
		s.releaseEvent(ctx, key)
		return res, err
	}
	s.rememberEvent(ctx, key, res)
	if res.Action != ActionIgnored {
		s.log.InfoContext(ctx, "visitor: event handled", "event", res.Event, "location", res.Location,
			"invite", res.InviteID, "entry", res.EntryID, "action", res.Action, "pass", res.PassID, "reason", res.Reason)
	}
	return res, nil
}

func eventDigest(ev envoy.Event) string {
	var payload bytes.Buffer
	if err := json.Compact(&payload, ev.Payload); err != nil {
		payload.Write(ev.Payload) // Parse accepted it, so this does not happen
	}
	h := sha256.New()
	h.Write([]byte(ev.Name + "\x00" + ev.Location.ID + "\x00"))
	h.Write(payload.Bytes())
	return hex.EncodeToString(h.Sum(nil))
}

// claimEvent marks the event as being handled (SET NX). done reports that
// it must not be handled: prev is then the first handling's outcome, or
// err is ErrEventInProgress.
func (s *Service) claimEvent(ctx context.Context, key string) (prev Outcome, done bool, err error) {
	ok, err := s.store.MarkEvent(ctx, key, []byte(pendingMark), pendingTTL)
	if err != nil {
		return Outcome{}, true, fmt.Errorf("visitor: mark event: %w", err)
	}
	if ok {
		return Outcome{}, false, nil
	}
	b, found, err := s.store.EventMark(ctx, key)
	switch {
	case err == nil && !found:
		// Released between SETNX and GET: the first handling failed.
		return Outcome{}, true, ErrEventInProgress
	case err != nil:
		return Outcome{}, true, fmt.Errorf("visitor: read event mark: %w", err)
	case string(b) == pendingMark:
		return Outcome{}, true, ErrEventInProgress
	}
	if err := json.Unmarshal(b, &prev); err != nil {
		return Outcome{}, true, fmt.Errorf("visitor: decode event mark: %w", err)
	}
	prev.Duplicate = true
	return prev, true, nil
}

// rememberEvent stores the outcome for EventTTL. If that write fails the
// event is still handled; a redelivery would then be handled again, which
// the state machine makes harmless.
func (s *Service) rememberEvent(ctx context.Context, key string, out Outcome) {
	b, _ := json.Marshal(out)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.store.SetEventMark(ctx, key, b, s.cfg.EventTTL); err != nil {
		s.log.WarnContext(ctx, "visitor: cannot remember a handled event", "err", err)
	}
}

// releaseEvent forgets the mark after a failure, so that the redelivery is
// handled; even when the request's context has ended.
func (s *Service) releaseEvent(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := s.store.DeleteEventMark(ctx, key); err != nil {
		s.log.WarnContext(ctx, "visitor: cannot release a failed event; its redelivery waits for the mark to expire", "err", err, "ttl", pendingTTL)
	}
}
