package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// role is what a caller may do; a route needs one.
type role int

// The roles, weakest first.
const (
	rolePublic role = iota // anyone, no token
	roleRead               // a read token, or anyone when reads are public
	roleWrite              // read, and remote-write: a write token or a basic-auth user, or anyone under public_write
	roleAdmin              // an admin token; never public
	// roleSigned: no token; the sender's signature authenticates the
	// request, checked by the handler (chatops.go).
	roleSigned
)

func (r role) String() string {
	return [...]string{"public", "read", "write", "admin", "signed"}[r]
}

// route is one method and path of the listener.
type route struct {
	method string
	path   string // a ServeMux pattern without the method
	role   role
	api    bool // JSON answers and errors; otherwise an HTML page
	ingest bool // feeds the engine; anonymous only when configured public
	reads  bool // a POST that only reads (Prometheus' query API takes long queries so)
	h      http.HandlerFunc
}

// mutating reports whether the route changes something (and needs admin or,
// for ingestion, write).
func (rt route) mutating() bool {
	return rt.method != http.MethodGet && rt.method != http.MethodHead && !rt.reads
}

// routeTable lists every route but /ping/, which is mounted as given.
func (s *server) routeTable() []route {
	api := func(method, path string, ro role, h http.HandlerFunc) route {
		return route{method: method, path: path, role: ro, api: true, h: h}
	}
	ui := func(method, path string, ro role, h http.HandlerFunc) route {
		return route{method: method, path: path, role: ro, h: h}
	}
	metrics := promhttp.HandlerFor(s.d.Gatherer, promhttp.HandlerOpts{})
	var ingest []route
	if s.d.RemoteWrite != nil {
		ingest = append(ingest, route{method: "POST", path: writePath, role: roleWrite, api: true, ingest: true, h: s.remoteWrite})
	}
	if s.d.Alerts != nil {
		ingest = append(ingest, route{method: "POST", path: alertmanagerPath, role: roleWrite, api: true, ingest: true, h: s.alertmanagerWebhook})
	}
	return append(append(ingest, []route{
		api("GET", "/healthz", rolePublic, s.healthz),
		api("GET", "/readyz", rolePublic, s.readyz),
		api("GET", "/-/healthy", rolePublic, s.healthz),
		api("GET", "/-/ready", rolePublic, s.readyz),
		api("GET", "/metrics", rolePublic, metrics.ServeHTTP),
		api("GET", "/api/v1/openapi.json", rolePublic, s.openAPI),

		api("GET", "/api/v1/status", roleRead, s.apiStatus),
		api("GET", "/api/v1/asserts", roleRead, s.apiAsserts),
		api("GET", "/api/v1/asserts/{name}", roleRead, s.apiAssert),
		api("GET", "/api/v1/instances", roleRead, s.apiInstances),
		api("GET", "/api/v1/instances/{assert}/{fingerprint}", roleRead, s.apiInstance),
		api("GET", "/api/v1/runs", roleRead, s.apiRuns),
		api("GET", "/api/v1/runs/{id}", roleRead, s.apiRun),
		api("GET", "/api/v1/messages", roleRead, s.apiMessages),
		api("GET", "/api/v1/heartbeats", roleRead, s.apiHeartbeats),
		api("GET", "/api/v1/rules", roleRead, s.apiRules),
		api("GET", "/api/v1/silences", roleRead, s.apiSilences),
		api("GET", "/api/v1/settings", roleRead, s.apiSettings),
		api("GET", "/api/v1/approvals", roleRead, s.apiApprovals),
		api("GET", "/api/v1/audit", roleRead, s.apiAudit),
		api("GET", "/api/v1/breakers", roleRead, s.apiBreakers),
		api("GET", "/api/v1/lifecycle", roleRead, s.apiLifecycles),
		api("GET", "/api/v1/cluster", roleRead, s.apiCluster),
		api("GET", "/api/v1/events", roleRead, s.events),

		api("POST", "/api/v1/silences", roleAdmin, s.apiCreateSilence),
		api("POST", "/api/v1/silences/{id}/expire", roleAdmin, s.apiExpireSilence),
		api("PUT", "/api/v1/settings/{key...}", roleAdmin, s.apiPutSetting),
		api("DELETE", "/api/v1/settings/{key...}", roleAdmin, s.apiDeleteSetting),
		api("POST", "/api/v1/approvals/{run}", roleAdmin, s.apiApprove),
		api("POST", "/api/v1/instances/{assert}/{fingerprint}/ack", roleAdmin, s.apiAck),
		api("POST", "/api/v1/break-glass", roleAdmin, s.apiBreakGlass),
		api("POST", "/api/v1/breaker/close", roleAdmin, s.apiCloseBreaker),
		api("PUT", "/api/v1/lifecycle", roleAdmin, s.apiSetLifecycle),
		api("POST", "/-/reload", roleAdmin, s.reload),

		ui("GET", "/static/{file}", rolePublic, s.static),
		ui("GET", "/login", rolePublic, s.loginPage),
		ui("POST", "/login", rolePublic, s.login),
		ui("POST", "/logout", rolePublic, s.logout),
		ui("GET", "/{$}", roleRead, s.overviewPage),
		ui("GET", "/asserts/{name}", roleRead, s.assertPage),
		ui("GET", "/instances/{assert}/{fingerprint}", roleRead, s.instancePage),
		ui("GET", "/runs/{id}", roleRead, s.runPage),
		ui("GET", "/heartbeats", roleRead, s.heartbeatsPage),
		ui("GET", "/rules", roleRead, s.rulesPage),
		ui("GET", "/silences", roleRead, s.silencesPage),
		ui("GET", "/settings", roleRead, s.settingsPage),
		ui("GET", "/break-glass", roleRead, s.breakGlassPage),
		ui("GET", "/cluster", roleRead, s.clusterPage),
		ui("GET", "/replay", roleRead, s.replayPage),
		// A replay changes nothing: it reads history (see replay.go for
		// who may run one).
		{method: "POST", path: "/replay", role: roleRead, reads: true, h: s.formReplay},

		ui("POST", "/silences", roleAdmin, s.formCreateSilence),
		ui("POST", "/silences/{id}/expire", roleAdmin, s.formExpireSilence),
		ui("POST", "/settings", roleAdmin, s.formSettings),
		ui("POST", "/approvals/{run}", roleAdmin, s.formApprove),
		ui("POST", "/instances/{assert}/{fingerprint}/ack", roleAdmin, s.formAck),
		ui("POST", "/break-glass", roleAdmin, s.formBreakGlass),
		ui("POST", "/breaker/close", roleAdmin, s.formCloseBreaker),
	}...), append(append(s.signedRoutes(), s.promRoutes()...), s.amRoutes()...)...)
}

// mux builds the one handler: every path answers its methods, unknown
// methods get a JSON 405 with Allow, unknown paths a JSON 404.
func (s *server) mux() http.Handler {
	mux := http.NewServeMux()
	if s.d.Pings != nil {
		mux.Handle("/ping/", s.d.Pings)
	}
	byPath := map[string][]route{}
	var order []string
	for _, rt := range s.routes {
		if _, ok := byPath[rt.path]; !ok {
			order = append(order, rt.path)
		}
		byPath[rt.path] = append(byPath[rt.path], rt)
	}
	for _, p := range order {
		rts := byPath[p]
		var allow []string
		for _, rt := range rts {
			allow = append(allow, rt.method)
			if rt.method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			m := r.Method
			if m == http.MethodHead {
				m = http.MethodGet
			}
			for _, rt := range rts {
				if rt.method == m {
					s.serveRoute(rt, w, r)
					return
				}
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "", "method "+r.Method+" is not allowed on "+r.URL.Path+": use "+strings.Join(allow, ", "))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "", "no route "+r.Method+" "+r.URL.Path)
	})
	return s.d.Listener.wrap(securityHeaders(limitBody(s.metrics.count(s.crossOrigin(mux)))))
}

// serveRoute checks who calls and runs the route's handler.
func (s *server) serveRoute(rt route, w http.ResponseWriter, r *http.Request) {
	if rt.role == roleSigned {
		rt.h(w, r) // the handler checks the sender's signature
		return
	}
	p, status, msg := s.authorize(rt, r)
	r = r.WithContext(withPrincipal(r.Context(), p))
	if status != 0 {
		if !rt.api && status == http.StatusUnauthorized && !rt.mutating() {
			http.Redirect(w, r, "/login?next="+urlEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="assertd"`)
			if rt.ingest {
				w.Header().Add("WWW-Authenticate", `Basic realm="assertd"`)
			}
		}
		s.fail(rt, w, r, status, "", msg)
		return
	}
	rt.h(w, r)
}

// fail answers an error the way the route speaks: JSON for the API, a page
// for the UI.
func (s *server) fail(rt route, w http.ResponseWriter, r *http.Request, status int, field, msg string) {
	if rt.api {
		writeError(w, status, field, msg)
		return
	}
	s.errorPage(w, r, status, msg)
}

// Routes lists the method, path and role of every route (for the docs and the
// tests), /ping/ aside.
func (s *server) Routes() [][3]string {
	var out [][3]string
	for _, rt := range s.routes {
		out = append(out, [3]string{rt.method, rt.path, rt.role.String()})
	}
	slices.SortStableFunc(out, func(a, b [3]string) int { return strings.Compare(a[1], b[1]) })
	return out
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin") // no-referrer would make browsers send Origin: null on forms
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		h.ServeHTTP(w, r)
	})
}

func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != writePath && r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		}
		h.ServeHTTP(w, r)
	})
}
