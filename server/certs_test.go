package server

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudkey/cloudkey/internal/testcert"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and
// localhost, named cn, to dir/cert.pem and dir/key.pem (replacing them),
// and returns the paths and the certificate.
func writeTestCert(t testing.TB, dir, cn string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	c := testcert.New(t, cn)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, c.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, c.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, c.X509
}

// touch gives both files a modification time distinct from any earlier
// one, so a rewrite within the file system's time granularity is seen.
func touch(t *testing.T, at time.Time, files ...string) {
	t.Helper()
	for _, f := range files {
		if err := os.Chtimes(f, at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// servedCN completes a real TLS handshake with the reloader's config and
// returns the common name of the certificate the server presented.
func servedCN(t *testing.T, c *certReloader) string {
	t.Helper()
	// Raw pipe ends are closed, not the TLS ones: a close_notify on a
	// synchronous pipe nobody reads would wait for its write timeout.
	srv, cli := net.Pipe()
	defer cli.Close()
	defer srv.Close()
	done := make(chan error, 1)
	go func() { done <- tls.Server(srv, c.tlsConfig()).Handshake() }()
	conn := tls.Client(cli, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}) // the test reads what is presented
	if err := conn.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return cn
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeTestCert(t, dir, "first")
	base := time.Now().Add(-time.Hour)
	touch(t, base, certFile, keyFile)
	c, err := newCertReloader(certFile, keyFile, 10*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c.now = func() time.Time { return now }
	c.nextCheck.Store(now.Add(10 * time.Second).UnixNano())

	steps := []struct {
		name    string
		change  func()
		advance time.Duration
		want    string
	}{
		{"serves the loaded pair", nil, 0, "first"},
		{"rotated, but not yet looked at", func() {
			writeTestCert(t, dir, "second")
			touch(t, base.Add(time.Minute), certFile, keyFile)
		}, time.Second, "first"},
		{"rotation seen after the interval", nil, 10 * time.Second, "second"},
		{"a half-written key keeps the previous pair", func() {
			if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\ntrunc"), 0o600); err != nil {
				t.Fatal(err)
			}
			touch(t, base.Add(2*time.Minute), keyFile)
		}, 11 * time.Second, "second"},
		{"removed files keep the previous pair", func() {
			os.Remove(certFile)
		}, 11 * time.Second, "second"},
		{"a complete pair again is loaded", func() {
			writeTestCert(t, dir, "third")
			touch(t, base.Add(3*time.Minute), certFile, keyFile)
		}, 11 * time.Second, "third"},
	}
	for _, st := range steps {
		if st.change != nil {
			st.change()
		}
		now = now.Add(st.advance)
		if got := servedCN(t, c); got != st.want {
			t.Fatalf("%s: served %q, want %q", st.name, got, st.want)
		}
	}
}

func TestNewCertReloaderRefusesBadPairs(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeTestCert(t, dir, "a")
	other := t.TempDir()
	_, otherKey, _ := writeTestCert(t, other, "b")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct{ name, cert, key string }{
		{"no key", certFile, ""},
		{"no cert", "", keyFile},
		{"missing file", filepath.Join(dir, "nope.pem"), keyFile},
		{"key of another certificate", certFile, otherKey},
		{"key as certificate", keyFile, keyFile},
	} {
		if _, err := newCertReloader(tt.cert, tt.key, time.Second, log); err == nil {
			t.Errorf("%s: newCertReloader accepted it", tt.name)
		}
	}
}
