package kisi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/access/guard"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API's root, e.g. "https://api.kisi.io" or a
	// simulator's URL.
	BaseURL string
	// APIKey is the organisation's API key, a login secret of an
	// organisation admin, sent as "Authorization: KISI-LOGIN <key>". It
	// finds users and creates their logins; it never unlocks.
	APIKey string
	// PlaceIDs, when set, are the places (buildings) this connection
	// serves: only their locks are listed. Empty means every place the
	// organisation key sees (GET /places, fetched once).
	PlaceIDs []int64
	// Logins keeps the logins made on users' behalf. Required.
	Logins LoginStore
	// HTTPClient sends the requests. Nil means a client with a pooled
	// transport, no overall timeout (deadlines come from contexts) and no
	// redirects followed.
	HTTPClient *http.Client
	// Logger receives debug logs of login creations and warnings of breaker
	// changes; nil discards them. Secrets are never logged.
	Logger *slog.Logger
	// Name names this connection in errors, logs and OnBreakerChange;
	// empty means "kisi".
	Name string
	// MaxInFlight bounds the requests in flight at once; a call waits for
	// a free slot as long as its context allows, then fails with
	// guard.ErrBusy. 0 means guard.DefaultMaxInFlight; negative, no bound.
	MaxInFlight int
	// BreakerOpenTimeout is how long the circuit breaker, once open, fails
	// calls at once (guard.ErrCircuitOpen) before it lets a probe
	// through; 0 means guard.DefaultBreakerOpenTimeout.
	BreakerOpenTimeout time.Duration
	// OrgRate is how many requests per second the organisation key may
	// send (user look-ups and login creations together), in bursts of as
	// many; 0 means DefaultOrgRate. Kisi allows 5 per second per user, and
	// the key is one user. The bucket is this process's: with several
	// replicas sharing a key, give each its share (Kisi's 429s are
	// retried all the same).
	OrgRate float64
	// OnBreakerChange, when set, is told every change of the breaker's
	// state ("closed", "open", "half-open"). It is called while the
	// breaker is locked: it must be quick and must not call the Client.
	OnBreakerChange func(system, from, to string)

	// userRate replaces UserRate in tests; 0 keeps it.
	userRate float64
	// breakerWindow replaces guard.BreakerWindow in tests; 0 keeps it.
	breakerWindow time.Duration
}

const (
	// DefaultOrgRate is Config.OrgRate's default: Kisi's limit per user.
	DefaultOrgRate = 5
	// UserRate is how many requests per second one user's login may send,
	// in bursts of as many: under Kisi's 5 per user (shared by all the
	// user's logins) with a margin, because requests paced exactly at 5
	// per second can reach Kisi closer together than they left.
	UserRate = 4
	// DefaultUserAgent identifies cloudkey to Kisi.
	DefaultUserAgent = "cloudkey-kisi/1"
	// IntegrationIdentifier is sent as X-Kisi-Integration-Identifier, as
	// Kisi asks of integration partners.
	IntegrationIdentifier = "cloudkey"

	// maxUserLimiters bounds the per-user rate limiters kept (an LRU). A
	// user whose limiter was evicted starts with a full bucket again, which
	// can let at most one burst too many through for a user idle long
	// enough to be evicted: harmless, and Kisi's 429 is handled anyway.
	maxUserLimiters = 10_000
	// maxSessions bounds the users whose logins are kept in memory (an
	// LRU in front of the LoginStore, which keeps them all).
	maxSessions = 50_000
)

var (
	// ErrInvalidID: an id cloudkey passed is not a Kisi id (a positive
	// decimal integer). The request is not sent.
	ErrInvalidID = errors.New("invalid Kisi id")
	// ErrRateLimited: the request was not sent because the rate limit
	// (the organisation's or the user's) had no token for it before the
	// caller's deadline. It matches access.ErrUnavailable.
	ErrRateLimited = fmt.Errorf("rate limit leaves no slot before the deadline: %w", access.ErrUnavailable)
)

// Client is a Kisi API client for one organisation (one API key). It is
// safe for concurrent use.
type Client struct {
	base   string // BaseURL without a trailing slash
	orgKey string // "KISI-LOGIN <API key>", ready for the header
	places []int64
	logins LoginStore
	http   *http.Client
	log    *slog.Logger
	name   string

	guard *guard.Guard

	// orgLimiter paces the organisation key; userLimiters each user's
	// login (see limiter).
	orgLimiter   *rate.Limiter
	userRate     rate.Limit
	userLimiters *lru.Cache[int64, *rate.Limiter]
	limitersMu   sync.Mutex // makes get-or-create of a user limiter atomic

	// sessions holds the logins in use, by Kisi user id, in front of the
	// LoginStore; creating makes concurrent first calls for one user
	// create one login.
	sessions *lru.Cache[int64, session]
	creating singleflight.Group

	// orgPlaces caches the organisation's place ids when Config.PlaceIDs
	// is empty; nil until fetched.
	placesMu  sync.Mutex
	orgPlaces map[int64]bool
}

var _ access.System = (*Client)(nil)

// New returns a client for cfg. It does not contact Kisi.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("kisi: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if cfg.APIKey == "" || strings.ContainsAny(cfg.APIKey, " \r\n\t") {
		return nil, errors.New("kisi: the organisation's API key is required, without spaces")
	}
	if cfg.Logins == nil {
		return nil, errors.New("kisi: a LoginStore is required")
	}
	for _, id := range cfg.PlaceIDs {
		if id <= 0 {
			return nil, fmt.Errorf("kisi: %w: place id %d", ErrInvalidID, id)
		}
	}
	if cfg.OrgRate < 0 {
		return nil, fmt.Errorf("kisi: negative OrgRate %v", cfg.OrgRate)
	}
	c := &Client{
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		orgKey: "KISI-LOGIN " + cfg.APIKey,
		places: append([]int64(nil), cfg.PlaceIDs...),
		logins: cfg.Logins,
		http:   cfg.HTTPClient,
		log:    cfg.Logger,
		name:   cfg.Name,
	}
	if c.http == nil {
		c.http = NewHTTPClient()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.name == "" {
		c.name = "kisi"
	}
	orgRate := cfg.OrgRate
	if orgRate == 0 {
		orgRate = DefaultOrgRate
	}
	c.orgLimiter = rate.NewLimiter(rate.Limit(orgRate), burst(orgRate))
	c.userRate = UserRate
	if cfg.userRate > 0 {
		c.userRate = rate.Limit(cfg.userRate)
	}
	if c.userLimiters, err = lru.New[int64, *rate.Limiter](maxUserLimiters); err != nil {
		return nil, fmt.Errorf("kisi: %w", err)
	}
	if c.sessions, err = lru.New[int64, session](maxSessions); err != nil {
		return nil, fmt.Errorf("kisi: %w", err)
	}
	onChange := cfg.OnBreakerChange
	c.guard = guard.New(guard.Config{
		Name:               c.name,
		MaxInFlight:        cfg.MaxInFlight,
		BreakerOpenTimeout: cfg.BreakerOpenTimeout,
		BreakerWindow:      cfg.breakerWindow,
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.log.Warn("kisi: circuit breaker changed state", "system", name, "from", from.String(), "to", to.String())
			if onChange != nil {
				onChange(name, from.String(), to.String())
			}
		},
	})
	return c, nil
}

// burst is a token bucket's size for r requests per second: r, at least 1.
func burst(r float64) int { return max(1, int(r)) }

// BreakerState is the state of the client's circuit breaker: "closed",
// "open" or "half-open".
func (c *Client) BreakerState() string { return c.guard.State().String() }

// CloseIdleConnections closes the idle connections of the client's HTTP
// client.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// NewHTTPClient is the client a Client uses when Config.HTTPClient is
// nil: a large idle pool per host, no Timeout because every request
// carries its caller's deadline, and no redirects followed, because a
// redirected POST would turn into a GET and an unlock must never be re-sent
// anywhere (nor a login secret sent to another host).
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

// parseID parses an id cloudkey passed: a positive decimal integer
// without leading zeros, as Kisi writes its ids.
func parseID(kind, s string) (int64, error) {
	ok := s != "" && len(s) <= 18 && s[0] != '0'
	var n int64
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= '0' && s[i] <= '9'
		n = n*10 + int64(s[i]-'0')
	}
	if !ok {
		return 0, fmt.Errorf("%w: %s %q is not a positive decimal integer", ErrInvalidID, kind, s)
	}
	return n, nil
}
