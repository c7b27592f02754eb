// Package web is assertd's one HTTP listener: heartbeat pings at /ping/,
// Prometheus remote-write at POST /api/v1/write, the JSON API under /api/v1/,
// /metrics, /healthz and /readyz.
package web

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/engine"
)

// Engine is what the web layer reads from the engine.
type Engine interface {
	Instances() []assertd.Instance
	LastReload() engine.ReloadStatus
	Held() int
}

// Deps are the parts the handler serves.
type Deps struct {
	Engine      Engine
	Pings       http.Handler // mounted at /ping/
	RemoteWrite http.Handler // POST /api/v1/write; nil: not offered
	Gatherer    prometheus.Gatherer
	Ready       func() error // nil: always ready
}

// MaxBody bounds request bodies other than remote-write (which has its own).
const MaxBody = 1 << 20

// Handler returns the HTTP handler.
func Handler(d Deps) http.Handler {
	mux := http.NewServeMux()
	if d.Pings != nil {
		mux.Handle("/ping/", d.Pings)
	}
	if d.RemoteWrite != nil {
		mux.Handle("/api/v1/write", d.RemoteWrite)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if d.Ready != nil {
			if err := d.Ready(); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /api/v1/instances", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"instances": d.Engine.Instances()})
	})
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		rs := d.Engine.LastReload()
		st := map[string]any{"held_changes": d.Engine.Held(), "last_reload": rs.At}
		if rs.Err != nil {
			st["reload_error"] = rs.Err.Error()
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no route " + r.Method + " " + r.URL.Path})
	})
	return limitBody(securityHeaders(mux))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/write" && r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		}
		h.ServeHTTP(w, r)
	})
}

// Server returns an http.Server with timeouts suited to a monitoring daemon.
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}
