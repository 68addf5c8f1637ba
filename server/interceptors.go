package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/internal/adminkey"
	"github.com/cloudkey/cloudkey/internal/identity"
	"github.com/cloudkey/cloudkey/internal/telemetry"
)

// TokenVerifier turns a bearer token into verified claims.
type TokenVerifier interface {
	Verify(token string) (identity.Claims, error)
}

type emailKey struct{}

type propertiesKey struct{}

// callerProperties is the verified token's properties claim; nil: the
// default property.
func callerProperties(ctx context.Context) []string {
	p, _ := ctx.Value(propertiesKey{}).([]string)
	return p
}

// callerEmail is the verified canonical email the auth interceptor put in ctx.
func callerEmail(ctx context.Context) string {
	e, _ := ctx.Value(emailKey{}).(string)
	return e
}

// AdminVerifier checks admin API keys.
type AdminVerifier interface {
	Verify(ctx context.Context, key string) (adminkey.Key, error)
}

type adminKey struct{}

// callerAdmin is the admin key the auth interceptor verified.
func callerAdmin(ctx context.Context) (adminkey.Key, bool) {
	k, ok := ctx.Value(adminKey{}).(adminkey.Key)
	return k, ok
}

// authUnary authenticates by service: residents by bearer token, admins by
// API key; guests carry their link token in the request, and health and
// reflection are open. A refused token's answer says which check failed
// in a fixed phrase (identity.PublicReason); the detail (the JWKS URL, key
// ids, the parser's error) is logged, at debug: refused tokens are the
// caller's problem, and JWKS fetch failures are logged by the verifier.
func authUnary(tokens TokenVerifier, admins AdminVerifier, log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		service, _, _ := strings.Cut(strings.TrimPrefix(info.FullMethod, "/"), "/")
		switch service {
		case "cloudkey.v1.ResidentService", "cloudkey.v1.VisitorService":
			tok, err := bearer(ctx)
			if err != nil {
				return nil, err
			}
			c, err := tokens.Verify(tok)
			if err != nil {
				reason := identity.PublicReason(err)
				log.DebugContext(ctx, "token refused", "method", info.FullMethod, "reason", reason, "err", err)
				return nil, status.Error(codes.Unauthenticated, "authorization: "+reason)
			}
			ctx = context.WithValue(ctx, emailKey{}, c.Email)
			if c.Properties != nil { // no second value for the common token without the claim
				ctx = context.WithValue(ctx, propertiesKey{}, c.Properties)
			}
			return handler(ctx, req)
		case "cloudkey.v1.AdminService":
			k, err := apiKey(ctx, admins)
			if err != nil {
				return nil, err
			}
			return handler(context.WithValue(ctx, adminKey{}, k), req)
		case "cloudkey.v1.GuestService", "grpc.health.v1.Health",
			"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection":
			return handler(ctx, req)
		}
		return nil, status.Errorf(codes.Unauthenticated, "no authentication is defined for %s", info.FullMethod)
	}
}

// apiKey checks the Rhombus-style header pair x-auth-scheme: api-token,
// x-auth-apikey: <key>.
func apiKey(ctx context.Context, admins AdminVerifier) (adminkey.Key, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	scheme, key := first(md, "x-auth-scheme"), first(md, "x-auth-apikey")
	if scheme == "" && key == "" {
		return adminkey.Key{}, status.Error(codes.Unauthenticated, "x-auth-apikey: missing; send 'x-auth-scheme: api-token' and 'x-auth-apikey: <key>' (cloudkey admin-key create makes one)")
	}
	if scheme != "api-token" {
		return adminkey.Key{}, status.Errorf(codes.Unauthenticated, "x-auth-scheme: want api-token, got %q", scheme)
	}
	if admins == nil {
		return adminkey.Key{}, status.Error(codes.Unauthenticated, "x-auth-apikey: admin keys are not configured")
	}
	k, err := admins.Verify(ctx, key)
	if errors.Is(err, adminkey.ErrInvalid) {
		return adminkey.Key{}, status.Error(codes.Unauthenticated, "x-auth-apikey: unknown or revoked key")
	}
	if err != nil {
		return adminkey.Key{}, status.Error(codes.Unavailable, "x-auth-apikey: cannot check the key now; try again")
	}
	return k, nil
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

func bearer(ctx context.Context) (string, error) {
	// One header, not FromIncomingContext's copy of them all: this runs
	// on every resident call.
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, "authorization: missing; send 'authorization: Bearer <token>' (cloudkey token --email you@example.com prints one)")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return "", status.Error(codes.Unauthenticated, "authorization: want 'Bearer <token>'")
	}
	// Before any parsing: the verifiers decode and hash what they get.
	if len(tok) > identity.MaxTokenLen {
		return "", status.Errorf(codes.Unauthenticated, "authorization: the bearer token is longer than the %d bytes allowed", identity.MaxTokenLen)
	}
	return tok, nil
}

// statusUnary maps domain errors to statuses (once, for both transports)
// and logs what the caller cannot act on. Tokens and emails are not logged.
func statusUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		raw := err
		err = toStatus(err)
		if c := status.Code(err); c == codes.Internal || c == codes.Unavailable {
			// The request's own start (telemetry's interceptor is first in
			// the chain): a clock read saved on every call.
			log.ErrorContext(ctx, "rpc failed", "method", info.FullMethod, "code", c.String(),
				"err", raw, "elapsed", telemetry.Elapsed(ctx))
		}
		return nil, err
	}
}

// chainUnary composes interceptors in order, as grpc.ChainUnaryInterceptor
// does, for the in-process gateway connection.
func chainUnary(ics ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		next := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, h := ics[i], next
			next = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, h) }
		}
		return next(ctx, req)
	}
}
