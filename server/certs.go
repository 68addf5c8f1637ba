package server

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// certReloadEvery bounds how often the certificate files are looked at:
// at most one pair of stats per interval, on a handshake, never per
// request.
const certReloadEvery = 10 * time.Second

// certReloader serves the certificate in certFile/keyFile and loads them
// again when either file's modification time or size changes, so an
// operator (or cert-manager, certbot) can rotate the certificate without
// a restart. A pair that does not load (half written, mismatched) is
// logged and the previous certificate kept.
type certReloader struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger
	now               func() time.Time

	cert      atomic.Pointer[tls.Certificate]
	nextCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // one reload at a time; handshakes never wait for it
	stamp     [2]fileStamp
}

type fileStamp struct{ mod, size int64 }

// newCertReloader loads the pair once; an error here stops the start.
func newCertReloader(certFile, keyFile string, every time.Duration, log *slog.Logger) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("TLS needs both a certificate and a key file (got cert %q, key %q)", certFile, keyFile)
	}
	c := &certReloader{certFile: certFile, keyFile: keyFile, every: every, log: log, now: time.Now}
	stamp, err := c.stamps()
	if err != nil {
		return nil, err
	}
	if err := c.load(stamp); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certReloader) stamps() ([2]fileStamp, error) {
	var out [2]fileStamp
	for i, name := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return out, fmt.Errorf("TLS: %w", err)
		}
		out[i] = fileStamp{fi.ModTime().UnixNano(), fi.Size()}
	}
	return out, nil
}

func (c *certReloader) load(stamp [2]fileStamp) error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("TLS: load %s and %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert.Store(&cert)
	c.stamp = stamp
	c.nextCheck.Store(c.now().Add(c.every).UnixNano())
	return nil
}

// getCertificate is tls.Config.GetCertificate.
func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c.now().UnixNano() >= c.nextCheck.Load() && c.mu.TryLock() {
		c.maybeReload()
		c.mu.Unlock()
	}
	return c.cert.Load(), nil
}

func (c *certReloader) maybeReload() {
	c.nextCheck.Store(c.now().Add(c.every).UnixNano())
	stamp, err := c.stamps()
	if err != nil {
		c.log.Error("TLS certificate not reloaded; serving the previous one", "err", err)
		return
	}
	if stamp == c.stamp {
		return
	}
	if err := c.load(stamp); err != nil {
		// Retried at the next check: the files may be half written.
		c.log.Error("TLS certificate not reloaded; serving the previous one", "err", err)
		return
	}
	c.log.Info("TLS certificate reloaded", "cert", c.certFile)
}

// tlsConfig is the servers' TLS configuration: TLS 1.2 at least, the
// certificate from the reloader.
func (c *certReloader) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.getCertificate}
}
