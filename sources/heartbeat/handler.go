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
	"strings"
	"time"

	"github.com/assertd/assertd"
)

// KeyHeader carries a ping key, as an alternative to ?key=.
const KeyHeader = "X-Assertd-Key"

// BodyLimitHeader is set on every answer to a ping: the largest body, in
// bytes, that a ping may carry (Healthchecks.io's header, which clients
// such as runitor read to cut their logs to size).
const BodyLimitHeader = "Ping-Body-Limit"

const allowedMethods = "GET, HEAD, POST"

// Header values every accepted ping's answer carries, shared rather than
// allocated per answer (Header.Set makes a slice each time). net/http only
// reads them; their length is their capacity, so an Add copies first.
var (
	bodyLimitValue = []string{strconv.Itoa(MaxBody)}
	textPlain      = []string{"text/plain; charset=utf-8"}
	noStore        = []string{"no-store"}
)

const usage = "use /ping/{name}[/start|/fail|/log|/{exit code 0-255}] with the heartbeat's key, " +
	"/ping/{ping-key}/{name}[/…] with the project ping key, or /ping/{uuid}[/…]"

// Handler serves the ping API, stamping pings with now(). A heartbeat is
// named in one of three ways, as in Healthchecks.io:
//
//	/ping/{name}[/ACTION]               with ?key= or the X-Assertd-Key header: the heartbeat's key or the project ping key
//	/ping/{ping-key}/{name}[/ACTION]    the project ping key in the path; ?create=1 creates a heartbeat from a pattern
//	/ping/{uuid}[/ACTION]               the heartbeat's uuid: (the UUID is the credential)
//
// where ACTION is nothing (success), start (a run started), fail (the run
// failed, exit code 1), log (a log entry: the state does not change) or an
// exit code 0-255 (0: success). Methods GET, POST and HEAD; an optional
// ?rid= names a run. A public heartbeat takes /ping/{name} without a key.
//
// The request body (up to MaxBody bytes) is kept with the ping; a longer one
// is answered 413 and nothing is recorded. Every answer carries the
// Ping-Body-Limit header. An accepted ping is answered 200 "OK" once it is
// durable (201 "Created" when ?create=1 created the heartbeat); a ping the
// store could not take is answered 503 and must be retried. Errors are JSON
// objects {"error": "..."}, and never repeat a key or a uuid. Mount the
// handler at "/ping/".
func (t *Tracker) Handler(now func() time.Time) http.Handler {
	h := &handler{t: t, now: now, log: t.log}
	return http.HandlerFunc(h.serve)
}

type handler struct {
	t   *Tracker
	now func() time.Time
	log *slog.Logger
}

// form is how a ping named its heartbeat.
type form int

const (
	byName form = iota
	byProjectKey
	byUUID
)

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	w.Header()[BodyLimitHeader] = bodyLimitValue
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", allowedMethods)
		h.reject(w, r, http.StatusMethodNotAllowed, reasonMethod, "method not allowed: pings take "+allowedMethods)
		return
	}
	// Refuse what a mux would redirect (//, /./, /../, a trailing slash): a
	// ping is never answered with a redirect.
	p := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(p, "/ping/")
	if !ok || rest == "" {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "no such ping path: "+usage)
		return
	}
	if p != path.Clean(p) {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "malformed ping path: "+usage)
		return
	}
	segs := strings.Split(rest, "/")
	for i, sg := range segs {
		u, err := url.PathUnescape(sg)
		if err != nil || u == "" || u == "." || u == ".." {
			h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "malformed ping path: "+usage)
			return
		}
		segs[i] = u
	}
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "malformed query string")
		return
	}
	d := h.t.decl.Load()
	var (
		e      *entry
		how    form
		name   string
		action string
	)
	first := segs[0]
	switch {
	case len(segs) > 3 || (len(segs) == 3 && d.entries[first] != nil):
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "no such ping path: "+usage)
		return
	case len(segs) <= 2 && d.uuids[strings.ToLower(first)] != nil:
		e, how = d.uuids[strings.ToLower(first)], byUUID
		name = e.name
	case len(segs) == 1 && d.entries[first] == nil && d.checkProjectKey(first):
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "the project ping key needs a heartbeat name after it: /ping/{ping-key}/{name}")
		return
	case len(segs) == 1 || (len(segs) == 2 && d.entries[first] != nil):
		how, name = byName, first
	case len(segs) == 2 && !d.checkProjectKey(first) && actionLike(segs[1]):
		how, name = byName, first // an unknown heartbeat, not a key
	default:
		how, name = byProjectKey, segs[1]
		if len(segs) == 3 {
			action = segs[2]
		}
	}
	if how != byProjectKey && len(segs) == 2 {
		action = segs[1]
	}
	kind, code, err := parseAction(action)
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, err.Error())
		return
	}
	if how == byProjectKey {
		// The key is checked before the name is looked up, so that a wrong
		// key learns nothing about which heartbeats exist.
		switch {
		case d.pingKey == nil:
			h.reject(w, r, http.StatusNotFound, reasonUnknown, "no such ping path (no project ping key is configured; set pings: {key_env: …} in assertd.yaml to ping by /ping/{ping-key}/{name}): "+usage)
			return
		case !d.checkProjectKey(segs[0]):
			h.reject(w, r, http.StatusForbidden, reasonUnauthorized, "wrong project ping key")
			return
		}
	}
	if how != byUUID {
		if err := assertd.CheckName("heartbeat", name); err != nil {
			h.reject(w, r, http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("heartbeat name %q is not valid: names hold letters, digits, '.', '_' and '-'", clip(name, 64)))
			return
		}
		e = d.entries[name]
	}
	created := false
	if e == nil && how == byProjectKey && query.Get("create") == "1" {
		if e, created, err = h.t.create(r.Context(), name); err != nil {
			h.createFailed(w, r, name, err)
			return
		}
	}
	if e == nil {
		h.reject(w, r, http.StatusNotFound, reasonUnknown, fmt.Sprintf("unknown heartbeat %q: add it under heartbeats: in a rule file", name))
		return
	}
	if how == byName && !h.authorizeByName(w, r, d, e, query) {
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
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	ping := assertd.Ping{Heartbeat: e.name, Kind: kind, ExitCode: code, RunID: rid, At: h.now(), Body: body, Source: r.RemoteAddr}
	if err := h.t.Ping(r.Context(), ping); err != nil {
		switch {
		case errors.Is(err, ErrUnknown):
			h.reject(w, r, http.StatusNotFound, reasonUnknown, fmt.Sprintf("unknown heartbeat %q: add it under heartbeats: in a rule file", e.name))
		case errors.Is(err, ErrInvalidPing):
			h.reject(w, r, http.StatusBadRequest, reasonBadRequest, err.Error())
		default:
			h.log.Error("heartbeat ping not recorded", "heartbeat", e.name, "kind", kind, "err", err)
			w.Header().Set("Retry-After", "5")
			h.reject(w, r, http.StatusServiceUnavailable, reasonStore, "the ping could not be stored and was not recorded: retry")
		}
		return
	}
	hd := w.Header()
	hd["Content-Type"], hd["Cache-Control"] = textPlain, noStore
	status, text := http.StatusOK, "OK"
	if created {
		status, text = http.StatusCreated, "Created"
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, text)
	}
}

// createFailed answers a ?create=1 ping that could not create its heartbeat.
func (h *handler) createFailed(w http.ResponseWriter, r *http.Request, name string, err error) {
	switch {
	case errors.Is(err, ErrUnknown):
		h.reject(w, r, http.StatusNotFound, reasonUnknown, fmt.Sprintf("unknown heartbeat %q, and no heartbeat declares create: with a prefix it starts with", name))
	case errors.Is(err, ErrLimit):
		h.reject(w, r, http.StatusForbidden, reasonLimit, err.Error())
	default:
		h.log.Error("heartbeat not created", "heartbeat", name, "err", err)
		w.Header().Set("Retry-After", "5")
		h.reject(w, r, http.StatusServiceUnavailable, reasonStore, "the heartbeat could not be stored and was not created: retry")
	}
}

// authorizeByName checks the key of a /ping/{name} ping: the heartbeat's
// own or the project's, once, as ?key= or the header; none for a public
// heartbeat. It answers the refusal itself.
func (h *handler) authorizeByName(w http.ResponseWriter, r *http.Request, d *declared, e *entry, query url.Values) bool {
	e.mu.RLock()
	public, own := e.public, e.key != nil
	e.mu.RUnlock()
	if public {
		return true
	}
	keys := append(r.Header.Values(KeyHeader), query["key"]...)
	switch {
	case !own && d.pingKey == nil && e.uuid == "":
		h.reject(w, r, http.StatusUnauthorized, reasonUnauthorized, fmt.Sprintf("heartbeat %q has no ping key: give it key_env: or key_file:, set the project ping key (pings: in assertd.yaml), or write public: true", e.name))
	case !own && d.pingKey == nil:
		h.reject(w, r, http.StatusUnauthorized, reasonUnauthorized, fmt.Sprintf("heartbeat %q is pinged at /ping/{its uuid}", e.name))
	case len(keys) == 0:
		h.reject(w, r, http.StatusUnauthorized, reasonUnauthorized, fmt.Sprintf("heartbeat %q needs its ping key: pass ?key= or the %s header", e.name, KeyHeader))
	case len(keys) > 1:
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, fmt.Sprintf("pass the ping key once, as ?key= or the %s header", KeyHeader))
	case !h.t.CheckKey(e.name, keys[0]):
		h.reject(w, r, http.StatusForbidden, reasonUnauthorized, fmt.Sprintf("wrong ping key for heartbeat %q", e.name))
	default:
		return true
	}
	return false
}

// readBody reads at most MaxBody bytes of the body; a longer body is
// answered 413 (reported false), so a ping is recorded whole or not at all.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	tooLarge := func() (string, bool) {
		h.reject(w, r, http.StatusRequestEntityTooLarge, reasonTooLarge,
			fmt.Sprintf("the ping body is larger than %d bytes: send its last %d bytes (the %s header says so on every answer)", MaxBody, MaxBody, BodyLimitHeader))
		return "", false
	}
	if r.ContentLength > MaxBody {
		return tooLarge()
	}
	if r.Body == nil {
		return "", true
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		h.reject(w, r, http.StatusBadRequest, reasonBadRequest, "could not read the request body")
		return "", false
	}
	if len(raw) > MaxBody {
		return tooLarge()
	}
	body, _ := boundBody(string(raw), false)
	return body, true
}

// actionLike reports whether a reads as an action rather than a name:
// start, fail, log, or a number (an exit code, maybe out of range).
func actionLike(a string) bool {
	switch a {
	case "start", "fail", "log":
		return true
	}
	return a != "" && strings.Trim(a, "+-0123456789") == ""
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
	case "log":
		return assertd.PingLog, 0, nil
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
