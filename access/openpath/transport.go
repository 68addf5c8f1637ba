package openpath

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/guard"
)

const (
	// maxAnswerBytes bounds a decoded answer (a page of 1000 users is a
	// few hundred kilobytes).
	maxAnswerBytes = 32 << 20
	// maxErrorBody is how much of an error answer StatusError keeps.
	maxErrorBody = 512
	// maxDrainBytes is how much of an unread body is drained so that the
	// connection can be reused; beyond it, closing is cheaper.
	maxDrainBytes = 64 << 10
)

// call is one Openpath request below /orgs/{orgId}.
type call struct {
	op     string // what cloudkey was doing, for errors: "list user entries"
	method string
	path   string // e.g. "/users/7/entries?limit=1000"
	body   []byte // JSON, or nil
}

// do sends rq with a token and decodes a 2xx answer into out (unless out
// is nil). Each attempt goes through the client's circuit breaker and takes
// one of its in-flight slots. On 401 it logs in again and sends rq once
// more: 401 means Openpath did not process the request, so repeating it is
// safe even for an unlock. A GET, which changes nothing, is also tried up
// to maxReadAttempts times in all when Openpath is unavailable (429, 502,
// 503, 504, no answer), after a backoff or the Retry-After it asked for,
// but only while the retry fits before ctx's deadline; nothing else (an
// unlock, a create) is ever repeated.
func (c *Client) do(ctx context.Context, rq call, out any) error {
	for n := 1; ; n++ {
		start := attemptStart(ctx)
		err := c.guarded(ctx, rq.op, start, func() error { return c.once(ctx, rq, out) })
		if err == nil || rq.method != http.MethodGet || n == maxReadAttempts {
			return err
		}
		wait, ok := guard.RetryDelay(err, n)
		// A breaker this failure opened would refuse the retry anyway:
		// answer now rather than after the wait.
		if !ok || !guard.Fits(ctx, wait, start) || c.guard.State() != gobreaker.StateClosed || !guard.Pause(ctx, wait) {
			return err
		}
	}
}

// once sends rq with a token, and once more with a new token after a 401.
func (c *Client) once(ctx context.Context, rq call, out any) error {
	for first := true; ; first = false {
		tok, err := c.token(ctx)
		if err != nil {
			return err
		}
		relogin, err := c.exchange(ctx, rq.op, rq.method, c.base+"/orgs/"+tok.org+rq.path, tok.value, rq.body, out, first)
		if !relogin {
			return err
		}
		c.invalidate(tok)
	}
}

// exchange sends one request in one of the in-flight slots and reads the
// answer into out, as finish does. When mayRelogin is set and Openpath
// answers 401, it reports relogin instead, having read nothing.
func (c *Client) exchange(ctx context.Context, op, method, url, token string, body []byte, out any, mayRelogin bool) (relogin bool, err error) {
	if err := c.acquire(ctx, op); err != nil {
		return false, err
	}
	defer c.release()
	resp, err := c.send(ctx, op, method, url, token, body)
	if err != nil {
		return false, err
	}
	if mayRelogin && resp.StatusCode == http.StatusUnauthorized {
		drainClose(resp.Body)
		return true, nil
	}
	return false, finish(ctx, op, resp, out)
}

// send sends one request. Its error is a transport error, classified.
func (c *Client) send(ctx context.Context, op, method, url, token string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", op, err)
	}
	// Direct assignment with canonical keys: Header.Set would canonicalise
	// and allocate on every call.
	h := req.Header
	h["Accept"] = jsonMediaType
	h["User-Agent"] = c.userAgent
	if token != "" {
		h["Authorization"] = []string{token} // the raw token, as Openpath's clients send it
	}
	if body != nil {
		h["Content-Type"] = jsonMediaType
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(ctx, op, err)
	}
	return resp, nil
}

var jsonMediaType = []string{"application/json"}

// finish reads resp: a non-2xx status becomes an *access.StatusError; a 2xx
// body is decoded into out. The body is always drained and closed, so the
// connection goes back to the pool.
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
	buf := bufPool.Get().(*bytes.Buffer)
	defer putBuf(buf)
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, maxAnswerBytes+1)); err != nil {
		return transportError(ctx, op, err)
	}
	if buf.Len() > maxAnswerBytes {
		return fmt.Errorf("%s: answer is larger than %d bytes", op, maxAnswerBytes)
	}
	if err := json.Unmarshal(buf.Bytes(), out); err != nil {
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	return nil
}

// bufPool holds the buffers answers are read into: decoding from one
// complete buffer is cheaper than through a json.Decoder, and the buffers
// are reused across calls.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBuf(buf *bytes.Buffer) {
	if buf.Cap() > 1<<20 {
		return // let a rare huge answer's buffer go
	}
	buf.Reset()
	bufPool.Put(buf)
}

// transportError classifies a failure to get an answer: when the caller's
// context is done, an error matching ctx.Err() (context.DeadlineExceeded
// or context.Canceled), whatever the transport made of it; otherwise
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
