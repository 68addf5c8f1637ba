package redisconn

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/sony/gobreaker/v2"
)

// ErrRedisUnavailable is the error of a command not sent because Redis
// failed the commands before it (the breaker of Guard is open).
var ErrRedisUnavailable = errors.New("redis unavailable: not sent (circuit open after repeated failures)")

// Breaker settings. A Redis that hangs (a partition, a failover in
// progress) makes every command wait out its timeout: a cold request
// makes about six cache commands, so each tap at a door took 1.5 s
// longer with the 250 ms OpTimeout. After breakerTrip failures in a row
// the commands fail at once for breakerOpen, and the callers take their
// fallbacks (the access system, the rate limits' fail-open, the audit
// queue); then one command probes.
const (
	breakerTrip = 5
	breakerOpen = time.Second
)

// Guard adds a circuit breaker in front of every command rdb sends
// (pipelines included; not pub/sub). A command counts as failed when
// Redis did not answer it: no connection, or no answer in time. Redis's
// own error replies (nil, NOSCRIPT, WRONGTYPE...) are answers, and a
// caller's cancellation counts for nothing. On a Cluster one breaker
// guards all shards. onChange, when set, is told every state change.
func Guard(rdb redis.UniversalClient, onChange func(from, to string)) {
	st := gobreaker.Settings{
		Name:        "redis",
		MaxRequests: 1,
		Timeout:     breakerOpen,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= breakerTrip },
		IsExcluded:  func(err error) bool { return errors.Is(err, errCallerGone) },
	}
	if onChange != nil {
		st.OnStateChange = func(_ string, from, to gobreaker.State) { onChange(from.String(), to.String()) }
	}
	rdb.AddHook(&guard{cb: gobreaker.NewCircuitBreaker[struct{}](st)})
}

// errCallerGone marks a command whose caller gave up: not Redis's fault.
var errCallerGone = errors.New("caller gone")

type guard struct {
	cb *gobreaker.CircuitBreaker[struct{}]
}

func (g *guard) DialHook(next redis.DialHook) redis.DialHook { return next }

// guarded marks a context whose command is already inside the breaker:
// go-redis sends a new connection's set-up commands (HELLO...) through
// the same hooks, with the command's context, and counting them apart
// would deadlock the half-open probe (it is the one request allowed).
type guarded struct{}

func (g *guard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := g.run(ctx, func(ctx context.Context) error { return next(ctx, cmd) })
		if errors.Is(err, ErrRedisUnavailable) {
			cmd.SetErr(err)
		}
		return err
	}
}

func (g *guard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := g.run(ctx, func(ctx context.Context) error { return next(ctx, cmds) })
		if errors.Is(err, ErrRedisUnavailable) {
			for _, c := range cmds {
				c.SetErr(err)
			}
		}
		return err
	}
}

// run sends through the breaker and returns the command's own error, or
// ErrRedisUnavailable when it was not sent. A command already inside
// the breaker (see guarded) is sent as it is.
func (g *guard) run(ctx context.Context, send func(context.Context) error) error {
	if ctx.Value(guarded{}) != nil {
		return send(ctx)
	}
	ctx = context.WithValue(ctx, guarded{}, true)
	var sent error
	_, err := g.cb.Execute(func() (struct{}, error) {
		sent = send(ctx)
		switch {
		case sent == nil || answered(sent):
			return struct{}{}, nil
		case errors.Is(ctx.Err(), context.Canceled):
			// The caller gave up (go-redis may report it as a read
			// timeout): not Redis's fault.
			return struct{}{}, errCallerGone
		}
		return struct{}{}, sent
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return ErrRedisUnavailable
	}
	return sent
}

// answered reports whether err is a reply from Redis (so Redis is up):
// only error replies (redis.Nil among them) implement redis.Error.
func answered(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
