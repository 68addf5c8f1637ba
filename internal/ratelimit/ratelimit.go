// Package ratelimit limits unlocks per user, per guest link and per client
// IP, and tenant-tile visitor registrations per contact and per building,
// with the GCRA of github.com/go-redis/redis_rate kept in Redis, so
// every replica draws on the same budget. A check of several keys is one
// pipelined round trip. When Redis cannot answer in time the check lets
// the call through (fail open): see Limiter.
//
// It is a Redis adapter for the edge: server uses it through its
// RateLimiter interface, and domain packages must not import it.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Limit is a GCRA limit: Rate events per Period, in bursts of up to Burst.
// The zero Limit means no limit.
type Limit = redis_rate.Limit

// Config sets the limits; a zero Limit turns that one off.
type Config struct {
	UnlockUser Limit // resident unlocks per canonical email
	UnlockIP   Limit // resident unlocks per client IP (IPv6: per /64)
	GuestLink  Limit // guest unlocks per guest link
	GuestIP    Limit // guest unlocks per client IP (IPv6: per /64)
	// Visitor registrations in the tenant tile: each one issues a pass
	// and sends a link to an address the contact chooses.
	RegisterContact  Limit // per registering contact (canonical email)
	RegisterBuilding Limit // per building, all its contacts together
	// Timeout bounds the Redis round trip of one check; 0 means 100 ms.
	Timeout time.Duration
	// Prefix starts every key; "" means "ck:v1:".
	Prefix string
	Logger *slog.Logger
}

// Defaults are limits no resident or guest at a door reaches: a resident
// tapping a few doors in a row, again and again, stays under them; a
// script trying links or hammering a door does not.
func Defaults() Config {
	return Config{
		UnlockUser: Limit{Rate: 30, Period: time.Minute, Burst: 10},
		// Per IP the budget is larger: a building's residents may share
		// one NAT address.
		UnlockIP:  Limit{Rate: 120, Period: time.Minute, Burst: 60},
		GuestLink: Limit{Rate: 20, Period: time.Minute, Burst: 10},
		GuestIP:   Limit{Rate: 60, Period: time.Minute, Burst: 30},
		// A front desk registers a meeting's guests in a row (20), then
		// a visitor every few minutes at most; a building's contacts
		// together, many times that.
		RegisterContact:  Limit{Rate: 30, Period: time.Hour, Burst: 20},
		RegisterBuilding: Limit{Rate: 300, Period: time.Hour, Burst: 100},
	}
}

// Enabled reports whether any limit is set.
func (c Config) Enabled() bool {
	return !c.UnlockUser.IsZero() || !c.UnlockIP.IsZero() || !c.GuestLink.IsZero() || !c.GuestIP.IsZero() ||
		!c.RegisterContact.IsZero() || !c.RegisterBuilding.IsZero()
}

// ErrLimited is what a refused call's error Is.
var ErrLimited = errors.New("rate limited")

// LimitedError refuses a call over a limit.
type LimitedError struct {
	// Scope names the limit: "user", "ip", "guest_link", "guest_ip",
	// "contact" or "building".
	Scope string
	// RetryAfter is when the call would be allowed again.
	RetryAfter time.Duration
	// What the limit counts: "unlocks" or "visitor registrations".
	What string
}

func (e *LimitedError) Error() string {
	return fmt.Sprintf("too many %s (%s limit); retry in %s", e.What, e.Scope, e.RetryAfter.Round(time.Millisecond))
}

// Is makes errors.Is(err, ErrLimited) true.
func (e *LimitedError) Is(target error) bool { return target == ErrLimited }

// Limiter checks limits in Redis.
//
// It fails open: when Redis errs or does not answer within Timeout the
// call is allowed and the failure logged. An outage of Redis must not lock
// residents out of their building, and the limits only blunt abuse: the
// access system still authorises every unlock itself.
type Limiter struct {
	rdb     redis.UniversalClient
	cfg     Config
	log     *slog.Logger
	lastLog atomic.Int64 // unix nanos of the last fail-open log line
	opened  atomic.Int64 // calls let through because Redis failed
}

// New returns a limiter over rdb.
func New(rdb redis.UniversalClient, cfg Config) *Limiter {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "ck:v1:"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Limiter{rdb: rdb, cfg: cfg, log: cfg.Logger}
}

// FailedOpen is how many calls were let through because Redis failed.
func (l *Limiter) FailedOpen() int64 { return l.opened.Load() }

// AllowUnlock takes one resident unlock from email's and ip's budgets. An
// invalid ip (unknown caller address) is not limited by address.
func (l *Limiter) AllowUnlock(ctx context.Context, email string, ip netip.Addr) error {
	return l.allow(ctx, "unlocks",
		check{"user", l.cfg.UnlockUser, "rl:user:", email},
		check{"ip", l.cfg.UnlockIP, "rl:uip:", ipKey(ip)})
}

// AllowGuest takes one guest unlock from the link's and ip's budgets. The
// link is keyed by a hash of its token: the token itself is never stored.
func (l *Limiter) AllowGuest(ctx context.Context, token string, ip netip.Addr) error {
	var link string
	if !l.cfg.GuestLink.IsZero() {
		sum := sha256.Sum256([]byte(token))
		link = hex.EncodeToString(sum[:16])
	}
	return l.allow(ctx, "unlocks",
		check{"guest_link", l.cfg.GuestLink, "rl:link:", link},
		check{"guest_ip", l.cfg.GuestIP, "rl:gip:", ipKey(ip)})
}

// AllowRegistration takes one visitor registration from the registering
// contact's (canonical email) and the building's budgets at property: a
// building id and a contact are a property's (another property may have
// the same ids), so each property's have budgets of their own. A refused
// registration spends neither.
func (l *Limiter) AllowRegistration(ctx context.Context, property, contact, building string) error {
	return l.allow(ctx, "visitor registrations",
		check{"contact", l.cfg.RegisterContact, "rl:reg:", scoped(property, contact)},
		check{"building", l.cfg.RegisterBuilding, "rl:regb:", scoped(property, building)})
}

// scoped is id's key within property ("" when id is "": no check).
// Property ids have no ':', so "property:id" is unambiguous.
func scoped(property, id string) string {
	if id == "" {
		return ""
	}
	return property + ":" + id
}

type check struct {
	scope string
	limit Limit
	kind  string // key infix
	id    string // "" skips the check
}

func (c check) on() bool { return !c.limit.IsZero() && c.id != "" }

// allow runs both checks in one pipeline. Each key is consumed only when
// its own limit allows; when the other refuses the call, the unit is
// given back (one more round trip, on refusals only), so a refused call
// spends nothing: a resident behind a busy shared address keeps their
// own budget.
func (l *Limiter) allow(ctx context.Context, what string, a, b check) error {
	checks := [2]check{a, b}
	n := 0
	for _, c := range checks {
		if c.on() {
			checks[n] = c
			n++
		}
	}
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	var cmds [2]*redis.Cmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range checks[:n] {
			cmds[i] = p.EvalSha(ctx, gcra.Hash(), []string{l.cfg.Prefix + c.kind + c.id}, c.args()...)
		}
		return nil
	})
	if err != nil && isNoScript(err) {
		// Redis restarted or flushed its script cache: send the source
		// (which caches it again) for the checks that did not run.
		_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range checks[:n] {
				if isNoScript(cmds[i].Err()) {
					cmds[i] = p.Eval(ctx, gcraSource, []string{l.cfg.Prefix + c.kind + c.id}, c.args()...)
				}
			}
			return nil
		})
	}
	if err != nil {
		l.failOpen(ctx, err)
		return nil
	}
	var refused *LimitedError
	var taken [2]bool
	for i, c := range checks[:n] {
		allowed, retry, err := parse(cmds[i])
		if err != nil {
			l.failOpen(ctx, err)
			return nil
		}
		taken[i] = allowed
		if !allowed && (refused == nil || retry > refused.RetryAfter) {
			refused = &LimitedError{Scope: c.scope, RetryAfter: retry, What: what}
		}
	}
	if refused == nil {
		return nil
	}
	for i, c := range checks[:n] {
		if taken[i] {
			// Best effort: if Redis fails now, the unit stays spent,
			// which only slows this caller a little more.
			_ = refund.Run(ctx, l.rdb, []string{l.cfg.Prefix + c.kind + c.id}, c.limit.Rate, c.limit.Period.Seconds()).Err()
		}
	}
	return refused
}

func (c check) args() []any {
	return []any{c.limit.Burst, c.limit.Rate, c.limit.Period.Seconds(), 1}
}

func isNoScript(err error) bool { return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") }

// parse reads the script's answer: {allowed, remaining, retry_after,
// reset_after}, the last two as strings of seconds.
func parse(cmd *redis.Cmd) (allowed bool, retry time.Duration, err error) {
	v, err := cmd.Slice()
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: %w", err)
	}
	if len(v) != 4 {
		return false, 0, fmt.Errorf("ratelimit: script answered %d values, want 4", len(v))
	}
	n, ok := v[0].(int64)
	if !ok {
		return false, 0, fmt.Errorf("ratelimit: allowed is %T", v[0])
	}
	if n > 0 {
		return true, 0, nil
	}
	s, _ := v[2].(string)
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: retry_after %q: %w", s, err)
	}
	return false, time.Duration(secs * float64(time.Second)), nil
}

// failOpen counts and logs a check that could not run, at most once every
// 10 s so an outage does not flood the log.
func (l *Limiter) failOpen(ctx context.Context, err error) {
	total := l.opened.Add(1)
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last < int64(10*time.Second) || !l.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.log.WarnContext(ctx, "rate limit not checked: Redis failed; calls are let through", "err", err, "let_through_total", total)
}

// ipKey keys IPv4 addresses whole and IPv6 by their /64, which one
// subscriber usually holds entirely.
func ipKey(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// ParseLimit reads "RATE/PERIOD" or "RATE/PERIOD,burst=N", e.g. "30/m",
// "30/m,burst=10", "5/10s"; PERIOD is s, m, h or a Go duration. "off"
// (or "0") is no limit. Without burst, the burst is RATE.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		return Limit{}, nil
	}
	spec, opt, hasOpt := strings.Cut(s, ",")
	rate, per, ok := strings.Cut(spec, "/")
	if !ok {
		return Limit{}, fmt.Errorf("rate limit %q: want RATE/PERIOD[,burst=N], e.g. 30/m,burst=10, or off", s)
	}
	r, err := strconv.Atoi(strings.TrimSpace(rate))
	if err != nil || r <= 0 {
		return Limit{}, fmt.Errorf("rate limit %q: rate must be a positive integer", s)
	}
	var period time.Duration
	switch p := strings.TrimSpace(per); p {
	case "s":
		period = time.Second
	case "m":
		period = time.Minute
	case "h":
		period = time.Hour
	default:
		if period, err = time.ParseDuration(p); err != nil || period <= 0 {
			return Limit{}, fmt.Errorf("rate limit %q: period must be s, m, h or a positive duration", s)
		}
	}
	l := Limit{Rate: r, Period: period, Burst: r}
	if hasOpt {
		b, ok := strings.CutPrefix(strings.TrimSpace(opt), "burst=")
		n, err := strconv.Atoi(b)
		if !ok || err != nil || n <= 0 {
			return Limit{}, fmt.Errorf("rate limit %q: want burst=N with N positive after the comma", s)
		}
		l.Burst = n
	}
	return l, nil
}

// FormatLimit writes l as ParseLimit reads it.
func FormatLimit(l Limit) string {
	if l.IsZero() {
		return "off"
	}
	per := l.Period.String()
	switch l.Period {
	case time.Second:
		per = "s"
	case time.Minute:
		per = "m"
	case time.Hour:
		per = "h"
	}
	if l.Burst == l.Rate {
		return fmt.Sprintf("%d/%s", l.Rate, per)
	}
	return fmt.Sprintf("%d/%s,burst=%d", l.Rate, per, l.Burst)
}
