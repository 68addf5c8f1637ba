// Package buildium pulls a property's resident roster from Buildium's
// Open API (https://api.buildium.com/v1): leases, their tenants and
// move-outs for the configured Buildium rental property ids, paged,
// incremental with lastupdatedfrom, as roster.Person rows.
//
// The API key's client secret is sent in a header only; it is never
// logged and never part of an error.
package buildium

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/roster"
)

// DefaultURL is Buildium's API.
const DefaultURL = "https://api.buildium.com"

// Config is one Buildium connection: an account's API key and the rental
// properties (Buildium property ids) that make up one cloudkey property.
type Config struct {
	// URL is the API's base, without /v1 (default DefaultURL).
	URL          string
	ClientID     string
	ClientSecret string
	// PropertyIDs are the Buildium rental property ids to pull.
	PropertyIDs []int32
	// HTTPClient sends the requests (nil: one with a 30 s timeout per
	// request).
	HTTPClient *http.Client
	// PageSize is the limit of each list request, 1..1000 (0: 1000, the
	// most Buildium allows).
	PageSize int
	// RetryWithin bounds how long one request keeps retrying 429 and 5xx
	// answers and network errors (0: 2 minutes); the context's deadline
	// bounds it too.
	RetryWithin time.Duration
	// MinBackoff is the first wait between retries when the answer has no
	// Retry-After (0: 500 ms); it doubles up to 30 s, with jitter.
	MinBackoff time.Duration
	// Logger receives retries (nil: none).
	Logger *slog.Logger
}

// Client pulls from one Buildium account. It is safe for concurrent use.
type Client struct {
	base   string
	cfg    Config
	http   *http.Client
	logger *slog.Logger
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("buildium: url %q is not an http(s) URL such as %s", cfg.URL, DefaultURL)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("buildium: the API key's client id and client secret are both required")
	}
	if len(cfg.PropertyIDs) == 0 {
		return nil, errors.New("buildium: at least one Buildium property id is required")
	}
	for _, id := range cfg.PropertyIDs {
		if id <= 0 {
			return nil, fmt.Errorf("buildium: property id %d is not a Buildium rental property id", id)
		}
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = 1000
	}
	if cfg.PageSize < 1 || cfg.PageSize > 1000 {
		return nil, fmt.Errorf("buildium: page size %d is outside 1..1000", cfg.PageSize)
	}
	if cfg.RetryWithin <= 0 {
		cfg.RetryWithin = 2 * time.Minute
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	c := &Client{base: strings.TrimRight(cfg.URL, "/"), cfg: cfg, http: cfg.HTTPClient, logger: cfg.Logger}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Errors a manager can act on; errors.Is matches them.
var (
	// ErrUnauthorized: Buildium refused the API key (401).
	ErrUnauthorized = errors.New("buildium refused the API key")
	// ErrForbidden: the key may not read leases, tenants or rentals (403).
	ErrForbidden = errors.New("the Buildium API key lacks permission")
	// ErrUnknownProperty: a configured property id is not in the account.
	ErrUnknownProperty = errors.New("unknown Buildium property id")
	// ErrUnavailable: Buildium kept answering 429 or 5xx, or could not be
	// reached, until the retry budget ran out.
	ErrUnavailable = errors.New("Buildium is unavailable")
)

// Result is a pull: the people (one row per tenant per lease, each with
// an email) and the rows skipped (no email, a malformed one).
type Result struct {
	People []roster.Person
	Issues []roster.Issue
	// Requests counts the HTTP requests made, retries included.
	Requests int
}

// Pull returns the roster rows changed since since (zero: all of them),
// skipping tenants without a usable email; Fetch also says which. Record
// the time before calling as the next since: Buildium stamps changes with
// its own clock, so subtract a margin for skew.
func (c *Client) Pull(ctx context.Context, since time.Time) ([]roster.Person, error) {
	r, err := c.Fetch(ctx, since)
	return r.People, err
}

// Fetch is Pull with the skipped rows and the request count.
//
// It reads the tenants changed since since (email, names) with their
// leases, then the leases changed since since (status, move-outs), each
// paged, and emits every tenant of every lease read; a tenant neither
// list carried (a moved-out tenant on a changed lease: leases embed the
// current tenants only) is read by id.
func (c *Client) Fetch(ctx context.Context, since time.Time) (Result, error) {
	var res Result
	if err := c.checkProperties(ctx, &res); err != nil {
		return res, err
	}
	q := url.Values{}
	for _, id := range c.cfg.PropertyIDs {
		q.Add("propertyids", strconv.Itoa(int(id)))
	}
	if !since.IsZero() {
		// Buildium wants UTC, to the second; round down so nothing is
		// missed.
		q.Set("lastupdatedfrom", since.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z"))
	}
	wanted := map[int32]bool{}
	for _, id := range c.cfg.PropertyIDs {
		wanted[id] = true
	}

	tenants := map[int32]tenantMessage{}
	leases := map[int32]leaseMessage{}
	err := list(ctx, c, &res, "/v1/leases/tenants", q, func(t tenantMessage) {
		tenants[t.ID] = t
		for _, l := range t.Leases {
			if wanted[l.PropertyID] {
				if _, ok := leases[l.ID]; !ok {
					leases[l.ID] = l
				}
			}
		}
	})
	if err != nil {
		return res, err
	}
	err = list(ctx, c, &res, "/v1/leases", q, func(l leaseMessage) {
		leases[l.ID] = l // the lease list embeds the current tenants
		for _, t := range l.CurrentTenants {
			if _, ok := tenants[t.ID]; !ok {
				tenants[t.ID] = t
			}
		}
	})
	if err != nil {
		return res, err
	}

	ids := make([]int32, 0, len(leases))
	for id := range leases {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		l := leases[id]
		for _, lt := range l.Tenants {
			t, ok := tenants[lt.ID]
			if !ok {
				if err := c.get(ctx, &res, "/v1/leases/tenants/"+strconv.Itoa(int(lt.ID)), nil, &t, nil); err != nil {
					return res, err
				}
				tenants[lt.ID] = t
			}
			p, issue := person(l, lt, t)
			if issue != nil {
				res.Issues = append(res.Issues, *issue)
				continue
			}
			res.People = append(res.People, p)
		}
	}
	return res, nil
}

// checkProperties fails with ErrUnknownProperty when a configured id is
// not among the account's rental properties, rather than pulling an empty
// roster that would look like everyone moved out.
func (c *Client) checkProperties(ctx context.Context, res *Result) error {
	q := url.Values{}
	for _, id := range c.cfg.PropertyIDs {
		q.Add("propertyids", strconv.Itoa(int(id)))
	}
	found := map[int32]bool{}
	if err := list(ctx, c, res, "/v1/rentals", q, func(r rentalMessage) { found[r.ID] = true }); err != nil {
		return err
	}
	var missing []string
	for _, id := range c.cfg.PropertyIDs {
		if !found[id] {
			missing = append(missing, strconv.Itoa(int(id)))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("buildium: %w: %s not among the rental properties this API key sees; check the property ids in the pms block (Buildium shows them in the property's URL)",
			ErrUnknownProperty, strings.Join(missing, ", "))
	}
	return nil
}

// list reads every page of a list operation, calling each for every item.
func list[T any](ctx context.Context, c *Client, res *Result, path string, q url.Values, each func(T)) error {
	q = cloneValues(q)
	q.Set("limit", strconv.Itoa(c.cfg.PageSize))
	for offset := 0; ; {
		q.Set("offset", strconv.Itoa(offset))
		var items []T
		var header http.Header
		if err := c.get(ctx, res, path, q, &items, &header); err != nil {
			return err
		}
		for _, it := range items {
			each(it)
		}
		offset += len(items)
		total, err := strconv.Atoi(header.Get("X-Total-Count"))
		if len(items) == 0 || (err == nil && offset >= total) || (err != nil && len(items) < c.cfg.PageSize) {
			return nil
		}
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

// get sends one GET, retrying 429, 5xx and network errors with backoff
// (honouring Retry-After) within RetryWithin, and decodes a 200 into out.
func (c *Client) get(ctx context.Context, res *Result, path string, q url.Values, out any, header *http.Header) error {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	deadline := time.Now().Add(c.cfg.RetryWithin)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	backoff := c.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		status, h, body, err := c.send(ctx, res, target)
		if err == nil && status == http.StatusOK {
			if header != nil {
				*header = h
			}
			if err := json.Unmarshal(body, out); err != nil {
				return fmt.Errorf("buildium: GET %s: the answer is not the expected JSON: %w", path, err)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("buildium: GET %s: %w", path, ctx.Err())
		}
		var why string
		wait := backoff + rand.N(backoff/2+1)
		switch {
		case err != nil:
			why = err.Error()
		case status == http.StatusTooManyRequests || status >= 500:
			why = fmt.Sprintf("%d %s", status, http.StatusText(status))
			if ra, ok := retryAfter(h.Get("Retry-After")); ok {
				wait = ra
			}
		default:
			return answerError(path, status, body)
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("buildium: GET %s: %w: %s after %d attempts; cloudkey retries at the next scheduled pull", path, ErrUnavailable, why, attempt)
		}
		c.logger.Warn("buildium: retrying", "path", path, "attempt", attempt, "reason", why, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("buildium: GET %s: %w", path, ctx.Err())
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// send makes one request; the body is read whole (at most 64 MiB).
func (c *Client) send(ctx context.Context, res *Result, target string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("x-buildium-client-id", c.cfg.ClientID)
	req.Header.Set("x-buildium-client-secret", c.cfg.ClientSecret)
	res.Requests++
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// retryAfter reads Retry-After: seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

// answerError turns a final error answer into an error saying what to do.
func answerError(path string, status int, body []byte) error {
	var e apiErrorResponse
	_ = json.Unmarshal(body, &e)
	detail := e.UserMessage
	for _, kv := range e.Errors {
		detail += "; " + kv.Key + ": " + kv.Value
	}
	if detail != "" {
		detail = " (Buildium says: " + detail + ")"
	}
	switch status {
	case http.StatusUnauthorized:
		return fmt.Errorf("buildium: %w (401)%s: check the client id and secret in the pms block; a deleted or regenerated key must be replaced", ErrUnauthorized, detail)
	case http.StatusForbidden:
		return fmt.Errorf("buildium: %w (403) to GET %s%s: give the key read access to Rentals, Leases and Tenants in Buildium's Developer Tools", ErrForbidden, path, detail)
	case http.StatusNotFound:
		return fmt.Errorf("buildium: GET %s: not found (404)%s", path, detail)
	}
	return fmt.Errorf("buildium: GET %s: %d %s%s", path, status, http.StatusText(status), detail)
}
