package setup

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/cloudkey/cloudkey/access/kisi"
	"github.com/cloudkey/cloudkey/access/kisisim"
	"github.com/cloudkey/cloudkey/access/openpath"
	"github.com/cloudkey/cloudkey/access/sim"
	"github.com/cloudkey/cloudkey/internal/property"
	"github.com/cloudkey/cloudkey/internal/telemetry"
	"github.com/cloudkey/cloudkey/roster/buildiumsim"
	"github.com/cloudkey/cloudkey/visitor/envoysim"
)

// Demo property (PRODUCT.md): the embedded defaults serve it.
const (
	demoPropertyID   = "harbor-view"
	demoPropertyName = "Harbor View"
	demoTimeZone     = "America/New_York"
	// The demo's second property, on the Kisi organisation "Foundry Lofts".
	demoSecondID   = "foundry-lofts"
	demoSecondName = "Foundry Lofts"
	// shorthandPropertyID names the property the CLOUDKEY_ACCESS_*
	// settings describe.
	shorthandPropertyID = "default"
)

// systemNames are the systems' names for people (messages and logs).
var systemNames = map[string]string{property.Openpath: "Openpath", property.Kisi: "Kisi"}

// accessSystems are the properties the configuration names and the
// embedded simulators when they serve the demo.
type accessSystems struct {
	// file are the properties the properties file (or the
	// CLOUDKEY_ACCESS_* shorthand, or the demo) names, the default first:
	// applied to Redis at start (applyFile).
	file    []property.Property
	sim     *sim.Server // the embedded Openpath simulator, or nil
	kisiSim *kisisim.Server
	// envoySim is the embedded Envoy simulator of the demo, or nil.
	envoySim *envoysim.Server
	// buildiumSim is the embedded Buildium simulator the demo's roster
	// pulls read; nil outside the demo.
	buildiumSim *buildiumsim.Server
	// shared are the HTTP clients every connection of a system shares.
	shared sharedHTTP
	close  func() // the shared transports' idle connections, then the simulators
}

// served reads the properties to serve: the properties file's, or the
// CLOUDKEY_ACCESS_* shorthand for one property with one Openpath
// connection; ok is false when neither is given (the demo is served). The
// default property comes first.
func served(cfg Config) (ps []property.Property, ok bool, err error) {
	switch {
	case cfg.PropertiesFile != "":
		f, err := property.Load(cfg.PropertiesFile)
		if err != nil {
			return nil, false, err
		}
		def := f.Default()
		ps = append(ps, def)
		for _, p := range f.Properties {
			if p.ID != def.ID {
				ps = append(ps, p)
			}
		}
		return ps, true, nil
	case cfg.AccessURL != "":
		return []property.Property{{ID: shorthandPropertyID, Name: shorthandPropertyID, Access: []property.Connection{{
			System: property.Openpath, Name: property.Openpath, URL: cfg.AccessURL,
			Org: cfg.AccessOrg, Email: cfg.AccessEmail, Secret: cfg.AccessPassword,
		}}}}, true, nil
	}
	return nil, false, nil
}

// startAccess reads the properties the configuration names, or starts
// the embedded simulators with the demo properties when nothing is
// configured, and makes the HTTP clients every connection shares. The
// properties are served from Redis (startRegistry). acc.close is set,
// maybe partial, with an error too.
func startAccess(cfg Config, log *slog.Logger) (acc accessSystems, err error) {
	var closers []func()
	acc.close = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	ps, ok, err := served(cfg)
	if err != nil {
		return acc, err
	}
	if !ok {
		if ps, closers, err = acc.startDemo(cfg, log); err != nil {
			return acc, err
		}
	}
	acc.file = ps
	// One HTTP transport per system, shared by every connection of it:
	// a portfolio's connections call the same host (api.openpath.com,
	// api.kisi.io), so they share one pool of warm connections instead of
	// keeping one per property; breakers and in-flight bounds stay per
	// connection.
	acc.shared = sharedHTTP{openpath: openpath.NewHTTPClient(), kisi: kisi.NewHTTPClient()}
	// Closed before the simulators (closers run last first): a wrapped
	// transport may not pass CloseIdleConnections on from the clients.
	closers = append(closers, acc.shared.openpath.CloseIdleConnections, acc.shared.kisi.CloseIdleConnections)
	return acc, nil
}

// startDemo starts the embedded simulators and returns the demo property
// on them.
func (acc *accessSystems) startDemo(cfg Config, log *slog.Logger) ([]property.Property, []func(), error) {
	var closers []func()
	seed := sim.DemoSeed()
	if cfg.SimSeed != nil {
		seed = *cfg.SimSeed
	}
	s, err := sim.Start(seed)
	if err != nil {
		return nil, closers, fmt.Errorf("embedded simulator: %w", err)
	}
	acc.sim = s
	closers = append(closers, func() { s.Close() })
	log.Warn("CLOUDKEY_ACCESS_URL and CLOUDKEY_PROPERTIES are unset: using the embedded access-system simulators", "openpath", s.URL)
	p := property.Property{ID: demoPropertyID, Name: demoPropertyName, TimeZone: demoTimeZone, Default: true,
		Access: []property.Connection{{
			System: property.Openpath, Name: property.Openpath, URL: s.URL,
			Org: strconv.Itoa(seed.Org.ID), Email: seed.ServiceAccount.Email, Secret: seed.ServiceAccount.Password,
		}}}
	if cfg.SimSeed == nil && !cfg.DemoWithoutEnvoy {
		closeEnvoy, err := acc.startDemoEnvoy(&p, envoySecretOf(cfg), log)
		if err != nil {
			return nil, closers, err
		}
		closers = append(closers, closeEnvoy)
	}
	kseed := cfg.KisiSimSeed
	if kseed == nil && cfg.SimSeed == nil {
		demo := kisisim.DemoSeed()
		kseed = &demo
	}
	if kseed == nil || len(kseed.Orgs) == 0 {
		return []property.Property{p}, closers, nil
	}
	ks, err := kisisim.Start(*kseed)
	if err != nil {
		return nil, closers, fmt.Errorf("embedded Kisi simulator: %w", err)
	}
	acc.kisiSim = ks
	closers = append(closers, func() { ks.Close() })
	// The demo's Kisi organisation for this property is the first
	// ("Harbor View Amenities"); its key sees only its own locks.
	p.Access = append(p.Access, property.Connection{System: property.Kisi, Name: property.Kisi, URL: ks.URL, Secret: kseed.Orgs[0].APIKey})
	log.Warn("embedded Kisi simulator", "kisi", ks.URL, "organisation", kseed.Orgs[0].Name)
	ps := []property.Property{p}
	if cfg.KisiSimSeed == nil && len(kseed.Orgs) > 1 {
		// The demo's second property, on Kisi only (PRODUCT.md).
		ps = append(ps, property.Property{ID: demoSecondID, Name: demoSecondName, TimeZone: demoTimeZone,
			Access: []property.Connection{{System: property.Kisi, Name: property.Kisi, URL: ks.URL, Secret: kseed.Orgs[1].APIKey}}})
	}
	if cfg.KisiSimSeed == nil && cfg.DemoPMS {
		bs, err := acc.startDemoPMS(ps, log)
		if err != nil {
			return nil, closers, err
		}
		closers = append(closers, func() { bs.Close() })
	}
	return ps, closers, nil
}

// newOpenpath is the client of one Openpath connection, named label in
// errors, logs and the breaker gauge's count; its request metrics are
// labelled by system alone (bounded however many properties).
func newOpenpath(cfg Config, c property.Connection, label string, hc *http.Client, log *slog.Logger, metrics *telemetry.Metrics, tracing *telemetry.Tracing) (*openpath.Client, error) {
	opCfg := openpath.Config{BaseURL: c.URL, Email: c.Email, Password: c.Secret, OrgID: c.Org, HTTPClient: hc,
		MaxInFlight: cfg.AccessMaxInFlight, BreakerOpenTimeout: cfg.AccessBreakerOpen, Name: label,
		WrapTransport: telemetry.WrapTransport(metrics, tracing, property.Openpath)}
	opCfg.OnBreakerChange = func(conn, from, to string) {
		metrics.SetBreakerState(property.Openpath, conn, to)
		log.Warn("access system circuit breaker changed state", "connection", conn, "from", from, "to", to)
	}
	client, err := openpath.New(opCfg)
	if err != nil {
		return nil, err
	}
	metrics.SetBreakerState(property.Openpath, label, client.BreakerState()) // the gauge starts known
	return client, nil
}

// newKisi is the client of one Kisi connection, named label as
// newOpenpath's, its per-user logins kept (encrypted) in logins.
func newKisi(cfg Config, c property.Connection, label string, shared *http.Client, logins kisi.LoginStore, log *slog.Logger, metrics *telemetry.Metrics, tracing *telemetry.Tracing) (*kisi.Client, error) {
	hc := *shared // the shared transport, wrapped for this client
	hc.Transport = telemetry.WrapTransport(metrics, tracing, property.Kisi)(shared.Transport)
	client, err := kisi.New(kisi.Config{
		BaseURL: c.URL, APIKey: c.Secret, PlaceIDs: c.Places, Logins: logins, HTTPClient: &hc,
		Logger: log, Name: label, MaxInFlight: cfg.AccessMaxInFlight, BreakerOpenTimeout: cfg.AccessBreakerOpen, OrgRate: cfg.KisiOrgRate,
		OnBreakerChange: func(conn, from, to string) {
			metrics.SetBreakerState(property.Kisi, conn, to)
			log.Warn("access system circuit breaker changed state", "connection", conn, "from", from, "to", to)
		},
	})
	if err != nil {
		return nil, err
	}
	metrics.SetBreakerState(property.Kisi, label, client.BreakerState())
	return client, nil
}

// sharedHTTP are the HTTP clients whose transports every connection of a
// system shares.
type sharedHTTP struct{ openpath, kisi *http.Client }
