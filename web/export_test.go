package web

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/alerts"
)

// What the tests of package web_test (which start assertd through app.New,
// and so cannot be part of package web) look at inside it.

// The JSON answers of the API, decoded by the tests.
type (
	AssertView     = assertView
	InstanceDetail = instanceDetail
	HeartbeatView  = heartbeatView
	ReloadView     = reloadView
	SettingView    = settingView
	SilenceView    = silenceView
	RunDetail      = runDetail
	ApprovalView   = approvalView
	EventState     = eventState
)

// SessionCookie is the UI session's cookie name.
const SessionCookie = sessionCookie

// URLEscape escapes a query value as the UI's links do.
var URLEscape = urlEscape

// Route is one route of the table New serves.
type Route struct {
	Method, Path string
	Role         string // public, read, write, admin or signed
	API          bool   // JSON answers; otherwise an HTML page
	Mutating     bool
	Ingest       bool // feeds the engine
}

// Routes is the route table, built the way New builds it.
func Routes() []Route {
	var out []Route
	for _, rt := range (&server{d: Deps{Gatherer: prometheus.NewRegistry(), RemoteWrite: http.NotFoundHandler(), Alerts: alerts.New(0), PromAPI: noPromAPI{}}}).routeTable() {
		out = append(out, Route{Method: rt.method, Path: rt.path, Role: rt.role.String(), API: rt.api, Mutating: rt.mutating(), Ingest: rt.ingest})
	}
	return out
}

type noPromAPI struct{}

func (noPromAPI) Handler(string) http.HandlerFunc { return http.NotFound }
