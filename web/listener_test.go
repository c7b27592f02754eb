package web_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gogo/protobuf/proto"
	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	"golang.org/x/crypto/bcrypt"

	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/internal/fakeclock"
)

// testCA is a certificate authority made for one test, with the server's
// and a client's certificates it signed.
type testCA struct {
	pool   *x509.CertPool
	client tls.Certificate
	dir    string // ca.crt, server.crt, server.key
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	pemOf := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("EC PRIVATE KEY", b)
	}
	srvDER, srvKey := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	cliDER, cliKey := leaf(3, "client", x509.ExtKeyUsageClientAuth)
	for name, b := range map[string][]byte{"ca.crt": pemOf("CERTIFICATE", caDER), "server.crt": pemOf("CERTIFICATE", srvDER), "server.key": keyPEM(srvKey)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	client, err := tls.X509KeyPair(pemOf("CERTIFICATE", cliDER), keyPEM(cliKey))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testCA{pool: pool, client: client, dir: dir}
}

// client is an HTTPS client that trusts the CA, with its client
// certificate or without.
func (ca *testCA) httpClient(withCert bool) *http.Client {
	cfg := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
	if withCert {
		cfg.Certificates = []tls.Certificate{ca.client}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 20 * time.Second}
}

func bcryptHash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// Secrets of the listener tests.
const (
	writeSecret = "write-secret-0123456789a"
	pingKey     = "ping-key-0123456789abcdef"
	basicUser   = "prom"
	basicPass   = "basic-pass-0123456789"
)

// listenerConfig is the harness's configuration with a write token
// restricted to job="api" and a heartbeat with a ping key.
const listenerConfig = `files: [rules.yaml]
data_dir: data
notifiers:
  - {name: slack, console: {}}
escalation_policies:
  - name: dba
    levels: [{notify: [slack]}]
defaults: {escalate: dba}
heartbeats:
  - {name: nightly-backup, period: 24h, grace: 2h, key_env: T_PING}
web:
  tokens:
    - {name: alice, role: admin, token_env: T_ADMIN}
    - {name: rob, role: read, token_env: T_READ}
    - {name: prom-api, role: write, token_env: T_WRITE, write_matchers: ['{job="api"}']}
`

// listener is an assertd started as assertd run starts it (app.New, then
// Start on 127.0.0.1:0) with --web.config.file.
type listener struct {
	base  string
	app   *app.App
	clock *fakeclock.Clock
	dir   string
	logs  *syncBuffer
}

func startListener(t *testing.T, cfg, webConfig string, files map[string][]byte, opts ...func(*app.Options)) *listener {
	t.Helper()
	return startListenerIn(t, t.TempDir(), cfg, webConfig, files, opts...)
}

// startListenerIn is startListener with its files in dir.
func startListenerIn(t *testing.T, dir, cfg, webConfig string, files map[string][]byte, opts ...func(*app.Options)) *listener {
	t.Helper()
	all := map[string][]byte{"assertd.yaml": []byte(cfg), "rules.yaml": []byte(harnessRules)}
	if webConfig != "" {
		all["web.yml"] = []byte(webConfig)
	}
	for k, v := range files {
		all[k] = v
	}
	for name, b := range all {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secrets := map[string]string{"T_ADMIN": adminSecret, "T_READ": readSecret, "T_WRITE": writeSecret, "T_PING": pingKey}
	l := &listener{clock: fakeclock.New(start0), dir: dir, logs: &syncBuffer{}}
	o := app.Options{ConfigPath: filepath.Join(dir, "assertd.yaml"), Listen: "127.0.0.1:0", Clock: l.clock, ReloadEvery: -1,
		Getenv: func(k string) string { return secrets[k] }, Logger: slog.New(slog.NewTextHandler(l.logs, nil)),
		Effects: &fakeEffects{}, Stdout: io.Discard}
	if webConfig != "" {
		o.WebConfigFile = filepath.Join(dir, "web.yml")
	}
	for _, f := range opts {
		f(&o)
	}
	a, err := app.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.app = a
	l.base = "http://" + a.Addr()
	return l
}

// remoteWrite is a remote-write body of one sample per label set.
func remoteWrite(t testing.TB, ts time.Time, sets ...[]string) []byte {
	t.Helper()
	var req prompb.WriteRequest
	for _, kv := range sets {
		var ls []prompb.Label
		for i := 0; i+1 < len(kv); i += 2 {
			ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Timestamp: ts.UnixMilli(), Value: 1}}})
	}
	raw, err := proto.Marshal(&req)
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, raw)
}

// caller is one column of the route table: how a request authenticates.
type caller struct {
	name string
	set  func(*http.Request)
	cert bool // sends the client certificate
}

func callers() []caller {
	bearer := func(s string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+s) }
	}
	return []caller{
		{"anonymous", func(*http.Request) {}, true},
		{"read", bearer(readSecret), true},
		{"write", bearer(writeSecret), true},
		{"admin", bearer(adminSecret), true},
		{"basic-auth user", func(r *http.Request) { r.SetBasicAuth(basicUser, basicPass) }, true},
		{"wrong basic-auth", func(r *http.Request) { r.SetBasicAuth(basicUser, "not-the-password") }, true},
		{"TLS client cert missing", bearer(adminSecret), false},
	}
}

// syncBuffer is a buffer the logger writes and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hasLine counts the log lines with text.
func hasLine(logs, text string) int { return strings.Count(logs, text) }
