// Package server is cloudkey's transport, and only that: the gRPC server
// (with reflection and the standard health service), the REST gateway
// calling the same services in process, the HTTP-only pages (guest pass,
// tenant tile, Envoy webhook) and /healthz. It owns the edge: one file per
// service, named after it (resident.go: ResidentService, residentServer;
// visitor_service.go: VisitorService, visitorServer; guest_service.go:
// GuestService, guestServer; admin_service.go and admin_*.go:
// AdminService, adminServer), authentication, rate-limit and connection
// caps, and the one table of domain errors and their statuses
// (status.go), and its own caches (the encoded ListEntries answers,
// encoded.go). A handler converts proto to domain types, calls the
// domain, and converts back; nothing else.
//
// Domain logic lives in unlock, visitor, tenant and access; server must
// not import the access-system adapters (access/openpath, access/sim,
// access/kisi, access/kisisim), Redis (go-redis, cache), internal/setup
// (which wires server), loadtest or cmd (internal/layout checks).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/internal/connlimit"
	"github.com/cloudkey/cloudkey/internal/rapidreset"
	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/roster/moveout"
	"github.com/cloudkey/cloudkey/roster/rosterredis"
	"github.com/cloudkey/cloudkey/tenant"
	"github.com/cloudkey/cloudkey/unlock"
	"github.com/cloudkey/cloudkey/visitor"
)

// SMSStatusPath is where Twilio posts guest-link texts' delivery
// statuses.
const SMSStatusPath = "/webhooks/twilio/status"

// Config is what the server needs.
type Config struct {
	GRPCAddr string // e.g. 127.0.0.1:9090; port 0 picks a free one
	HTTPAddr string // e.g. 127.0.0.1:8080
	// HTTPListener, when set, is used instead of listening on HTTPAddr
	// (the caller needed the bound address earlier, e.g. for links).
	HTTPListener net.Listener
	Tokens       TokenVerifier
	// Admins checks admin API keys; nil refuses every admin call.
	Admins   AdminVerifier
	Resident *unlock.Portfolio
	// Visitors serves guest passes, the admin settings API and the Envoy
	// webhook; nil leaves them unconfigured.
	Visitors *visitor.Service
	// EnvoySecret verifies X-Envoy-Signature on /webhooks/envoy.
	EnvoySecret []byte
	// SMSStatus, when set, serves POST SMSStatusPath: the delivery
	// statuses Twilio posts for guest-link texts (it verifies their
	// signature itself).
	SMSStatus http.Handler
	// Contacts are the tenant contacts and their tile grants.
	Contacts *tenant.Store
	// Buildings map building ids to Envoy locations.
	Buildings *tenant.Buildings
	// Cache and Audit serve the admin cache and audit calls.
	Cache CacheAdmin
	Audit AuditReader
	// AdminAudit records what admin calls change (settings, tile grants,
	// imports, passes ended) in the audit Audit reads; nil: not recorded.
	AdminAudit unlock.Auditor
	// Org is the access-system organisation served; admin keys of other
	// organisations are refused.
	Org string
	// Property is the default property's id: keys scoped to it (or to the
	// portfolio) may use the admin API.
	Property string
	// Properties lists the properties served, for the admin API.
	Properties PropertyDirectory
	// PropertyEditor creates, updates and removes properties
	// (Create/Update/DeleteProperty); nil: those calls are
	// FAILED_PRECONDITION.
	PropertyEditor PropertyEditor
	// ConnectionChecker proves each connection live before a property is
	// saved.
	ConnectionChecker ConnectionChecker
	// Rosters keeps the properties' resident rosters and their last
	// reconciliation; nil: the roster calls are FAILED_PRECONDITION and
	// residents get no spelling hint.
	Rosters *rosterredis.Store
	// Directories gives each property's access systems for roster
	// reports; nil: GetRosterReport is FAILED_PRECONDITION.
	Directories RosterDirectories
	// MoveOuts runs each property's move-out policy (the admin API's
	// move-out calls, and a run after each roster import); nil: those
	// calls are FAILED_PRECONDITION and imports run nothing.
	MoveOuts *moveout.Runner
	// Ready reports dependencies' health for /healthz; nil means healthy.
	Ready  func(context.Context) map[string]error
	Logger *slog.Logger
	// ShutdownGrace bounds how long in-flight calls may finish on stop.
	ShutdownGrace time.Duration
	// AnswerMemory bounds, in bytes, the encoded ListEntries answers kept
	// per user beside the cache's views (encoded.go); 0:
	// DefaultAnswerMemory.
	AnswerMemory int64
	// Limiter rate-limits resident and guest unlocks and tenant-tile
	// visitor registrations; nil: no limits.
	Limiter RateLimiter
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client for the rate limits; none: the connection's address is used.
	TrustedProxies []netip.Prefix
	// CORSOrigins are the exact origins (https://app.example.com) whose
	// pages may call the REST gateway; empty allows none.
	CORSOrigins []string
	// TileFrameAncestors is the CSP frame-ancestors source list of /tile
	// (e.g. "https://*.hqo.com"); empty means 'none'.
	TileFrameAncestors string
	// TLSCertFile and TLSKeyFile, when set, make both listeners TLS only;
	// the files are reloaded when they change.
	TLSCertFile, TLSKeyFile string
	// Metrics, when set, records RED metrics of every call and is served
	// on GET /metrics.
	Metrics *telemetry.Metrics
	// Tracing makes a span per call; nil (or off) installs nothing.
	Tracing *telemetry.Tracing
	// GRPCConns and HTTPConns cap each listener's open connections,
	// overall and per client address (TrustedProxies are exempt from the
	// per-address cap). A zero field takes its default from the
	// descriptor limit (DefaultConnLimits); a negative one means no cap.
	GRPCConns, HTTPConns connlimit.Limits
	// HandshakeTimeout bounds a gRPC connection's TLS handshake, HTTP/2
	// preface and first SETTINGS; 0 means 10 s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a connection (either listener) with no call in
	// flight for that long; 0 means 2 minutes.
	IdleTimeout time.Duration
}

// maxHeaderBytes bounds a request's headers (gRPC metadata) on both
// listeners: an app sends a bearer token and a few short headers, and
// tokens are at most identity.MaxTokenLen.
const maxHeaderBytes = 32 << 10

// Server serves gRPC and HTTP.
type Server struct {
	cfg     Config
	grpc    *grpc.Server
	http    *http.Server
	health  *health.Server
	grpcLis net.Listener
	httpLis net.Listener
	tile    tileFraming
	tls     bool
	// streams ends the streaming calls (health Watch, reflection) at
	// shutdown, which would otherwise hold GracefulStop for the whole
	// grace (endingStreams).
	endStreams chan struct{}
}

// New builds the servers and binds their listeners, so the addresses are
// known (and taken) before Serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = defaultHandshakeTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	nofile, err := connlimit.DescriptorLimit()
	if err != nil {
		return nil, fmt.Errorf("server: descriptor limit: %w", err)
	}
	grpcDef, httpDef := DefaultConnLimits(nofile)
	cfg.GRPCConns, cfg.HTTPConns = connLimits(cfg.GRPCConns, grpcDef), connLimits(cfg.HTTPConns, httpDef)
	cfg.GRPCConns.Exempt, cfg.HTTPConns.Exempt = cfg.TrustedProxies, cfg.TrustedProxies
	cfg.Logger.Info("connection caps (negative: none)", "descriptor_limit", nofile,
		"grpc_max", cfg.GRPCConns.Max, "grpc_max_per_addr", cfg.GRPCConns.PerAddr,
		"http_max", cfg.HTTPConns.Max, "http_max_per_addr", cfg.HTTPConns.PerAddr)
	tile, err := newTileFraming(cfg.TileFrameAncestors)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	var certs *certReloader
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		if certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, certReloadEvery, cfg.Logger); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	interceptors := []grpc.UnaryServerInterceptor{statusUnary(cfg.Logger), authUnary(cfg.Tokens, cfg.Admins, cfg.Logger)}
	if cfg.Limiter != nil {
		interceptors = append(interceptors, limitUnary(cfg.Limiter, cfg.TrustedProxies))
	}
	endStreams := make(chan struct{})
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(observed(cfg.Metrics, "grpc", interceptors)...),
		grpc.StreamInterceptor(endingStreams(endStreams)),
		// One limit for every method: a contacts CSV is the largest
		// request. grpc-go refuses a larger message from its length prefix,
		// before reading it; a per-method limit could only be checked after
		// the message was read and decoded, so would save nothing.
		grpc.MaxRecvMsgSize(maxImportBody + 64<<10),
		// Sends pre-encoded answers as they are (encoded.go).
		grpc.ForceServerCodecV2(newPassThroughCodec()),
		grpc.NumStreamWorkers(streamWorkers), // see streams.go
		// The same bound as the HTTP listener's, so a header refused on
		// one transport is refused on the other (grpc-go's default is
		// 16 MiB, all of it buffered and decoded before any interceptor).
		grpc.MaxHeaderListSize(maxHeaderBytes),
	}
	opts = append(opts, grpcConnOptions(cfg.HandshakeTimeout, cfg.IdleTimeout)...)
	creds := insecure.NewCredentials()
	if certs != nil {
		creds = credentials.NewTLS(certs.tlsConfig())
	}
	opts = append(opts, grpc.Creds(rapidreset.Credentials(creds, resetLimit, func(remote net.Addr) {
		if cfg.Metrics != nil {
			cfg.Metrics.DropConn("grpc", "resets")
		}
		cfg.Logger.Warn("connection closed: the client resets streams too fast", "listener", "grpc",
			"max_resets", resetLimit.Resets, "window", resetLimit.Window, "remote", remote.String())
	})))
	if h := cfg.Tracing.GRPCStatsHandler(); h != nil {
		opts = append(opts, grpc.StatsHandler(h))
	}
	gs := grpc.NewServer(opts...)
	rs := &residentServer{svc: cfg.Resident, answerMemory: cfg.AnswerMemory, defaultProperty: cfg.Property}
	if cfg.Rosters != nil {
		rs.nearMisses = cfg.Rosters
	}
	residentDesc := residentServiceDesc(rs)
	gs.RegisterService(residentDesc, rs)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	as := &adminServer{visitors: cfg.Visitors, cache: cfg.Cache, audit: cfg.Audit, auditor: cfg.AdminAudit, contacts: cfg.Contacts, buildings: cfg.Buildings, org: cfg.Org, property: cfg.Property, properties: cfg.Properties,
		editor: cfg.PropertyEditor, checker: cfg.ConnectionChecker, rosters: cfg.Rosters, directories: cfg.Directories,
		moveouts: cfg.MoveOuts, log: cfg.Logger}
	pb.RegisterAdminServiceServer(gs, as)
	gsv := &guestServer{visitors: cfg.Visitors}
	pb.RegisterGuestServiceServer(gs, gsv)
	ts := &visitorServer{visitors: cfg.Visitors, contacts: cfg.Contacts, buildings: cfg.Buildings, org: cfg.Org, property: cfg.Property, limiter: cfg.Limiter}
	pb.RegisterVisitorServiceServer(gs, ts)
	reflection.Register(gs)

	conn := newInprocConn(chainUnary(observed(cfg.Metrics, "rest", interceptors)...))
	conn.register(residentDesc, rs)
	conn.register(&pb.AdminService_ServiceDesc, as)
	conn.register(&pb.GuestService_ServiceDesc, gsv)
	conn.register(&pb.VisitorService_ServiceDesc, ts)
	gw, err := newGateway(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("server: gateway: %w", err)
	}
	if gw, err = withCORS(gw, cfg.CORSOrigins); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, grpc: gs, health: hs, tile: tile, tls: certs != nil, endStreams: endStreams}
	mux := http.NewServeMux()
	mux.Handle("/v1/", withClientAddr(gw, cfg.TrustedProxies))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /g/{token}", s.servePass)
	mux.HandleFunc("GET /tile", s.serveTile)
	mux.HandleFunc("GET /static/{file}", serveStatic)
	mux.HandleFunc("POST /webhooks/envoy", s.serveEnvoyWebhook)
	if cfg.SMSStatus != nil {
		mux.Handle("POST "+SMSStatusPath, cfg.SMSStatus)
	}
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	s.http = &http.Server{
		Handler:           secureHeaders{next: telemetry.HTTPHandler(mux, cfg.Metrics, cfg.Tracing), hsts: s.tls},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// TLS handshake failures and handler panics, in the structured log.
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	if certs != nil {
		s.http.TLSConfig = certs.tlsConfig()
	}
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("server: gRPC listen on %s: %w", cfg.GRPCAddr, err)
	}
	httpLis := cfg.HTTPListener
	if httpLis == nil {
		if httpLis, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			grpcLis.Close()
			return nil, fmt.Errorf("server: HTTP listen on %s: %w", cfg.HTTPAddr, err)
		}
	}
	// Below TLS, which both servers add on top.
	s.grpcLis = limitConns(withUserTimeout(grpcLis, keepaliveTimeout), "grpc", cfg.GRPCConns, cfg.Logger, cfg.Metrics)
	s.httpLis = limitConns(httpLis, "http", cfg.HTTPConns, cfg.Logger, cfg.Metrics)
	return s, nil
}

// observed puts the request id and metrics interceptor in front of ics:
// outermost, so it sees the status the caller gets.
func observed(m *telemetry.Metrics, transport string, ics []grpc.UnaryServerInterceptor) []grpc.UnaryServerInterceptor {
	return append([]grpc.UnaryServerInterceptor{telemetry.UnaryInterceptor(m, transport)}, ics...)
}

// streamEndDelay is how long after health turns NOT_SERVING the
// streaming calls are ended.
const streamEndDelay = 250 * time.Millisecond

// endingStreams gives each streaming call a context that also ends with
// streams (at shutdown). Unary calls (every unlock) are untouched:
// GracefulStop lets them finish.
func endingStreams(end <-chan struct{}) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		go func() {
			select {
			case <-end:
				cancel()
			case <-ctx.Done():
			}
		}()
		return handler(srv, &streamWithContext{ServerStream: ss, ctx: ctx})
	}
}

type streamWithContext struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *streamWithContext) Context() context.Context { return w.ctx }

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Serve serves until ctx ends, then drains: health turns NOT_SERVING,
// new calls are refused, in-flight ones get ShutdownGrace to finish.
func (s *Server) Serve(ctx context.Context) error {
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s.health.SetServingStatus(pb.ResidentService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(s.grpcLis) }()
	go func() {
		serve := s.http.Serve
		if s.tls {
			serve = func(l net.Listener) error { return s.http.ServeTLS(l, "", "") } // certificates from TLSConfig
		}
		if err := serve(s.httpLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			return
		}
		errc <- nil
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.health.Shutdown()
	// Watchers get a moment to receive NOT_SERVING before their streams end.
	ending := time.AfterFunc(streamEndDelay, func() { close(s.endStreams) })
	defer ending.Stop()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	herr := s.http.Shutdown(sctx)
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		s.grpc.Stop()
	}
	return errors.Join(err, herr)
}

// healthz is open to anyone, so it tells the state only
// ({"status":"degraded","redis":"unavailable"}); the dependency's error,
// which names its address, is logged (throttled by telemetry.LogHandler).
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	out := map[string]string{"status": "ok"}
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for name, err := range s.cfg.Ready(ctx) {
			if err != nil {
				// Degraded, not down: cloudkey still answers from the access system.
				out[name], out["status"] = "unavailable", "degraded"
				s.cfg.Logger.WarnContext(r.Context(), "healthz: dependency unavailable", "dependency", name, "err", err)
				continue
			}
			out[name] = "ok"
		}
	}
	writeJSON(w, http.StatusOK, out)
}
