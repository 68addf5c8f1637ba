package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// maxRESTBody bounds a REST request body; the largest valid request (50
// entry ids) is far smaller.
const maxRESTBody = 64 << 10

// newGateway returns the REST gateway, calling the services through conn.
func newGateway(ctx context.Context, conn *inprocConn) (http.Handler, error) {
	mux := runtime.NewServeMux(
		runtime.WithIncomingHeaderMatcher(headerMatcher),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
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
	return favoriteMethod(limitBody(mux)), nil
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

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRESTBody)
		next.ServeHTTP(w, r)
	})
}
