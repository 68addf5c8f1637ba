package server

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
)

// RateLimiter refuses unlocks and visitor registrations over their
// budgets with a *ratelimit.LimitedError (toStatus maps it).
type RateLimiter interface {
	AllowUnlock(ctx context.Context, email string, ip netip.Addr) error
	AllowGuest(ctx context.Context, token string, ip netip.Addr) error
	// AllowRegistration takes one registration from property's contact
	// and building budgets.
	AllowRegistration(ctx context.Context, property, contact, building string) error
}

// limitUnary checks the rate limits of the two unlock methods, after
// authentication (the resident's budget is their verified email's) and
// before any work; every other method passes untouched.
func limitUnary(lim RateLimiter, proxies []netip.Prefix) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		switch info.FullMethod {
		case pb.ResidentService_Unlock_FullMethodName:
			if err := lim.AllowUnlock(ctx, callerEmail(ctx), clientIP(ctx, proxies)); err != nil {
				return nil, err
			}
		case pb.GuestService_GuestUnlock_FullMethodName:
			r, _ := req.(*pb.GuestUnlockRequest)
			if err := lim.AllowGuest(ctx, r.GetToken(), clientIP(ctx, proxies)); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

type clientAddrKey struct{}

// clientIP is the caller's address: for REST calls the one withClientAddr
// put in the context (a context value, which no caller can send), for gRPC
// calls the connection's peer, or the X-Forwarded-For it sent when that
// peer is a trusted proxy. The zero Addr means unknown.
func clientIP(ctx context.Context, proxies []netip.Prefix) netip.Addr {
	if a, ok := ctx.Value(clientAddrKey{}).(netip.Addr); ok {
		return a
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return netip.Addr{}
	}
	var a netip.Addr
	switch pa := p.Addr.(type) {
	case *net.TCPAddr:
		a = pa.AddrPort().Addr().Unmap()
	default:
		if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
			a = ap.Addr().Unmap()
		}
	}
	if len(proxies) == 0 || !trusted(a, proxies) {
		return a
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return forwardedFor(a, md.Get("x-forwarded-for"), proxies)
}

// withClientAddr records the HTTP caller's address for the rate limits of
// the unlock paths (the only ones that read it, so the other paths do not
// pay for a copied request).
func withClientAddr(next http.Handler, proxies []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/me/unlock" && r.URL.Path != "/v1/guest/unlock" {
			next.ServeHTTP(w, r)
			return
		}
		var a netip.Addr
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			a = ap.Addr().Unmap()
		}
		if len(proxies) > 0 && trusted(a, proxies) {
			a = forwardedFor(a, r.Header.Values("X-Forwarded-For"), proxies)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientAddrKey{}, a)))
	})
}

// forwardedFor walks X-Forwarded-For from the right (the hop nearest us)
// past trusted proxies and returns the first address they did not add
// themselves: entries further left were written by the client and prove
// nothing. With no usable entry it is the proxy's own address.
func forwardedFor(remote netip.Addr, headers []string, proxies []netip.Prefix) netip.Addr {
	client := remote
	for i := len(headers) - 1; i >= 0; i-- {
		parts := strings.Split(headers[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !trusted(client, proxies) {
				return client
			}
		}
	}
	return client
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
