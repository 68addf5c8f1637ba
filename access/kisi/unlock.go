package kisi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/guard"
)

// Reasons an unlock failed, in words a person can act on
// (access.ReasonError.Reason).
const (
	ReasonDenied        = "access denied"
	ReasonDisabled      = "your access is disabled"
	ReasonNotYetValid   = "your access is not yet valid"
	ReasonNoLongerValid = "your access is no longer valid"
	ReasonNotNow        = "your access does not allow this door at this time"
	ReasonNotAtReader   = ReaderRestricted
	ReasonAppDisabled   = "your access does not include opening from the app"
	ReasonNotPrimary    = "this is not your primary device"
	ReasonLockedDown    = "the door is locked down"
	ReasonInProgress    = "the door is already unlocking"
	ReasonDoorState     = "the door cannot be opened now"
	ReasonDoorNotFound  = "this door was not found for you"
	ReasonLoginRefused  = "Kisi no longer accepts your login"
	ReasonLockOffline   = "the lock is offline"
	ReasonController    = "the door controller is unavailable"
	ReasonFirmware      = "the door is updating its firmware; try again shortly"
	ReasonBusy          = "too many requests just now; try again in a moment"
	ReasonUnavailable   = "Kisi is unavailable"
)

// Kisi's error codes (ORIG info.description; KISI_NOTES §4) and what they
// mean for the resident. The HTTP status of each is not confirmed, so the
// code decides when it is known, and the status when it is not.
var (
	accessReasons = map[string]string{
		"fcd8ef": ReasonDenied, "afc496": ReasonDenied, "f398de": ReasonDenied,
		"fcd8ff": ReasonDisabled,
		"f358de": ReasonNotYetValid,
		"f35ade": ReasonNoLongerValid,
		"34ffaa": ReasonNotNow,
		"a3995f": GeofenceRestricted, "bb4faa": ReasonNotAtReader,
		"bbc93f": ReasonAppDisabled, "f01337": ReasonAppDisabled,
		"34bd8f": ReasonNotPrimary,
	}
	doorStateReasons = map[string]string{
		"fad001": ReasonLockedDown, "fad002": ReasonLockedDown,
		"fad10e": ReasonDoorNotFound,
	}
	// busyDoorReasons: the door is already being unlocked.
	busyDoorReasons = map[string]string{
		"fad110": ReasonInProgress, "fad112": ReasonInProgress,
	}
	// hardwareReasons are a door's own trouble, answered by a healthy
	// Kisi: they do not count against Kisi in the circuit breaker.
	hardwareReasons = map[string]string{
		"fad107": ReasonLockOffline, "fad10f": ReasonLockOffline, "fad106": ReasonLockOffline,
		"fac001": ReasonController, "fac002": ReasonController, "fac003": ReasonController, "fac004": ReasonController,
		"ecc123": ReasonController, "ff420a": ReasonController, "fad105": ReasonController, "fad108": ReasonController,
		"fbc000": ReasonFirmware,
	}
)

// defaultUnlockRetryAfter is how long an unlock answered 429 without a
// Retry-After waits before its one retry.
const defaultUnlockRetryAfter = time.Second

// Unlock opens entryID with the user's own login (POST /locks/{id}/unlock;
// the organisation key is never used for it), so that Kisi applies the
// user's rights and its audit log names the user. credentialID is the
// login EnsureCloudKey returned; the client uses the user's current login,
// which is that one unless Kisi refused it since.
//
// A refusal or failure is an *access.ReasonError (Kind access.ErrDenied
// or access.ErrUnavailable) whose Reason a person can act on and whose Err
// is the *access.StatusError. The unlock is sent a second time, once, only
// after an answer that says Kisi did not process it: 429 (when its
// Retry-After, 1 s if absent, still fits before ctx's deadline) or 401 (the
// login is no longer accepted: it is deleted and re-created first). A
// timeout or a transport error is never repeated: the door may have opened.
func (c *Client) Unlock(ctx context.Context, userID, credentialID, entryID string) error {
	uid, err := parseID("user id", userID)
	if err == nil {
		_, err = parseID("credential id", credentialID)
	}
	var lockID int64
	if err == nil {
		lockID, err = parseID("entry id", entryID)
	}
	if err != nil {
		return fmt.Errorf("kisi: unlock: %w", err)
	}
	if err := c.unlock(ctx, uid, lockID); err != nil {
		return fmt.Errorf("kisi: unlock lock %d for user %d: %w", lockID, uid, err)
	}
	return nil
}

func (c *Client) unlock(ctx context.Context, uid, lockID int64) error {
	s, err := c.session(ctx, uid, "")
	if err != nil {
		return fmt.Errorf("the user's login: %w", busyIfRateLimited(err))
	}
	path := "/locks/" + strconv.FormatInt(lockID, 10) + "/unlock"
	for retried := false; ; retried = true {
		start := time.Now()
		_, err = c.do(ctx, call{op: "unlock", method: http.MethodPost, path: path,
			auth: s.auth(), limiter: c.userLimiter(uid), user: true}, nil)
		var se *access.StatusError
		if err == nil || retried || !errors.As(err, &se) {
			return unlockError(err)
		}
		switch se.Status {
		case http.StatusTooManyRequests:
			wait := se.RetryAfter
			if wait <= 0 {
				wait = defaultUnlockRetryAfter
			}
			if !guard.Fits(ctx, wait, start) || !guard.Pause(ctx, wait) {
				return unlockError(err)
			}
		case http.StatusUnauthorized:
			if s, err = c.renew(ctx, uid, s); err != nil {
				return fmt.Errorf("re-create the login Kisi refused: %w", busyIfRateLimited(err))
			}
		default:
			return unlockError(err)
		}
	}
}

// busyIfRateLimited reads a request the rate limit held back as "Kisi is
// busy"; other errors (of a login look-up or creation, not of the unlock)
// are returned as they are.
func busyIfRateLimited(err error) error {
	if errors.Is(err, ErrRateLimited) {
		return &access.ReasonError{Kind: access.ErrUnavailable, Reason: ReasonBusy, Err: err}
	}
	return err
}

// unlockError turns an unlock's failure into an *access.ReasonError;
// errors without an answer (transport, deadline, the breaker, the rate
// limit) are returned as they are, except that a rate limit that left no
// slot reads as "Kisi is busy".
func unlockError(err error) error {
	if err == nil {
		return nil
	}
	var se *access.StatusError
	if !errors.As(err, &se) {
		return busyIfRateLimited(err)
	}
	code := errorCode(se)
	reason := func(kind error, r string) error { return &access.ReasonError{Kind: kind, Reason: r, Err: se} }
	if r, ok := accessReasons[code]; ok {
		return reason(access.ErrDenied, r)
	}
	if r, ok := doorStateReasons[code]; ok {
		return reason(access.ErrDenied, r)
	}
	if r, ok := busyDoorReasons[code]; ok {
		return reason(access.ErrUnavailable, r)
	}
	if r, ok := hardwareReasons[code]; ok {
		return reason(access.ErrUnavailable, r)
	}
	switch st := se.Status; {
	case st == http.StatusForbidden:
		return reason(access.ErrDenied, ReasonDenied)
	case st == http.StatusNotFound:
		return reason(access.ErrDenied, ReasonDoorNotFound)
	case st == http.StatusConflict:
		return reason(access.ErrDenied, ReasonDoorState)
	case st == http.StatusUnauthorized:
		return reason(access.ErrDenied, ReasonLoginRefused)
	case st == http.StatusTooManyRequests:
		return reason(access.ErrUnavailable, ReasonBusy)
	case st == http.StatusServiceUnavailable:
		return reason(access.ErrUnavailable, ReasonController)
	case st >= 500:
		return reason(access.ErrUnavailable, ReasonUnavailable)
	}
	return err
}
