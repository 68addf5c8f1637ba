package setup

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/visitor"
	"github.com/cloudkey/cloudkey/visitor/envoyapi"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
)

// envoyHTTPTimeout bounds one Envoy API request; the visitor service
// bounds each try too, and retries.
const envoyHTTPTimeout = 10 * time.Second

// newEnvoy is the client of a property's Envoy connection (nil when it
// has none). It logs in lazily, at its first call.
func newEnvoy(p property.Property, log *slog.Logger) (*envoyapi.Client, error) {
	if p.Envoy == nil {
		return nil, nil
	}
	c, err := envoyapi.New(envoyapi.Config{
		BaseURL: p.Envoy.BaseURL(), ClientID: p.Envoy.ClientID, ClientSecret: p.Envoy.Secret,
		HTTPClient: &http.Client{Timeout: envoyHTTPTimeout}, Logger: log.With("property", p.ID),
	})
	if err != nil {
		return nil, fmt.Errorf("property %s: envoy: %w", p.ID, err)
	}
	return c, nil
}

// envoyFor is the Envoy connection serving property's location
// (visitor.Config.Envoy); ok is false when the property has none there.
// It reads the served set at each call, like guestAccess.
func (r *registry) envoyFor(property, location string) (visitor.EnvoyInvites, bool) {
	lp := r.lookup(property)
	if lp == nil || lp.envoy == nil || !lp.prop.Envoy.Serves(location) {
		return nil, false
	}
	return lp.envoy, true
}

// startDemoEnvoy starts the embedded Envoy simulator and connects the
// demo property's Envoy location to it, so that a tile registration
// there goes through Envoy and back (the simulator's webhooks, signed
// with secret, reach cloudkey once Start knows its HTTP address).
func (acc *accessSystems) startDemoEnvoy(p *property.Property, secret string, log *slog.Logger) (func(), error) {
	seed := envoysim.DemoSeed()
	seed.WebhookSecret = secret
	es, err := envoysim.Start(seed)
	if err != nil {
		return nil, fmt.Errorf("embedded Envoy simulator: %w", err)
	}
	acc.envoySim = es
	p.Envoy = &property.Envoy{URL: es.URL, ClientID: seed.ClientID, Secret: seed.ClientSecret, Locations: []string{envoysim.DemoLocationID}}
	log.Warn("embedded Envoy simulator: tile registrations at the demo location go through it", "envoy", es.URL, "location", envoysim.DemoLocationID)
	return func() { es.Close() }, nil
}

// loopbackURL is http:// and addr, a bound address, reached from this
// process: an unspecified host (all interfaces) is reached on 127.0.0.1.
func loopbackURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
