package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// restCaller sends a scenario's requests to the REST gateway with one
// pooled keep-alive HTTP/1.1 client.
type restCaller struct {
	kind   Kind
	client *http.Client
	base   string // http://host:port
	users  *users
	bufs   sync.Pool // *bytes.Buffer for response bodies
}

// newHTTPClient keeps up to maxConns idle connections to the target so
// that steady load never reconnects (net/http's default keeps 2).
func newHTTPClient(maxConns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // loopback only; never through a proxy
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no global limit
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

func newRESTCaller(kind Kind, client *http.Client, httpAddr string, u *users) *restCaller {
	return &restCaller{
		kind: kind, client: client, base: "http://" + httpAddr, users: u,
		bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
}

// Call implements Caller for a user drawn uniformly.
func (r *restCaller) Call(ctx context.Context, worker int) Outcome {
	u, err := r.users.pick()
	if err != nil {
		return Outcome{Method: MethodGetMe, Err: errHarness}
	}
	return r.callUser(ctx, worker, u)
}

func (r *restCaller) callUser(ctx context.Context, _ int, u *user) Outcome {
	switch kind := pickKind(r.kind); kind {
	case KindMe:
		return r.do(ctx, MethodGetMe, http.MethodGet, "/v1/me", u.getHeader, nil)
	case KindUnlock, KindUnlockMulti, KindUnlockCross:
		body := u.unlock1Body
		switch kind {
		case KindUnlockMulti:
			body = u.unlockNBody
		case KindUnlockCross:
			c := u.cross.Load()
			if c == nil {
				return Outcome{Method: MethodUnlock, Err: errNoCross}
			}
			body = c.body
		}
		return r.do(ctx, MethodUnlock, http.MethodPost, "/v1/me/unlock", u.postHeader, body)
	default:
		return r.do(ctx, MethodListEntries, http.MethodGet, "/v1/me/entries", u.getHeader, nil)
	}
}

func (r *restCaller) do(ctx context.Context, method, verb, path string, h http.Header, body []byte) Outcome {
	o := Outcome{Method: method}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, verb, r.base+path, rd)
	if err != nil {
		o.Err = errHarness
		return o
	}
	req.Header = h
	resp, err := r.client.Do(req)
	if err != nil {
		o.Err = transportErr(ctx, err)
		return o
	}
	buf := r.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	// Read it all (also on errors) so the connection is reused.
	_, rerr := buf.ReadFrom(resp.Body)
	resp.Body.Close()
	switch {
	case rerr != nil:
		o.Err = transportErr(ctx, rerr)
	case resp.StatusCode != http.StatusOK:
		o.Err = restErrCode(resp.StatusCode, buf.Bytes())
	case method == MethodUnlock:
		var ur unlockJSON
		if err := json.Unmarshal(buf.Bytes(), &ur); err != nil {
			o.Err = errBadBody
			break
		}
		for _, res := range ur.Results {
			o.addUnlockResult(pb.UnlockStatus(pb.UnlockStatus_value[res.Status]))
		}
		if len(ur.Results) == 0 {
			o.Err = errEmptyUnlock
		}
	}
	r.bufs.Put(buf)
	return o
}

const errBadBody = "undecodable response body"

// unlockJSON is the gateway's UnlockResponse: enums as their names.
type unlockJSON struct {
	Results []struct {
		Status string `json:"status"`
	} `json:"results"`
}

// transportErr labels a failed HTTP exchange as gRPC would: the caller's
// deadline as DeadlineExceeded, anything else as Unavailable.
func transportErr(ctx context.Context, err error) string {
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return codeName(codes.DeadlineExceeded)
	}
	return codeName(codes.Unavailable)
}

// restErrCode recovers the gRPC code of a gateway error: its body is a
// google.rpc.Status as JSON ({"code": 5, ...}); when it is not, the HTTP
// status is mapped back as the gateway maps codes to statuses.
func restErrCode(httpStatus int, body []byte) string {
	var st struct {
		Code *int `json:"code"`
	}
	if json.Unmarshal(body, &st) == nil && st.Code != nil && *st.Code != 0 {
		return codeName(codes.Code(*st.Code))
	}
	if c, ok := httpToCode[httpStatus]; ok {
		return codeName(c)
	}
	return "HTTP " + http.StatusText(httpStatus)
}

var httpToCode = map[int]codes.Code{
	http.StatusBadRequest:          codes.InvalidArgument,
	http.StatusUnauthorized:        codes.Unauthenticated,
	http.StatusForbidden:           codes.PermissionDenied,
	http.StatusNotFound:            codes.NotFound,
	http.StatusConflict:            codes.Aborted,
	http.StatusTooManyRequests:     codes.ResourceExhausted,
	499:                            codes.Canceled,
	http.StatusInternalServerError: codes.Internal,
	http.StatusNotImplemented:      codes.Unimplemented,
	http.StatusServiceUnavailable:  codes.Unavailable,
	http.StatusGatewayTimeout:      codes.DeadlineExceeded,
}
