package kisi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/guard"
)

const (
	// maxAnswerBytes bounds a decoded answer (a page of 250 locks is well
	// below a megabyte).
	maxAnswerBytes = 16 << 20
	// maxErrorBody is how much of an error answer StatusError keeps.
	maxErrorBody = 512
	// maxDrainBytes is how much of an unread body is drained so that the
	// connection can be reused.
	maxDrainBytes = 64 << 10
)

// call is one Kisi request.
type call struct {
	op     string // what cloudkey was doing, for errors: "list locks"
	method string
	path   string // with its query, e.g. "/locks?limit=250&offset=0"
	body   []byte // JSON, or nil
	// auth is the Authorization header's value: the organisation key or a
	// user's login ("KISI-LOGIN <secret>").
	auth string
	// limiter paces the key auth names: the organisation's or the user's.
	limiter *rate.Limiter
	// user is set for a call made with a user's login: its 429 says that
	// user went over the user's own quota, not that Kisi is unwell.
	user bool
	// retry429 lets do retry a call that is not a GET when Kisi answers
	// 429, which it answers without processing the call. Set for a login
	// creation and a login deletion only (both safe to repeat); an
	// unlock's retry is Unlock's own decision.
	retry429 bool
}

// do sends rq and decodes a 2xx answer into out (unless out is nil); it
// returns the answer's headers. Each attempt first waits for a token of
// rq.limiter (never past ctx's deadline: ErrRateLimited, unsent), then
// goes through the circuit breaker and takes an in-flight slot. A GET is
// tried up to guard.MaxReadAttempts times when Kisi is unavailable, after
// a backoff or the Retry-After it asked for, while the retry fits before
// ctx's deadline; so is a call with rq.retry429 answered 429. Nothing
// else is repeated here.
func (c *Client) do(ctx context.Context, rq call, out any) (http.Header, error) {
	for n := 1; ; n++ {
		hdr, start, err := c.attempt(ctx, rq, out)
		// A request the rate limit held back was not sent; a retry would
		// not get a token either.
		if err == nil || !(rq.method == http.MethodGet || rq.retry429 && tooMany(err)) ||
			n == guard.MaxReadAttempts || errors.Is(err, ErrRateLimited) {
			return hdr, err
		}
		wait, ok := guard.RetryDelay(err, n)
		if !ok || !guard.Fits(ctx, wait, start) || c.guard.State() != gobreaker.StateClosed || !guard.Pause(ctx, wait) {
			return hdr, err
		}
	}
}

// attempt sends rq once, through the limiter, the breaker and a slot; it
// returns when the attempt started, after the limiter's wait.
func (c *Client) attempt(ctx context.Context, rq call, out any) (http.Header, time.Time, error) {
	// An open breaker refuses at once, rather than after a wait for a
	// token it would not use.
	if err := c.guard.Refusing(rq.op); err != nil {
		return nil, time.Now(), err
	}
	if err := wait(ctx, rq.op, rq.limiter); err != nil {
		return nil, time.Now(), err
	}
	start := guard.AttemptStart(ctx)
	var hdr http.Header
	// answer is an error answer of a healthy Kisi that the breaker must
	// not count: a door's own trouble (a lock offline) or one user over
	// the user's quota.
	var answer error
	err := c.guard.Run(ctx, rq.op, start, func() error {
		if err := c.guard.Acquire(ctx, rq.op); err != nil {
			return err
		}
		defer c.guard.Release()
		h, err := c.exchange(ctx, rq, out)
		hdr = h
		if err != nil && healthyAnswer(rq, err) {
			answer = err
			return nil
		}
		return err
	})
	if err == nil {
		err = answer
	}
	return hdr, start, err
}

// tooMany reports whether err is Kisi's 429.
func tooMany(err error) bool {
	var se *access.StatusError
	return errors.As(err, &se) && se.Status == http.StatusTooManyRequests
}

// healthyAnswer reports whether err is an answer about one door or one
// user rather than about Kisi: a 503 with a Kisi hardware error code, or
// a 429 to a user's login.
func healthyAnswer(rq call, err error) bool {
	var se *access.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Status {
	case http.StatusTooManyRequests:
		return rq.user
	case http.StatusServiceUnavailable:
		_, ok := hardwareReasons[errorCode(se)]
		return ok
	}
	return false
}

// wait takes a token of lim, waiting for it as long as ctx's deadline
// allows; when it cannot, the request is not sent.
func wait(ctx context.Context, op string, lim *rate.Limiter) error {
	if lim == nil {
		return nil
	}
	if lim.Allow() {
		return nil
	}
	if err := lim.Wait(ctx); err != nil {
		// Not wrapping ctx.Err(): the request was never sent.
		return fmt.Errorf("%s: %w", op, ErrRateLimited)
	}
	return nil
}

// exchange sends one request and reads the answer into out.
func (c *Client) exchange(ctx context.Context, rq call, out any) (http.Header, error) {
	var rd io.Reader
	if rq.body != nil {
		rd = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, c.base+rq.path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", rq.op, err)
	}
	h := req.Header
	h["Accept"] = jsonMediaType
	h["User-Agent"] = userAgent
	h["X-Kisi-Integration-Identifier"] = integrationID
	h["Authorization"] = []string{rq.auth}
	if rq.body != nil {
		h["Content-Type"] = jsonMediaType
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(ctx, rq.op, err)
	}
	c.noteDeprecation(rq, resp.Header)
	return resp.Header, finish(ctx, rq.op, resp, out)
}

var (
	jsonMediaType = []string{"application/json"}
	userAgent     = []string{DefaultUserAgent}
	integrationID = []string{IntegrationIdentifier}
)

// noteDeprecation logs the Deprecation and Sunset headers Kisi announces
// for deprecated endpoints.
func (c *Client) noteDeprecation(rq call, h http.Header) {
	if d, s := h.Get("Deprecation"), h.Get("Sunset"); d != "" || s != "" {
		c.log.Warn("kisi: endpoint is deprecated", "system", c.name, "op", rq.op, "deprecation", d, "sunset", s)
	}
}

// finish reads resp: a non-2xx status becomes an *access.StatusError; a 2xx
// body is decoded into out. The body is always drained and closed.
func finish(ctx context.Context, op string, resp *http.Response, out any) error {
	defer drainClose(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b := make([]byte, maxErrorBody)
		n, _ := io.ReadFull(resp.Body, b)
		se := &access.StatusError{Op: op, Status: resp.StatusCode, Body: strings.TrimSpace(string(b[:n]))}
		if se.Status == http.StatusTooManyRequests || se.Status == http.StatusServiceUnavailable {
			se.RetryAfter = guard.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return se
	}
	if out == nil {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return transportError(ctx, op, err)
	}
	if len(data) > maxAnswerBytes {
		return fmt.Errorf("%s: answer is larger than %d bytes", op, maxAnswerBytes)
	}
	if err := json.Unmarshal(data, out); err != nil {
		// The decoder's message quotes no value, so no secret leaks.
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return nil
}

// transportError classifies a failure to get an answer: when the caller's
// context is done, an error matching ctx.Err(); otherwise
// access.ErrUnavailable.
func transportError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", op, ctxErr)
	}
	return fmt.Errorf("%s: %w: %w", op, access.ErrUnavailable, err)
}

func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, maxDrainBytes)
	_ = body.Close()
}

// kisiError is Kisi's error body (components.schemas.Error).
type kisiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// errorCode is the Kisi error code in se's body; "" when it has none.
func errorCode(se *access.StatusError) string {
	var ke kisiError
	if json.Unmarshal([]byte(se.Body), &ke) != nil {
		return ""
	}
	return ke.Code
}
