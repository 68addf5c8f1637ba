package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cloudkey/cloudkey/identity"
)

// TokenVerifier turns a bearer token into verified claims.
type TokenVerifier interface {
	Verify(token string) (identity.Claims, error)
}

type emailKey struct{}

// callerEmail is the verified canonical email the auth interceptor put in ctx.
func callerEmail(ctx context.Context) string {
	e, _ := ctx.Value(emailKey{}).(string)
	return e
}

// publicMethods need no token.
var publicMethods = map[string]bool{
	"/grpc.health.v1.Health/Check": true,
	"/grpc.health.v1.Health/Watch": true,
	"/grpc.health.v1.Health/List":  true,
}

func authUnary(v TokenVerifier) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if publicMethods[info.FullMethod] || strings.HasPrefix(info.FullMethod, "/grpc.reflection.") {
			return handler(ctx, req)
		}
		tok, err := bearer(ctx)
		if err != nil {
			return nil, err
		}
		c, err := v.Verify(tok)
		if err != nil {
			return nil, status.Errorf(codes.Unauthenticated, "authorization: %v", err)
		}
		return handler(context.WithValue(ctx, emailKey{}, c.Email), req)
	}
}

func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, "authorization: missing; send 'authorization: Bearer <token>' (cloudkey token --email you@example.com prints one)")
	}
	scheme, tok, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) == "" {
		return "", status.Error(codes.Unauthenticated, "authorization: want 'Bearer <token>'")
	}
	return strings.TrimSpace(tok), nil
}

// statusUnary maps domain errors to statuses (once, for both transports)
// and logs what the caller cannot act on. Tokens and emails are not logged.
func statusUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		raw := err
		err = toStatus(err)
		if c := status.Code(err); c == codes.Internal || c == codes.Unavailable {
			log.ErrorContext(ctx, "rpc failed", "method", info.FullMethod, "code", c.String(),
				"err", raw, "elapsed", time.Since(start))
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
