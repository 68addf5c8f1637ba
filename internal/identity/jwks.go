package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/sync/singleflight"
)

// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

// MaxLeeway bounds the configurable skew: beyond it an expired token
// would stay usable for too long.
const MaxLeeway = 5 * time.Minute

// jwksAlgs are the only algorithms a JWKS token may use: pinned, so "none"
// and HS256 signed with a public key's bytes are refused before any key
// is looked up.
var jwksAlgs = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}

// maxJWKSBody bounds a JWKS document; real ones are a few KiB.
const maxJWKSBody = 1 << 20

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// JWKSConfig configures a JWKS verifier. URL, Issuer and Audience are
// required.
type JWKSConfig struct {
	URL      string // the identity provider's JWKS document
	Issuer   string // the only accepted `iss`
	Audience string // must be one of `aud`
	// Leeway is the clock skew tolerated; 0 means DefaultLeeway, at most
	// MaxLeeway.
	Leeway time.Duration
	// RefreshInterval is how often the keys are refetched in the
	// background; 0 means 15 minutes.
	RefreshInterval time.Duration
	// MinRefetchInterval is the least time between two fetches caused by
	// an unknown kid, so a flood of tokens with made-up kids costs the
	// JWKS server one request per interval; 0 means 30 seconds.
	MinRefetchInterval time.Duration
	// HTTPClient fetches the document; nil means one with a 5 s timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// JWKS verifies RS256 and ES256 app tokens against an identity provider's
// published keys. Keys are fetched at start, refreshed in the background,
// and refetched (rate-limited) when a token names an unknown kid, which is
// how key rotation reaches us. When a fetch fails the last good keys stay
// in use. Close stops the refresher.
type JWKS struct {
	cfg    JWKSConfig
	parser *jwt.Parser
	keys   atomic.Pointer[keySet]
	log    *slog.Logger
	now    func() time.Time // tests move the clock

	fetches   singleflight.Group
	mu        sync.Mutex // guards lastFetch, lastErr
	lastFetch time.Time  // start of the last fetch attempt
	lastErr   error      // the last fetch's error, nil after a success

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

type publicKey struct {
	alg string // the JWT alg this key verifies
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

type keySet struct {
	byKID map[string]publicKey
	only  *publicKey // the single key, for tokens without kid
}

// NewJWKS validates cfg, fetches the keys once and starts the background
// refresher. A failed first fetch is logged, not fatal: the identity
// provider may be briefly down while cloudkey starts, and the first token
// retries (rate-limited).
func NewJWKS(cfg JWKSConfig) (*JWKS, error) {
	switch {
	case cfg.URL == "":
		return nil, errors.New("identity: JWKS URL is empty")
	case cfg.Issuer == "":
		return nil, errors.New("identity: a JWKS URL needs a token issuer (CLOUDKEY_TOKEN_ISSUER, --token-issuer): tokens of any other issuer are refused")
	case cfg.Audience == "":
		return nil, errors.New("identity: a JWKS URL needs a token audience (CLOUDKEY_TOKEN_AUDIENCE, --token-audience): tokens for other services are refused")
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("identity: token leeway %v is outside [0, %v]", cfg.Leeway, MaxLeeway)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 15 * time.Minute
	}
	if cfg.MinRefetchInterval <= 0 {
		cfg.MinRefetchInterval = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v := &JWKS{cfg: cfg, log: cfg.Logger, now: time.Now, done: make(chan struct{})}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(jwksAlgs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
		jwt.WithStrictDecoding(),
	)
	v.keys.Store(&keySet{})
	v.ctx, v.cancel = context.WithCancel(context.Background())
	if err := v.refetch(); err != nil {
		v.log.Warn("JWKS: first fetch failed; tokens are refused until a fetch succeeds", "url", cfg.URL, "err", err)
	}
	go v.refresh()
	return v, nil
}

// Close stops the background refresher and any fetch in flight.
func (v *JWKS) Close() {
	v.cancel()
	<-v.done
}

func (v *JWKS) refresh() {
	defer close(v.done)
	t := time.NewTicker(v.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-t.C:
			if err := v.refetch(); err != nil && v.ctx.Err() == nil {
				v.log.Warn("JWKS: refresh failed; keeping the last keys", "url", v.cfg.URL, "err", err)
			}
		}
	}
}

// Verify checks token's JSON (checkJSON: no duplicate names; exp, nbf and
// iat numbers), its signature against the published keys, its alg, exp
// (required), nbf, iat, iss and aud, and returns its claims.
func (v *JWKS) Verify(token string) (Claims, error) {
	return verify(v.parser, token, v.keyFunc)
}

// keyFunc finds the key for the token's kid, refetching once (rate-limited)
// when the kid is unknown, and checks the key is meant for the token's alg.
func (v *JWKS) keyFunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	k, ok := v.keys.Load().find(kid)
	if !ok {
		if err := v.refetchUnknown(); err != nil {
			return nil, err
		}
		if k, ok = v.keys.Load().find(kid); !ok {
			if kid == "" {
				return nil, errors.New("token has no kid and the JWKS has more than one key")
			}
			return nil, fmt.Errorf("no key with kid %q in the JWKS", kid)
		}
	}
	if alg := t.Method.Alg(); k.alg != alg {
		return nil, fmt.Errorf("key %q is for %s, token is %s", kid, k.alg, alg)
	}
	return k.key, nil
}

func (s *keySet) find(kid string) (publicKey, bool) {
	if kid == "" {
		if s.only == nil {
			return publicKey{}, false
		}
		return *s.only, true
	}
	k, ok := s.byKID[kid]
	return k, ok
}

// refetchUnknown fetches the keys for a token whose kid is unknown, unless
// a fetch started less than MinRefetchInterval ago. Concurrent callers
// share one fetch.
func (v *JWKS) refetchUnknown() error {
	v.mu.Lock()
	recent := !v.lastFetch.IsZero() && v.now().Sub(v.lastFetch) < v.cfg.MinRefetchInterval
	lastErr := v.lastErr
	v.mu.Unlock()
	if recent {
		if lastErr != nil && len(v.keys.Load().byKID) == 0 {
			return fmt.Errorf("no signing keys: fetching the JWKS failed: %v", lastErr)
		}
		return nil
	}
	if err := v.refetch(); err != nil && len(v.keys.Load().byKID) == 0 {
		return fmt.Errorf("no signing keys: fetching the JWKS failed: %v", err)
	}
	return nil
}

// refetch fetches and installs the keys; concurrent calls share one fetch.
// On failure the previous keys stay.
func (v *JWKS) refetch() error {
	_, err, _ := v.fetches.Do("", func() (any, error) {
		v.mu.Lock()
		v.lastFetch = v.now()
		v.mu.Unlock()
		ks, err := v.fetch()
		if err == nil {
			v.keys.Store(ks)
		}
		v.mu.Lock()
		v.lastErr = err
		v.mu.Unlock()
		return nil, err
	})
	return err
}

func (v *JWKS) fetch() (*keySet, error) {
	req, err := http.NewRequestWithContext(v.ctx, http.MethodGet, v.cfg.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", v.cfg.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", v.cfg.URL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read: %w", v.cfg.URL, err)
	}
	if len(body) > maxJWKSBody {
		return nil, fmt.Errorf("GET %s: JWKS larger than %d bytes", v.cfg.URL, maxJWKSBody)
	}
	// Not strict: an entry jwx cannot parse (an RSA key under 2048 bits,
	// an unknown kty or crv, a bad encoding) is kept as an UnsupportedKey
	// placeholder instead of failing the whole set, so one odd key cannot
	// take the signing keys down with it.
	set, err := jwk.Parse(body, jwk.WithStrictKeySetParsing(false))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", v.cfg.URL, err)
	}
	ks := &keySet{byKID: map[string]publicKey{}}
	var skipped []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		pk, err := usableKey(k)
		if err != nil {
			// Logged once per fetch, by kid and reason; never the key.
			reason := shorten(err.Error(), 300)
			v.log.Warn("JWKS: key skipped; the other keys stay in use", "url", v.cfg.URL, "kid", kid, "index", i, "reason", reason)
			skipped = append(skipped, fmt.Sprintf("kid %q: %s", kid, reason))
			continue
		}
		ks.byKID[kid] = pk
	}
	if len(ks.byKID) == 0 {
		if len(skipped) == 0 {
			return nil, fmt.Errorf("GET %s: the JWKS has no keys", v.cfg.URL)
		}
		return nil, fmt.Errorf("GET %s: none of the %d keys in the JWKS is a usable RS256 or ES256 signing key (%s)",
			v.cfg.URL, len(skipped), strings.Join(skipped, "; "))
	}
	if len(ks.byKID) == 1 {
		for _, pk := range ks.byKID {
			ks.only = &pk
		}
	}
	return ks, nil
}

// shorten cuts s to at most n bytes (on a rune boundary), marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// usableKey accepts RSA keys of at least 2048 bits for RS256 and P-256
// keys for ES256, honouring the key's own alg and use when it states them.
func usableKey(k jwk.Key) (publicKey, error) {
	if uk, ok := k.(jwk.UnsupportedKey); ok {
		return publicKey{}, fmt.Errorf("kty %q cannot be parsed: %v", k.KeyType().String(), uk.Reason())
	}
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return publicKey{}, fmt.Errorf("use is %q", use)
	}
	pub, err := jwk.PublicKeyOf(k)
	if err != nil {
		return publicKey{}, err
	}
	var raw any
	if err := jwk.Export(pub, &raw); err != nil {
		return publicKey{}, err
	}
	var pk publicKey
	switch key := raw.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return publicKey{}, fmt.Errorf("RSA key of %d bits", key.N.BitLen())
		}
		pk = publicKey{alg: jwt.SigningMethodRS256.Alg(), key: key}
	case *ecdsa.PublicKey:
		if key.Curve != elliptic.P256() {
			return publicKey{}, fmt.Errorf("EC key on %s", key.Curve.Params().Name)
		}
		pk = publicKey{alg: jwt.SigningMethodES256.Alg(), key: key}
	default:
		return publicKey{}, fmt.Errorf("kty %q is not an RSA or EC public key", k.KeyType().String())
	}
	if alg, ok := k.Algorithm(); ok && alg.String() != pk.alg {
		return publicKey{}, fmt.Errorf("alg %s", alg)
	}
	return pk, nil
}
