package web

import (
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	toolkit "github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
)

// ListenerConfig is the Prometheus web configuration file
// (--web.config.file, the exporter-toolkit format): tls_server_config (TLS
// versions, cipher suites, client certificates), basic_auth_users (bcrypt
// hashes), http_server_config (http2, response headers) and rate_limit.
//
// The file is read again when it changes: TLS settings and certificates
// apply from the next connection, users, headers and the rate limit from the
// next request. A file that no longer parses is logged and the last good one
// stays in force. Whether the listener speaks TLS at all is decided at
// start.
//
// Basic-auth users are an alternative to bearer tokens, not a gate in front
// of them: a user of the file has the role write (read and remote-write).
type ListenerConfig struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	stamp   string
	cfg     *toolkit.Config
	limiter *rate.Limiter
	bad     string // the stamp of a file that did not parse (logged once)

	bcryptMu sync.Mutex // bcrypt is costly: one comparison at a time
	cacheMu  sync.Mutex
	cache    map[[sha256.Size]byte]bool // user, hash and password → valid
}

// maxAuthCache bounds the remembered basic-auth checks.
const maxAuthCache = 1024

// LoadListenerConfig reads and checks the file the way exporter-toolkit
// checks it (web.Validate: the users' hashes, the certificates and keys).
func LoadListenerConfig(path string, log *slog.Logger) (*ListenerConfig, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := toolkit.Validate(path); err != nil {
		return nil, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	c := &ListenerConfig{path: path, log: log, cache: map[[sha256.Size]byte]bool{}}
	stamp, cfg, err := c.read()
	if err != nil {
		return nil, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	c.install(stamp, cfg)
	return c, nil
}

// read parses the file as exporter-toolkit does, with its defaults.
func (c *ListenerConfig) read() (string, *toolkit.Config, error) {
	st, err := os.Stat(c.path)
	if err != nil {
		return "", nil, err
	}
	stamp := fmt.Sprintf("%d:%d", st.ModTime().UnixNano(), st.Size())
	b, err := os.ReadFile(c.path)
	if err != nil {
		return "", nil, err
	}
	cfg := &toolkit.Config{
		TLSConfig:  toolkit.TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13},
		HTTPConfig: toolkit.HTTPConfig{HTTP2: true},
	}
	if err := yaml.UnmarshalStrict(b, cfg); err != nil {
		return "", nil, err
	}
	for u, h := range cfg.Users {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return "", nil, fmt.Errorf("basic_auth_users %s: %w", u, err)
		}
	}
	cfg.TLSConfig.SetDirectory(filepath.Dir(c.path))
	if cfg.TLSConfig.IsEnabled() {
		if _, err := toolkit.ConfigToTLSConfig(&cfg.TLSConfig); err != nil {
			return "", nil, err
		}
	}
	return stamp, cfg, nil
}

func (c *ListenerConfig) install(stamp string, cfg *toolkit.Config) {
	c.stamp, c.cfg = stamp, cfg
	c.limiter = nil
	if rl := cfg.RateLimiterConfig; rl.Interval > 0 {
		c.limiter = rate.NewLimiter(rate.Every(rl.Interval), rl.Burst)
	}
}

// current is the configuration in force, read again when the file changed.
func (c *ListenerConfig) current() (*toolkit.Config, *rate.Limiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := "missing"
	if st, err := os.Stat(c.path); err == nil {
		now = fmt.Sprintf("%d:%d", st.ModTime().UnixNano(), st.Size())
	}
	if now == c.stamp || now == c.bad {
		return c.cfg, c.limiter
	}
	stamp, cfg, err := c.read()
	if err != nil {
		c.bad = now // read again when it changes
		c.log.Error("--web.config.file: keeping the last good one", "file", c.path, "err", err)
		return c.cfg, c.limiter
	}
	c.install(stamp, cfg)
	c.log.Info("--web.config.file reloaded", "file", c.path, "tls", cfg.TLSConfig.IsEnabled(), "users", len(cfg.Users))
	return c.cfg, c.limiter
}

// TLS returns the server's TLS configuration, nil when the file configured
// no TLS at start. Every new connection reads the settings and the
// certificates again.
func (c *ListenerConfig) TLS() (*tls.Config, error) {
	cfg, _ := c.current()
	if !cfg.TLSConfig.IsEnabled() {
		return nil, nil
	}
	first, err := toolkit.ConfigToTLSConfig(&cfg.TLSConfig)
	if err != nil {
		return nil, err
	}
	next := func() []string {
		if cfg, _ := c.current(); cfg.HTTPConfig.HTTP2 {
			return []string{"h2", "http/1.1"}
		}
		return []string{"http/1.1"}
	}
	first.NextProtos = next()
	first.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cfg, _ := c.current()
		t, err := toolkit.ConfigToTLSConfig(&cfg.TLSConfig)
		if err != nil {
			return nil, err // a certificate that went missing: this handshake fails
		}
		t.NextProtos = next()
		return t, nil
	}
	return first, nil
}

// HTTP2 reports whether the file allows HTTP/2 (over TLS).
func (c *ListenerConfig) HTTP2() bool {
	cfg, _ := c.current()
	return cfg.HTTPConfig.HTTP2
}

// hasUsers reports whether the file has basic-auth users.
func (c *ListenerConfig) hasUsers() bool {
	if c == nil {
		return false
	}
	cfg, _ := c.current()
	return len(cfg.Users) > 0
}

// checkUser compares a basic-auth password with the user's bcrypt hash,
// taking the same time for unknown users, and remembers the outcome.
func (c *ListenerConfig) checkUser(user, pass string) bool {
	if c == nil {
		return false
	}
	cfg, _ := c.current()
	hash, known := cfg.Users[user]
	if !known {
		hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi" // "fakepassword", as exporter-toolkit does
	}
	key := sha256.Sum256([]byte(fmt.Sprintf("%q:%q:%q", user, string(hash), pass)))
	c.cacheMu.Lock()
	ok, cached := c.cache[key]
	c.cacheMu.Unlock()
	if !cached {
		c.bcryptMu.Lock()
		ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
		c.bcryptMu.Unlock()
		c.cacheMu.Lock()
		if len(c.cache) >= maxAuthCache {
			clear(c.cache)
		}
		c.cache[key] = ok
		c.cacheMu.Unlock()
	}
	return ok && known
}

// wrap applies the file's response headers and rate limit.
func (c *ListenerConfig) wrap(h http.Handler) http.Handler {
	if c == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, lim := c.current()
		if lim != nil && !lim.Allow() {
			w.Header().Set("Retry-After", fmt.Sprint(int(max(time.Second, cfg.RateLimiterConfig.Interval).Seconds())))
			writeError(w, http.StatusTooManyRequests, "", "rate_limit of --web.config.file exceeded")
			return
		}
		for k, v := range cfg.HTTPConfig.Header {
			w.Header().Set(k, v)
		}
		h.ServeHTTP(w, r)
	})
}

// CheckListen refuses a listen address other than loopback when no
// credential is configured: without a token or a basic-auth user, reads
// are open and nothing could authenticate ingestion. open reports that the
// listener runs without credentials (on loopback).
func CheckListen(addr string, acc *Access, lc *ListenerConfig) (open bool, err error) {
	pol := acc.policy()
	if len(pol.tokens) > 0 || lc.hasUsers() {
		return false, nil
	}
	if Loopback(addr) {
		return true, nil
	}
	return true, fmt.Errorf("listen address %s is not a loopback address and no credential is configured, so anyone who reaches it could read "+
		"and feed assertd: add web.tokens (role write for remote-write, admin for changes) or basic_auth_users in --web.config.file, "+
		"or listen on 127.0.0.1:%s", addr, portOf(addr))
}

// Loopback reports whether a host:port listens on loopback only.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func portOf(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return p
	}
	return "8080"
}

// IngestOnly serves, of h (New's handler), only what feeds the engine and
// what a load balancer probes: remote-write, heartbeat pings, /healthz,
// /readyz, /-/healthy and /-/ready; anything else answers a JSON 404. It is
// the handler of web.ingest_listen.
func IngestOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case p == writePath, strings.HasPrefix(p, "/ping/"), p == "/healthz", p == "/readyz", p == "/-/healthy", p == "/-/ready":
			h.ServeHTTP(w, r)
		default:
			writeError(w, http.StatusNotFound, "", "no route "+r.Method+" "+p+" on the ingestion listener (web.ingest_listen): the UI and the API are on web.listen")
		}
	})
}
