// Package openpath is cloudkey's client of the Openpath (Avigilon Alta)
// REST API. It implements access.System: find a user by email, make sure
// the user has a cloud-key credential, list the user's entries, unlock one.
//
// The client logs in with a service account (POST /auth/login), caches the
// token, refreshes it before it expires and, when any call is answered 401,
// logs in again and repeats that call once. Reads (GET) are retried with
// backoff when Openpath is unavailable or rate-limits, within the caller's
// deadline; nothing else is ever retried, least of all an unlock. A
// circuit breaker fails calls fast while Openpath keeps failing, and the
// requests in flight are bounded (Config.MaxInFlight). Every call is
// bounded by its context. Check proves a new connection (login, and the
// organisation among the login's) before it is saved.
//
// An adapter over HTTP: it imports access and internal/identity (canonical
// emails) only, never the cache, unlock, server, Redis or gRPC.
package openpath

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/guard"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API's root, e.g. "https://api.openpath.com" or a
	// simulator's URL.
	BaseURL string
	// Email and Password are the service account's login.
	Email    string
	Password string
	// OrgID is the organisation's id, a decimal integer. Empty means the
	// first org of the login's tokenScopeList.
	OrgID string
	// HTTPClient sends the requests. Nil means a client with a pooled
	// transport (256 idle connections per host), no overall timeout
	// (deadlines come from contexts) and no redirects followed.
	HTTPClient *http.Client
	// UserAgent is sent with every request; empty means DefaultUserAgent.
	UserAgent string
	// Logger receives debug logs of logins and warnings of breaker
	// changes; nil discards them.
	Logger *slog.Logger

	// Name names this access system in errors, logs and OnBreakerChange;
	// empty means "openpath".
	Name string
	// MaxInFlight bounds the requests in flight at once (logins aside); a
	// call waits for a free slot as long as its context allows, then fails
	// with ErrBusy. 0 means DefaultMaxInFlight; negative, no bound.
	MaxInFlight int
	// BreakerOpenTimeout is how long the circuit breaker, once open, fails
	// calls at once (ErrCircuitOpen) before it lets a probe through; 0
	// means DefaultBreakerOpenTimeout.
	BreakerOpenTimeout time.Duration
	// OnBreakerChange, when set, is told every change of the breaker's
	// state ("closed", "open", "half-open"), e.g. for a metric. It is
	// called while the breaker is locked: it must be quick and must not
	// call the Client.
	OnBreakerChange func(system, from, to string)
	// WrapTransport, when set, wraps the HTTP client's transport (of
	// HTTPClient, or of the default one), e.g. to measure or trace every
	// upstream request. Nil wraps nothing.
	WrapTransport func(http.RoundTripper) http.RoundTripper

	// breakerWindow replaces breakerWindow in tests; 0 keeps it.
	breakerWindow time.Duration
}

// DefaultUserAgent identifies cloudkey to Openpath.
const DefaultUserAgent = "cloudkey-openpath/1"

// ErrInvalidID: an id cloudkey passed is not an Openpath id (a positive
// decimal integer). The request is not sent.
var ErrInvalidID = errors.New("invalid Openpath id")

// Client is an Openpath API client. It is safe for concurrent use.
type Client struct {
	base      string // BaseURL without a trailing slash
	email     string
	password  string
	orgID     string // configured; empty: taken from the login
	http      *http.Client
	idle      interface{ CloseIdleConnections() } // the unwrapped transport, or nil
	userAgent []string
	log       *slog.Logger
	name      string

	// guard holds the circuit breaker, which fails calls fast while
	// Openpath keeps failing, and the bound on requests in flight. See
	// resilience.go.
	guard *guard.Guard

	auth tokenSource

	// cloudKeyType caches the id of the cloudKey credential type, which
	// never changes for an org; 0 means not looked up yet.
	cloudKeyType atomic.Int64

	// service caches the service account's user and cloud key, which guest
	// unlock tokens are issued on; nil until first needed, and dropped when
	// Openpath refuses them. serviceMu makes concurrent first callers
	// resolve them once.
	service   atomic.Pointer[serviceKey]
	serviceMu sync.Mutex
}

var (
	_ access.System      = (*Client)(nil)
	_ access.GuestSystem = (*Client)(nil)
)

// New returns a client for cfg. It does not contact Openpath: the first
// call logs in.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("openpath: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.Email == "" || cfg.Password == "" {
		return nil, errors.New("openpath: the service account's email and password are required")
	}
	if cfg.OrgID != "" {
		if err := checkID("org id", cfg.OrgID); err != nil {
			return nil, fmt.Errorf("openpath: %w", err)
		}
	}
	c := &Client{
		base:      strings.TrimRight(cfg.BaseURL, "/"),
		email:     cfg.Email,
		password:  cfg.Password,
		orgID:     cfg.OrgID,
		userAgent: []string{cfg.UserAgent},
		log:       cfg.Logger,
		name:      cfg.Name,
	}
	c.http, c.idle = httpClient(cfg.HTTPClient, cfg.WrapTransport)
	if cfg.UserAgent == "" {
		c.userAgent = []string{DefaultUserAgent}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.name == "" {
		c.name = "openpath"
	}
	onChange := cfg.OnBreakerChange
	c.guard = guard.New(guard.Config{
		Name:               c.name,
		MaxInFlight:        cfg.MaxInFlight,
		BreakerOpenTimeout: cfg.BreakerOpenTimeout,
		BreakerWindow:      cfg.breakerWindow,
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.log.Warn("openpath: circuit breaker changed state", "system", name, "from", from.String(), "to", to.String())
			if onChange != nil {
				onChange(name, from.String(), to.String())
			}
		},
	})
	return c, nil
}

// CloseIdleConnections closes the idle connections of the client's HTTP
// client.
func (c *Client) CloseIdleConnections() {
	c.http.CloseIdleConnections()
	if c.idle != nil {
		c.idle.CloseIdleConnections() // a wrapper may not pass the call on
	}
}

// httpClient returns the client requests are sent with: hc, or the
// default one, with its transport wrapped by wrap when set; and the
// unwrapped transport when it has idle connections to close.
func httpClient(hc *http.Client, wrap func(http.RoundTripper) http.RoundTripper) (*http.Client, interface{ CloseIdleConnections() }) {
	if hc == nil {
		hc = NewHTTPClient()
	}
	if wrap == nil {
		return hc, nil
	}
	cp := *hc // the caller's client is left as it is
	base := cp.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	cp.Transport = wrap(base)
	idle, _ := base.(interface{ CloseIdleConnections() })
	return &cp, idle
}

// NewHTTPClient is the client a Client uses when Config.HTTPClient is
// nil (the load-test floor measures it too). cloudkey fans unlocks out
// concurrently to one host, so the idle pool per host is large; there is
// no Timeout because every request carries its caller's deadline; and
// redirects are not followed, because a redirected POST would turn into a
// GET and an unlock must never be re-sent anywhere.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 256
	tr.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checkID validates an id before it goes into a path or body: a positive
// decimal integer without leading zeros, as Openpath writes its ids.
func checkID(kind, s string) error {
	ok := s != "" && len(s) <= 18 && s[0] != '0'
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '0' && s[i] <= '9'
	}
	if !ok {
		return fmt.Errorf("%w: %s %q is not a positive decimal integer", ErrInvalidID, kind, s)
	}
	return nil
}
