package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// maxRESTBody bounds a REST request body; the largest valid request (50
// entry ids) is far smaller.
const maxRESTBody = 64 << 10

// maxImportBody bounds a contacts or roster CSV (tenant refuses larger
// contacts files too).
const maxImportBody = 5 << 20

// newGateway returns the REST gateway, calling the services through conn.
func newGateway(ctx context.Context, conn *inprocConn) (http.Handler, error) {
	jsonpb := &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	// An answer that is a google.api.HttpBody (the roster report) is
	// sent as its bytes with its content type; every other answer is JSON.
	body := &runtime.HTTPBodyMarshaler{Marshaler: jsonpb}
	mux := runtime.NewServeMux(
		runtime.WithErrorHandler(gatewayErrors),
		runtime.WithIncomingHeaderMatcher(headerMatcher),
		runtime.WithMarshalerOption("text/csv", csvBody{body}),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, body),
	)
	if err := pb.RegisterResidentServiceHandlerClient(ctx, mux, pb.NewResidentServiceClient(conn)); err != nil {
		return nil, err
	}
	if err := pb.RegisterAdminServiceHandlerClient(ctx, mux, pb.NewAdminServiceClient(conn)); err != nil {
		return nil, err
	}
	if err := pb.RegisterGuestServiceHandlerClient(ctx, mux, pb.NewGuestServiceClient(conn)); err != nil {
		return nil, err
	}
	if err := pb.RegisterVisitorServiceHandlerClient(ctx, mux, pb.NewVisitorServiceClient(conn)); err != nil {
		return nil, err
	}
	return favoriteMethod(limitBody(mux, jsonpb)), nil
}

// headerMatcher forwards the admin API key headers besides the defaults
// (Authorization and the other permanent HTTP headers).
func headerMatcher(key string) (string, bool) {
	switch strings.ToLower(key) {
	case "x-auth-scheme", "x-auth-apikey":
		return strings.ToLower(key), true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// gatewayErrors is the gateway's error handler: the default one, except
// that a body cut at its limit answers 413, and a status carrying a
// google.rpc.RetryInfo (RESOURCE_EXHAUSTED is 429) adds Retry-After, in
// whole seconds rounded up.
func gatewayErrors(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if b, ok := r.Body.(*limitedBody); ok && b.over {
		err = bodyTooLarge(b.limit)
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.ResourceExhausted {
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				secs := int64(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))
				w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
				break
			}
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// favoriteMethod makes the HTTP method say whether an entry becomes a
// favourite: PUT /v1/me/favorites/{id} sets it, DELETE clears it (both
// are bindings of SetFavorite, whose `favorite` field comes from here).
func favoriteMethod(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/me/favorites/") && (r.Method == http.MethodPut || r.Method == http.MethodDelete) {
			q := r.URL.Query()
			q.Set("favorite", map[string]string{http.MethodPut: "true", http.MethodDelete: "false"}[r.Method])
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody bounds request bodies (maxRESTBody; maxImportBody for the
// contacts import) and answers 413 naming the limit: at once when
// Content-Length says so, else when reading crosses it (gatewayErrors).
// Bodiless requests (GET, DELETE: the hot paths) pass untouched.
func limitBody(mux *runtime.ServeMux, m runtime.Marshaler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 {
			mux.ServeHTTP(w, r)
			return
		}
		limit := int64(maxRESTBody)
		if r.URL.Path == "/v1/admin/contacts:import" || r.URL.Path == "/v1/admin/roster:import" {
			limit = maxImportBody
		}
		if r.ContentLength > limit {
			runtime.DefaultHTTPErrorHandler(r.Context(), mux, m, w, r, bodyTooLarge(limit))
			return
		}
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, limit), limit: limit}
		mux.ServeHTTP(w, r)
	})
}

// limitedBody remembers that reading stopped at the limit, so the error
// answer can say 413 rather than the gateway's "bad body" 400
// (gatewayErrors).
type limitedBody struct {
	io.ReadCloser
	limit int64
	over  bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if err != nil && errors.As(err, &tooLarge) {
		b.over = true
	}
	return n, err
}

// bodyTooLarge is INVALID_ARGUMENT on the body field, answered as HTTP 413.
func bodyTooLarge(limit int64) error {
	return &runtime.HTTPStatusError{
		HTTPStatus: http.StatusRequestEntityTooLarge,
		Err:        badField("body", fmt.Sprintf("larger than %d bytes, the limit of this call", limit)),
	}
}

// csvBody takes a text/csv request body as a google.api.HttpBody (the
// contacts and roster imports); answers are as everywhere else.
type csvBody struct{ *runtime.HTTPBodyMarshaler }

func (c csvBody) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		var hb *httpbody.HttpBody
		switch x := v.(type) {
		case **httpbody.HttpBody: // the generated code decodes into &req.Csv
			*x = new(httpbody.HttpBody)
			hb = *x
		case *httpbody.HttpBody:
			hb = x
		default:
			return fmt.Errorf("a text/csv body is only accepted by the contacts and roster imports")
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		hb.ContentType, hb.Data = "text/csv", data
		return nil
	})
}
