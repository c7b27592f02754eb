package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	"github.com/assertd/assertd"
)

// KeyHeader carries a ping key, as an alternative to ?key=.
const KeyHeader = "X-Assertd-Key"

// TruncatedHeader is set on the answer to a ping whose body was cut.
const TruncatedHeader = "X-Assertd-Body-Truncated"

const allowedMethods = "GET, HEAD, POST"

const usage = "use /ping/{name}, /ping/{name}/start, /ping/{name}/fail or /ping/{name}/{exit code 0-255}"

// Handler serves the ping API, stamping pings with now():
//
//	GET|POST|HEAD /ping/{name}            success
//	GET|POST|HEAD /ping/{name}/start      a run started
//	GET|POST|HEAD /ping/{name}/fail       the run failed (exit code 1)
//	GET|POST|HEAD /ping/{name}/{0-255}    the run ended with this exit code (0: success)
//
// with an optional ?rid= run id, and the ping key (?key= or the
// X-Assertd-Key header) when the heartbeat has one. The request body (up to
// MaxBody bytes) is kept with the ping. An accepted ping is answered 200 "OK"
// once it is durable; a ping the store could not take is answered 503 and
// must be retried. Errors are JSON objects {"error": "..."}, and never repeat
// a key. Mount the handler at "/ping/": its patterns include the prefix.
func (t *Tracker) Handler(now func() time.Time) http.Handler {
	h := &handler{t: t, now: now, log: t.log}
	mux := http.NewServeMux()
	mux.HandleFunc("/ping/{name}", h.ping)
	mux.HandleFunc("/ping/{name}/{action}", h.ping)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "no such ping path: "+usage)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodPost:
		default:
			w.Header().Set("Allow", allowedMethods)
			h.reject(w, r, http.StatusMethodNotAllowed, reasonMethod, "method not allowed: pings take "+allowedMethods)
			return
		}
		// Refuse what ServeMux would redirect (//, /./, /../, a trailing
		// slash): a ping is never answered with a redirect.
		if p := r.URL.Path; p == "" || p != path.Clean(p) {
			h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "malformed ping path: "+usage)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type handler struct {
	t   *Tracker
	now func() time.Time
	log *slog.Logger
}

func (h *handler) ping(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := assertd.CheckName("heartbeat", name); err != nil {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("heartbeat name %q is not valid: names hold letters, digits, '.', '_' and '-'", clip(name, 64)))
		return
	}
	if !h.t.Known(name) {
		h.reject(w, r, http.StatusNotFound, reasonUnknown, fmt.Sprintf("unknown heartbeat %q: add it under heartbeats: in a rule file", name))
		return
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "malformed query string")
		return
	}
	if h.t.NeedsKey(name) {
		keys := append(r.Header.Values(KeyHeader), query["key"]...)
		switch {
		case len(keys) == 0:
			h.reject(w, r, http.StatusUnauthorized, reasonUnauthorized, fmt.Sprintf("heartbeat %q needs its ping key: pass ?key= or the %s header", name, KeyHeader))
			return
		case len(keys) > 1:
			h.reject(w, r, http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("pass the ping key once, as ?key= or the %s header", KeyHeader))
			return
		case !h.t.CheckKey(name, keys[0]):
			h.reject(w, r, http.StatusForbidden, reasonUnauthorized, fmt.Sprintf("wrong ping key for heartbeat %q", name))
			return
		}
	}
	kind, code, err := parseAction(r.PathValue("action"))
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, err.Error())
		return
	}
	var rid string
	switch rids := query["rid"]; {
	case len(rids) > 1:
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "pass rid once")
		return
	case len(rids) == 1 && rids[0] != "":
		if err := CheckRunID(rids[0]); err != nil {
			h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "invalid rid: "+ridRule)
			return
		}
		rid = rids[0]
	}
	var raw []byte
	if r.Body != nil {
		raw, err = io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "could not read the request body")
			return
		}
	}
	body, truncated := boundBody(string(raw), len(raw) > MaxBody)
	p := assertd.Ping{Heartbeat: name, Kind: kind, ExitCode: code, RunID: rid, At: h.now(), Body: body, Source: r.RemoteAddr}
	if err := h.t.Ping(r.Context(), p); err != nil {
		switch {
		case errors.Is(err, ErrUnknown):
			h.reject(w, r, http.StatusNotFound, reasonUnknown, fmt.Sprintf("unknown heartbeat %q: add it under heartbeats: in a rule file", name))
		case errors.Is(err, ErrInvalidPing):
			h.reject(w, r, http.StatusBadRequest, reasonBadRequest, err.Error())
		default:
			h.log.Error("heartbeat ping not recorded", "heartbeat", name, "kind", kind, "err", err)
			w.Header().Set("Retry-After", "5")
			h.reject(w, r, http.StatusServiceUnavailable, reasonStore, "the ping could not be stored and was not recorded: retry")
		}
		return
	}
	if truncated {
		w.Header().Set(TruncatedHeader, strconv.Itoa(MaxBody))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, "OK")
	}
}

// parseAction reads the segment after the name.
func parseAction(a string) (assertd.PingKind, int, error) {
	switch a {
	case "":
		return assertd.PingSuccess, 0, nil
	case "start":
		return assertd.PingStart, 0, nil
	case "fail":
		return assertd.PingFail, 1, nil
	}
	if len(a) <= 3 {
		if n, err := strconv.Atoi(a); err == nil && n >= 0 && a[0] != '+' && a[0] != '-' {
			if n > 255 {
				return "", 0, fmt.Errorf("exit code %d is out of range: use 0 to 255", n)
			}
			return assertd.PingExit, n, nil
		}
	}
	return "", 0, fmt.Errorf("unknown ping action %q: %s", clip(a, 32), usage)
}

func (h *handler) reject(w http.ResponseWriter, r *http.Request, code int, reason rejectReason, msg string) {
	h.t.rejected[reason].Add(1)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
