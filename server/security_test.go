package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/cloudkey/cloudkey/access/sim"
	pb "github.com/cloudkey/cloudkey/gen/cloudkey/v1"
	"github.com/cloudkey/cloudkey/server"
	"github.com/cloudkey/cloudkey/visitor/envoy"
)

// send makes one request and returns the answer with its body read.
func send(t *testing.T, c *http.Client, method, url string, body io.Reader, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const tileFramedCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors https://*.hqo.com"

func TestSecurityHeaders(t *testing.T) {
	const (
		apiCSP   = "default-src 'none'; frame-ancestors 'none'"
		guestCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
	)
	plain := newStack(t, stackOpts{})
	framed := newStack(t, stackOpts{tileAncestors: "https://*.hqo.com"})
	// Every answer carries these, whatever its status.
	common := map[string]string{
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"Strict-Transport-Security": "", // plaintext: no HSTS
	}
	tests := []struct {
		name         string
		st           *stack
		method, path string
		wantCode     int
		want         map[string]string // "" means absent
	}{
		{"API", plain, "GET", "/v1/me", 401, map[string]string{"Cache-Control": "no-store", "Content-Security-Policy": apiCSP, "X-Frame-Options": "DENY"}},
		{"unknown API path", plain, "GET", "/v1/nothing", 404, map[string]string{"Cache-Control": "no-store", "Content-Security-Policy": apiCSP}},
		{"healthz", plain, "GET", "/healthz", 200, map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY"}},
		{"webhook", plain, "POST", "/webhooks/envoy", 401, map[string]string{"Cache-Control": "no-store", "Content-Security-Policy": apiCSP}},
		{"guest page", plain, "GET", "/g/" + strings.Repeat("x", 43), 200, map[string]string{"Cache-Control": "no-store", "Content-Security-Policy": guestCSP, "X-Frame-Options": "DENY"}},
		{"tile, framing off", plain, "GET", "/tile?building=hq", 200, map[string]string{"Cache-Control": "no-store", "Content-Security-Policy": guestCSP, "X-Frame-Options": "DENY"}},
		{"tile, framed by HqO", framed, "GET", "/tile?building=hq", 200, map[string]string{"Cache-Control": "no-store", "Content-Security-Policy": tileFramedCSP, "X-Frame-Options": ""}},
		{"guest page not framed with tile framing on", framed, "GET", "/g/" + strings.Repeat("x", 43), 200, map[string]string{"Content-Security-Policy": guestCSP, "X-Frame-Options": "DENY"}},
		{"static may be cached", plain, "GET", "/static/guest.js", 200, map[string]string{"Cache-Control": "public, max-age=300", "X-Frame-Options": "DENY"}},
		{"not found", plain, "GET", "/nothing", 404, map[string]string{"Cache-Control": "no-store", "Content-Security-Policy": apiCSP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := send(t, http.DefaultClient, tt.method, tt.st.http+tt.path, nil)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.wantCode)
			}
			for _, want := range []map[string]string{common, tt.want} {
				for k, v := range want {
					if got := resp.Header.Values(k); (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
						t.Errorf("%s: %s = %q, want %q", tt.path, k, got, v)
					}
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	const app = "https://app.example.com"
	open := newStack(t, stackOpts{cors: []string{app, "https://other.example.com"}})
	closed := newStack(t, stackOpts{})
	tests := []struct {
		name         string
		st           *stack
		method, path string
		headers      []string
		wantCode     int
		want         map[string]string // "" means absent
	}{
		{"allowed origin", open, "GET", "/v1/me", []string{"Origin", app}, 200,
			map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Credentials": "", "Vary": "Origin"}},
		{"origin not listed", open, "GET", "/v1/me", []string{"Origin", "https://evil.example"}, 200,
			map[string]string{"Access-Control-Allow-Origin": ""}},
		{"origin match is exact", open, "GET", "/v1/me", []string{"Origin", "https://app.example.com.evil.example"}, 200,
			map[string]string{"Access-Control-Allow-Origin": ""}},
		{"preflight", open, "OPTIONS", "/v1/me/favorites/101", []string{"Origin", app, "Access-Control-Request-Method", "PUT",
			"Access-Control-Request-Headers", "authorization,content-type,x-request-id"}, 204, // sorted, as browsers send them
			map[string]string{"Access-Control-Allow-Origin": app, "Access-Control-Allow-Methods": "PUT",
				"Access-Control-Allow-Headers": "authorization,content-type,x-request-id", "Access-Control-Max-Age": "7200",
				"Access-Control-Allow-Credentials": ""}},
		{"preflight for admin headers", open, "OPTIONS", "/v1/admin/contacts", []string{"Origin", app, "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "x-auth-apikey,x-auth-scheme"}, 204,
			map[string]string{"Access-Control-Allow-Origin": app}},
		{"preflight, origin not listed", open, "OPTIONS", "/v1/me", []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "GET"}, 204,
			map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{"preflight, method not allowed", open, "OPTIONS", "/v1/me", []string{"Origin", app, "Access-Control-Request-Method", "PATCH"}, 204,
			map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{"preflight, header not allowed", open, "OPTIONS", "/v1/me", []string{"Origin", app, "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "authorization,x-evil"}, 204,
			map[string]string{"Access-Control-Allow-Origin": ""}},
		{"no origins configured", closed, "GET", "/v1/me", []string{"Origin", app}, 200,
			map[string]string{"Access-Control-Allow-Origin": ""}},
		{"no origins configured: no preflight", closed, "OPTIONS", "/v1/me", []string{"Origin", app, "Access-Control-Request-Method", "GET"}, 501,
			map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""}},
		{"pages are not CORS resources", open, "GET", "/healthz", []string{"Origin", app}, 200,
			map[string]string{"Access-Control-Allow-Origin": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.headers
			if tt.method != "OPTIONS" && strings.HasPrefix(tt.path, "/v1/") {
				h = append(h, "Authorization", "Bearer "+tt.st.token(t, "alice@example.com"))
			}
			resp, body := send(t, http.DefaultClient, tt.method, tt.st.http+tt.path, nil, h...)
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, resp.StatusCode, body, tt.wantCode)
			}
			for k, v := range tt.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// chunked hides a body's length, so the server finds the limit by reading.
type chunked struct{ io.Reader }

func TestBodyLimits(t *testing.T) {
	st := newStack(t, stackOpts{})
	key := st.adminKey(t, "1")
	admin := []string{"x-auth-scheme", "api-token", "x-auth-apikey", key}
	// Valid settings with the padding inside the object, so a decoder must
	// read past the limit before it has a value.
	padded := strings.Replace(goodSettings, "{", "{"+strings.Repeat(" ", 64<<10), 1)
	unlock := `{"entryIds":["101"` + strings.Repeat(` `, 64<<10) + `]}`
	csvAt := func(size int) string {
		// Few rows, a large ignored column: the file is at the byte limit
		// without nearing the row limit.
		const header = "Full Name,Email,Phone,Notes\n"
		var b strings.Builder
		b.WriteString(header)
		rows := 8
		for i := range rows {
			row := fmt.Sprintf("Tenant %d,tenant%d@acme.example,,", i, i)
			fill := (size-len(header))/rows - len(row) - 1
			if i == rows-1 {
				fill = size - b.Len() - len(row) - 1
			}
			b.WriteString(row + strings.Repeat("x", fill) + "\n")
		}
		if b.Len() != size {
			t.Fatalf("CSV is %d bytes, want %d", b.Len(), size)
		}
		return b.String()
	}
	const maxImport = 5 << 20
	tests := []struct {
		name, method, path string
		body               string
		hide               bool // chunked: no Content-Length
		headers            []string
		wantCode           int
		wantIn             string
	}{
		{"oversize settings", "PUT", "/v1/admin/locations/" + location + "/visitor-settings", padded, false, admin, 413, "larger than 65536 bytes"},
		{"oversize settings, chunked", "PUT", "/v1/admin/locations/" + location + "/visitor-settings", padded, true, admin, 413, `"field":"body"`},
		{"nothing saved", "GET", "/v1/admin/locations/" + location + "/visitor-settings", "", false, admin, 404, "NO_SETTINGS"},
		{"oversize unlock", "POST", "/v1/me/unlock", unlock, false, nil, 413, "65536"},
		{"oversize unlock, chunked", "POST", "/v1/me/unlock", unlock, true, nil, 413, "65536"},
		{"CSV over its limit", "POST", "/v1/admin/contacts:import", csvAt(maxImport + 1), false, append(admin, "Content-Type", "text/csv"), 413, "larger than 5242880 bytes"},
		{"CSV over its limit, chunked", "POST", "/v1/admin/contacts:import", csvAt(maxImport + 1), true, append(admin, "Content-Type", "text/csv"), 413, "5242880"},
		{"still no contacts", "GET", "/v1/admin/contacts", "", false, admin, 200, `"total":0`},
		{"CSV at its limit", "POST", "/v1/admin/contacts:import", csvAt(maxImport), false, append(admin, "Content-Type", "text/csv"), 200, `"created":8`},
		{"CSV at its limit, chunked", "POST", "/v1/admin/contacts:import", csvAt(maxImport), true, append(admin, "Content-Type", "text/csv"), 200, `"unchanged":8`},
		{"webhook over its limit", "POST", "/webhooks/envoy", strings.Repeat(" ", envoy.MaxBodyBytes+1), false, nil, 413, "1048576"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.headers
			if h == nil {
				h = []string{"Authorization", "Bearer " + st.token(t, "alice@example.com")}
			}
			var body io.Reader = strings.NewReader(tt.body)
			if tt.hide {
				body = chunked{body}
			}
			resp, got := send(t, http.DefaultClient, tt.method, st.http+tt.path, body, h...)
			if resp.StatusCode != tt.wantCode || !strings.Contains(strings.ReplaceAll(got, " ", ""), strings.ReplaceAll(tt.wantIn, " ", "")) {
				t.Errorf("%s %s = %d %.300s; want %d containing %q", tt.method, tt.path, resp.StatusCode, got, tt.wantCode, tt.wantIn)
			}
			if tt.wantCode == 413 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Errorf("413 Content-Type = %q, want JSON", resp.Header.Get("Content-Type"))
			}
		})
	}
	if n := st.sim.Calls(sim.OpUnlock); n != 0 {
		t.Errorf("oversize unlocks made %d upstream calls", n)
	}

	// gRPC takes a CSV at the limit too (its message limit is sized for it).
	conn, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), admin...)
	rep, err := pb.NewAdminServiceClient(conn).ImportContacts(ctx, &pb.ImportContactsRequest{
		Csv: &httpbody.HttpBody{ContentType: "text/csv", Data: []byte(csvAt(maxImport))},
	})
	if err != nil || rep.Unchanged != 8 {
		t.Errorf("gRPC ImportContacts at the limit = %v, %v", rep, err)
	}
}

func TestTLS(t *testing.T) {
	certFile, keyFile, cert := server.WriteTestCert(t, t.TempDir(), "cloudkey test")
	st := newStack(t, stackOpts{tlsCert: certFile, tlsKey: keyFile})
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	httpsAddr := "https://" + st.app.Server.HTTPAddr()
	plainHTTP := "http://" + st.app.Server.HTTPAddr()

	// gRPC over TLS, trusting the test certificate.
	conn, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewResidentServiceClient(conn).GetMe(st.as(t, "alice@example.com"), &pb.GetMeRequest{}); err != nil {
		t.Errorf("GetMe over TLS: %v", err)
	}
	// Plaintext gRPC is refused.
	plain, err := grpc.NewClient(st.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := pb.NewResidentServiceClient(plain).GetMe(st.as(t, "alice@example.com"), &pb.GetMeRequest{}); err == nil {
		t.Error("plaintext gRPC call succeeded against a TLS listener")
	}

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	httpsClient := &http.Client{Transport: tr}
	resp, body := send(t, httpsClient, "GET", httpsAddr+"/v1/me", nil, "Authorization", "Bearer "+st.token(t, "alice@example.com"))
	if resp.StatusCode != 200 || !strings.Contains(body, `"connected":true`) || resp.ProtoMajor != 2 {
		t.Errorf("HTTPS /v1/me = %d %s %s", resp.StatusCode, resp.Proto, body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000; includeSubDomains" {
		t.Errorf("Strict-Transport-Security = %q", got)
	}
	// Plaintext HTTP gets no answer from the API.
	resp, _ = send(t, http.DefaultClient, "GET", plainHTTP+"/healthz", nil)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plaintext HTTP to the TLS listener = %d, want 400", resp.StatusCode)
	}
	// TLS below 1.2 is refused.
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(httpsAddr + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	// A client that does not trust the certificate fails the handshake.
	if _, err := (&http.Client{Transport: &http.Transport{}}).Get(httpsAddr + "/healthz"); err == nil {
		t.Error("a client without the test certificate trusted it")
	}
}
