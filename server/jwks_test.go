package server_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/setup"
)

const (
	testIssuer   = "https://id.example.com/"
	testAudience = "cloudkey"
)

// testIDP is an identity provider: it publishes one RSA key as kid "k1"
// at URL (or answers 503 while down is set) and signs tokens with it.
type testIDP struct {
	URL  string
	down atomic.Bool
	key  *rsa.PrivateKey
	t    *testing.T
}

func newTestIDP(t *testing.T) *testIDP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.Import(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub.Set(jwk.KeyIDKey, "k1")
	set := jwk.NewSet()
	set.AddKey(pub)
	idp := &testIDP{key: key, t: t}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if idp.down.Load() {
			http.Error(w, "the identity provider is down", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	idp.URL = srv.URL
	return idp
}

// token signs a token for alice, for testIssuer and testAudience, valid
// for an hour, with kid in its header; mod, when set, changes the claims.
func (p *testIDP) token(kid string, mod func(jwt.MapClaims)) string {
	c := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "email": "alice@example.com", "exp": time.Now().Add(time.Hour).Unix()}
	if mod != nil {
		mod(c)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// jwksServer publishes one RSA key as kid "k1" and signs tokens with it.
func jwksServer(t *testing.T) (url string, sign func(email, aud string) string) {
	t.Helper()
	idp := newTestIDP(t)
	return idp.URL, func(email, aud string) string {
		return idp.token("k1", func(c jwt.MapClaims) { c["email"], c["aud"] = email, aud })
	}
}

func TestJWKSTokens(t *testing.T) {
	url, sign := jwksServer(t)
	st := newStack(t, stackOpts{jwksURL: url})
	if st.tokens != nil {
		t.Fatal("an HS256 signer exists although tokens are JWKS-verified")
	}
	dev, _ := identity.NewHS256(identity.DevelopmentSecret)
	devToken, _ := dev.Sign("alice@example.com", time.Hour)
	tests := []struct {
		name, token string
		want        codes.Code
	}{
		{"RS256 from the provider", sign("Alice@Example.com", testAudience), codes.OK},
		{"HS256 development token", devToken, codes.Unauthenticated},
		{"another audience", sign("alice@example.com", "other-service"), codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tt.token)
			me, err := st.client.GetMe(ctx, &pb.GetMeRequest{})
			if status.Code(err) != tt.want {
				t.Fatalf("GetMe = %v, %v; want %v", me, err, tt.want)
			}
			if err == nil && me.Email != "alice@example.com" {
				t.Fatalf("email = %q", me.Email)
			}
			resp, _ := st.send(t, "GET", "/v1/me", nil, "Authorization", "Bearer "+tt.token)
			if wantHTTP := map[codes.Code]int{codes.OK: 200, codes.Unauthenticated: 401}[tt.want]; resp.StatusCode != wantHTTP {
				t.Fatalf("REST /v1/me: %d, want %d", resp.StatusCode, wantHTTP)
			}
		})
	}
}

func TestJWKSConfigRefused(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name string
		cfg  setup.Config
		want string
	}{
		{"no issuer", setup.Config{JWKSURL: "http://127.0.0.1:1/jwks", TokenAudience: "a"}, "--token-issuer"},
		{"no audience", setup.Config{JWKSURL: "http://127.0.0.1:1/jwks", TokenIssuer: "i"}, "--token-audience"},
		{"secret too", setup.Config{JWKSURL: "http://127.0.0.1:1/jwks", TokenIssuer: "i", TokenAudience: "a", TokenSecret: strings.Repeat("x", 40)}, "development only"},
		{"issuer without JWKS", setup.Config{TokenIssuer: "i"}, "CLOUDKEY_JWKS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.GRPCAddr, tt.cfg.HTTPAddr, tt.cfg.Logger = "127.0.0.1:0", "127.0.0.1:0", quiet
			app, err := setup.Start(context.Background(), tt.cfg)
			if err == nil {
				app.Close()
				t.Fatal("setup.Start accepted the configuration")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want it to mention %q", err, tt.want)
			}
		})
	}
}
