package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
)

// /healthz is open to anyone: with Redis down it says so, and nothing of
// Redis's address or the dial error.
func TestHealthzRevealsStateOnly(t *testing.T) {
	st := newStack(t, stackOpts{})
	addr := strings.TrimPrefix(st.redis.URL(), "redis://")
	st.redis.Kill()
	var body []byte
	eventually(t, "health degraded with Redis down", func() bool {
		_, body = st.send(t, "GET", "/healthz", nil)
		var out map[string]string
		return json.Unmarshal(body, &out) == nil && out["status"] == "degraded"
	})
	var out map[string]string
	json.Unmarshal(body, &out)
	if len(out) != 2 || out["status"] != "degraded" || out["redis"] != "unavailable" {
		t.Errorf("/healthz = %s; want {\"status\":\"degraded\",\"redis\":\"unavailable\"}", body)
	}
	_, port, _ := strings.Cut(addr, ":")
	for _, secret := range []string{addr, "127.0.0.1", ":" + port, "dial", "refused", "tcp"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("/healthz shows %q: %s", secret, body)
		}
	}
}

// A refused token's answer, over gRPC and REST, names the failed check in
// a fixed phrase and nothing of the JWKS URL, key ids or the parser.
func TestRefusedTokenRevealsNothing(t *testing.T) {
	idp := newTestIDP(t)
	st := newStack(t, stackOpts{jwksURL: idp.URL})
	sign, down := idp.token, &idp.down

	good := sign("k1", nil)
	parts := strings.Split(good, ".")
	dupEmail := base64.RawURLEncoding.EncodeToString([]byte(`{"email":"alice@example.com","email":"erin@example.com"}`))
	dev, _ := identity.NewHS256(identity.DevelopmentSecret)
	devToken, _ := dev.Sign("alice@example.com", time.Hour)

	tests := []struct {
		name, token, want string
		idpDown           bool
	}{
		{"expired", sign("k1", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), "token expired", false},
		{"not yet valid", sign("k1", func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), "token not valid yet", false},
		{"another audience", sign("k1", func(c jwt.MapClaims) { c["aud"] = "other" }), "token audience not accepted", false},
		{"another issuer", sign("k1", func(c jwt.MapClaims) { c["iss"] = "https://evil.example.com/" }), "token issuer not accepted", false},
		{"no email", sign("k1", func(c jwt.MapClaims) { delete(c, "email") }), "token has no valid email claim", false},
		{"unknown kid", sign("secret-kid-9", nil), "invalid token", false},
		{"bad signature", parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-4] + "AAAA", "invalid token", false},
		{"HS256", devToken, "invalid token", false},
		{"garbage", "abc.def.ghi", "malformed token", false},
		{"two emails", parts[0] + "." + dupEmail + "." + parts[2], "malformed token", false},
		{"identity provider down, unknown kid", sign("k2", nil), "invalid token", true},
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(idp.URL, "http://"), ":")
	secrets := []string{idp.URL, "127.0.0.1", port, "http", "kid", "k1", "k2", "secret-kid-9", "JWKS", "jwk", "503", "down", "signing method", "base64", "json", "jsontext"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			down.Store(tt.idpDown)
			defer down.Store(false)
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tt.token)
			_, err := st.client.GetMe(ctx, &pb.GetMeRequest{})
			if status.Code(err) != codes.Unauthenticated || status.Convert(err).Message() != "authorization: "+tt.want {
				t.Errorf("gRPC: %v; want Unauthenticated %q", err, "authorization: "+tt.want)
			}
			resp, body := st.send(t, "GET", "/v1/me", nil, "Authorization", "Bearer "+tt.token)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"authorization: `+tt.want+`"`) {
				t.Errorf("REST: %d %s; want 401 %q", resp.StatusCode, body, "authorization: "+tt.want)
			}
			for _, s := range secrets {
				if strings.Contains(status.Convert(err).Message(), s) {
					t.Errorf("gRPC answer shows %q: %v", s, err)
				}
				if strings.Contains(string(body), s) {
					t.Errorf("REST answer shows %q: %s", s, body)
				}
			}
		})
	}
	// The good token still works, so the answers above are the checks'.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+good)
	if _, err := st.client.GetMe(ctx, &pb.GetMeRequest{}); err != nil {
		t.Fatalf("a good token: %v", err)
	}

	// An identity provider down since the start: no keys at all; the
	// detail (GET <url>: 503) is cloudkey's to log, not the caller's.
	down.Store(true)
	defer down.Store(false)
	st2 := newStack(t, stackOpts{jwksURL: idp.URL})
	_, err := st2.client.GetMe(ctx, &pb.GetMeRequest{})
	if msg := status.Convert(err).Message(); status.Code(err) != codes.Unauthenticated || msg != "authorization: invalid token" {
		t.Errorf("with no keys: %v; want Unauthenticated \"authorization: invalid token\"", err)
	}
	if resp, body := st2.send(t, "GET", "/v1/me", nil, "Authorization", "Bearer "+good); resp.StatusCode != 401 || strings.Contains(string(body), port) {
		t.Errorf("REST with no keys: %d %s", resp.StatusCode, body)
	}
}
