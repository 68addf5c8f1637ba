package visitor

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cloudkey/cloudkey/access"
	"github.com/cloudkey/cloudkey/internal/notify"
	"github.com/cloudkey/cloudkey/unlock"
)

// Config configures a Service. Store, Access, Notifier and BaseURL are
// required; zero durations take the defaults named.
//
// Each Envoy location belongs to one property: its settings name it (set
// by the first UpdateSettings; settings saved before properties name
// none and are DefaultProperty's). Passes and Protect at a location act
// through its property's access system, resolved by Access at each call.
type Config struct {
	// Store holds settings, passes, event marks, decisions and scheduled
	// suspensions (visitorredis.Store keeps them in Redis).
	Store Store
	// Access resolves a property's access system for guest passes and
	// Protect (its Openpath connection, acting as the integration's
	// service account); ok is false when the property has none. It is
	// asked at every use, never kept: properties may be added, changed or
	// removed while the service runs. OneSystem serves one system for
	// every property.
	Access func(property string) (sys access.GuestSystem, ok bool)
	// DefaultProperty is the property of the locations whose settings name
	// none, and the one the methods act on when given "".
	DefaultProperty string
	// PropertyName is a property's name, shown on the guest page and in
	// messages when the visit's building has no name of its own (Envoy's
	// location name, or the tenant building's for tile registrations);
	// nil or "" falls back to "the building".
	PropertyName func(property string) string
	// Envoy is the Envoy connection of property's location, for tenant
	// tile registrations (tile_envoy.go); ok is false when the location
	// is not connected, and the tile then issues passes itself. Nil: no
	// Envoy connection anywhere. Asked at every use, like Access.
	Envoy func(property, location string) (EnvoyInvites, bool)
	// Notifier delivers guest links.
	Notifier notify.Notifier
	// BaseURL is where guests open their pass: links are
	// BaseURL + "/g/" + token, e.g. "https://cloudkey.example.com".
	BaseURL string
	// Audit records every guest unlock attempt; nil discards them.
	Audit unlock.Auditor
	// Now is the clock; nil means time.Now. Tests set it to check window
	// edges to the second.
	Now func() time.Time
	// Retention is how long ended passes, tombstones and decisions are
	// kept after a pass's window (or after the event, when there is no
	// pass), so that late or repeated events still find them. Default 30
	// days.
	Retention time.Duration
	// EventTTL is how long a handled event is remembered to recognise a
	// redelivery. Default 7 days.
	EventTTL time.Duration
	// AccessTimeout bounds each access-system call made while handling an
	// event or running a scheduled job. Default 10 s.
	AccessTimeout time.Duration
	// UnlockTimeout bounds a guest unlock (issuing the access system's
	// unlock token if needed, then using it). Default 5 s.
	UnlockTimeout time.Duration
	// NotifyTimeout bounds the delivery of a guest link. Default 15 s.
	NotifyTimeout time.Duration
	// SchedulerInterval is how often RunScheduler looks for due
	// suspensions. Default 1 s.
	SchedulerInterval time.Duration
	Logger            *slog.Logger
}

func (c *Config) defaults() {
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Audit == nil {
		c.Audit = unlock.Discard{}
	}
	if c.Retention <= 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.EventTTL <= 0 {
		c.EventTTL = 7 * 24 * time.Hour
	}
	if c.AccessTimeout <= 0 {
		c.AccessTimeout = 10 * time.Second
	}
	if c.UnlockTimeout <= 0 {
		c.UnlockTimeout = 5 * time.Second
	}
	if c.NotifyTimeout <= 0 {
		c.NotifyTimeout = 15 * time.Second
	}
	if c.SchedulerInterval <= 0 {
		c.SchedulerInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Service is the visitor domain: settings, Envoy events, guest passes,
// guest unlock and Protect. Everything it knows is in its Store, so any number
// of replicas may share one store and a restarted one carries on. It is
// safe for concurrent use.
type Service struct {
	cfg     Config
	store   Store
	access  func(property string) (access.GuestSystem, bool)
	notify  notify.Notifier
	audit   unlock.Auditor
	now     func() time.Time
	log     *slog.Logger
	baseURL string

	// backfill indexes, once per process, the entries of settings saved
	// before the entry index existed (see backfillEntryIndex).
	backfill struct {
		sync.Mutex
		done bool
	}
}

// OneSystem is a Config.Access that serves sys for every property: a
// deployment of one property, or tests.
func OneSystem(sys access.GuestSystem) func(string) (access.GuestSystem, bool) {
	return func(string) (access.GuestSystem, bool) { return sys, true }
}

// ErrNoGuestAccess: the property has no access system that can issue
// guest passes (an Openpath connection).
var ErrNoGuestAccess = errors.New("guest passes need an Openpath connection, which this property does not have")

// ErrOtherProperty: the location belongs to another property. Which one
// is never said.
var ErrOtherProperty = errors.New("this location belongs to another property")

// property is p, or the default property for "".
func (s *Service) property(p string) string {
	if p == "" {
		return s.cfg.DefaultProperty
	}
	return p
}

// accessFor is property's access system ("": the default property's), or
// ErrNoGuestAccess.
func (s *Service) accessFor(property string) (access.GuestSystem, error) {
	p := s.property(property)
	if sys, ok := s.access(p); ok && sys != nil {
		return sys, nil
	}
	return nil, fmt.Errorf("visitor: property %s: %w", p, ErrNoGuestAccess)
}

// New returns a Service for cfg. It does not contact the store or the access
// system.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("visitor: a store is required")
	case cfg.Access == nil:
		return nil, errors.New("visitor: an access system is required")
	case cfg.Notifier == nil:
		return nil, errors.New("visitor: a notifier is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("visitor: base URL %q is not an absolute http(s) URL without query", cfg.BaseURL)
	}
	cfg.defaults()
	return &Service{
		cfg:     cfg,
		store:   cfg.Store,
		access:  cfg.Access,
		notify:  cfg.Notifier,
		audit:   cfg.Audit,
		now:     cfg.Now,
		log:     cfg.Logger,
		baseURL: strings.TrimRight(cfg.BaseURL, "/"),
	}, nil
}
