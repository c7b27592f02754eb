// Package web is assertd's one HTTP listener: the status UI at /, the JSON
// API under /api/v1/ (described by /api/v1/openapi.json), server-sent events
// for live pages, heartbeat pings at /ping/, Prometheus remote-write at POST
// /api/v1/write, /metrics, /healthz and /readyz.
//
// Reads go to the store and to the engine's snapshot; mutations go to the
// store (silences, settings) or to the engine (break glass, approvals,
// acknowledgements, closing a blast-radius breaker, lifecycle overrides). Who may do what is decided per route (see routes.go):
// named tokens from the config carry the role read, write (read and
// remote-write) or admin; basic-auth users of --web.config.file (see
// ListenerConfig, which also gives the listener its TLS) have the role write.
// Reads may be public by config, remote-write only by web.public_write,
// mutations never are. The UI signs in with a token once and keeps a
// server-side session in an HttpOnly cookie; its forms carry a CSRF token,
// and every change a browser sends passes http.CrossOriginProtection. Every
// mutation is written to the audit trail under the token's name.
//
// Slack and PagerDuty answer assertd's messages on the signed routes (see
// chatops.go): a click on a Slack button and a PagerDuty v3 webhook, each
// authenticated by its sender's signature instead of a token, and applied
// through the same operations as the API under the identity the sender
// vouches for.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store"
)

// Engine is what the web layer needs from the engine: its snapshot and
// configuration for reads, and the operator actions that go through it.
type Engine interface {
	Instances() []assertd.Instance
	// Summary counts the instances by state, with a version that changes
	// with any of them, without copying them (what live pages poll).
	Summary() engine.Summary
	LastReload() engine.ReloadStatus
	Held() int
	Config() *config.Set

	// BreakGlass starts a remediation by hand (audited with its reason).
	BreakGlass(ctx context.Context, req engine.BreakGlassRequest) (assertd.Run, error)
	// Approve decides an approval a run waits for.
	Approve(ctx context.Context, runID, by string, approved bool, comment string, now time.Time) error
	// Acknowledge stops the escalation of an instance's page.
	Acknowledge(ctx context.Context, assert, fingerprint, by, comment string, now time.Time) error
	// SilencesChanged shows a silence created or expired on every instance at once.
	SilencesChanged(ctx context.Context, now time.Time)
	// Breakers returns the blast-radius breakers, their reasons recomputed
	// from the fleet at now; CloseBreaker closes one by hand (audited).
	Breakers(ctx context.Context, now time.Time) ([]assertd.Breaker, error)
	CloseBreaker(ctx context.Context, assert, by, reason string, now time.Time) (assertd.Breaker, error)
	// SetLifecycle sets (or, with state "", removes) the lifecycle state of
	// a target (audited); Lifecycles lists those in force.
	SetLifecycle(ctx context.Context, target assertd.Labels, state, by, reason string, now time.Time) error
	Lifecycles() []assertd.LifecycleOverride
	// EvaluateSoon makes asserts due now (alerts arrived for them).
	EvaluateSoon(names ...string)
}

// Heartbeats is what the web layer reads from the heartbeat tracker.
type Heartbeats interface {
	Names() []string
	Status(name string, now time.Time) (asserts.HeartbeatStatus, bool)
	NextDeadline(name string, now time.Time) (time.Time, bool)
}

// Store is the part of store.Store the web layer reads and writes.
type Store interface {
	Instance(ctx context.Context, assert, fingerprint string) (assertd.Instance, error)
	Transitions(ctx context.Context, f store.TransitionFilter) ([]assertd.Transition, error)
	Decisions(ctx context.Context, f store.DecisionFilter) ([]assertd.Decision, error)
	Run(ctx context.Context, id string) (assertd.Run, error)
	Runs(ctx context.Context, f store.RunFilter) ([]assertd.Run, error)
	Steps(ctx context.Context, runID string) ([]assertd.RunStep, error)
	Approval(ctx context.Context, runID string) (assertd.Approval, error)
	PendingApprovals(ctx context.Context) ([]assertd.Approval, error)
	Messages(ctx context.Context, f store.MessageFilter) ([]assertd.Message, error)
	Heartbeat(ctx context.Context, name string) (assertd.HeartbeatRecord, error)
	Pings(ctx context.Context, heartbeat string, limit int) ([]assertd.Ping, error)
	PutSilence(ctx context.Context, s assertd.Silence) error
	ExpireSilence(ctx context.Context, id, by string, at time.Time) error
	Silence(ctx context.Context, id string) (assertd.Silence, error)
	Silences(ctx context.Context, now time.Time, includeExpired bool) ([]assertd.Silence, error)
	PutSetting(ctx context.Context, s assertd.Setting) error
	DeleteSetting(ctx context.Context, key, by string, at time.Time, reason string) error
	Settings(ctx context.Context) ([]assertd.Setting, error)
	Audit(ctx context.Context, e assertd.AuditEntry) (int64, error)
	AuditLog(ctx context.Context, f store.AuditFilter) ([]assertd.AuditEntry, error)
}

// Deps are the parts the handler serves.
type Deps struct {
	Engine     Engine
	Store      Store
	Heartbeats Heartbeats // nil: no heartbeats
	// Web holds the tokens and public_read; ConfigDir resolves token_file.
	Web config.Web
	// Access, when set, is used instead of the tokens of Web (a reload
	// swaps it).
	Access *Access
	// ChatOps holds the secrets of the signed routes (Slack interactions,
	// PagerDuty webhooks); nil: they answer 404.
	ChatOps   *ChatOps
	ConfigDir string
	Getenv    func(string) string // default os.Getenv

	// Listener, when set, is --web.config.file: its basic-auth users have
	// the role write; its headers and rate limit apply to every response.
	Listener    *ListenerConfig
	Pings       http.Handler // mounted at /ping/
	RemoteWrite http.Handler // POST /api/v1/write (sources.WriteHandler); nil: not offered
	// Alerts takes Alertmanager's webhook at POST /api/v1/alertmanager
	// (the alert feed); nil: not offered.
	Alerts AlertIntake
	// PromAPI serves Prometheus' query API over the embedded TSDB
	// (/api/v1/query …, read role); nil: not offered.
	PromAPI    PromAPI
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer // the web layer's metrics; nil: not registered
	Ready      func() error          // nil: always ready
	Cluster    Cluster               // the replica's membership; nil: one process owns every assert
	// Reload reloads the configuration from its files (POST /-/reload);
	// nil: the route answers 501.
	Reload func(ctx context.Context) error
	Now    func() time.Time // default time.Now
	Logger *slog.Logger
	// EventEvery is how often the event stream looks for changes (default 1s).
	EventEvery time.Duration
	// SessionTTL bounds a UI sign-in (default 12h).
	SessionTTL time.Duration
	// Rules is GET /api/v1/rules: the Prometheus rule groups as
	// Prometheus' API shows them; nil: none.
	Rules func() any
	// Replay runs the replay page's replays (see replay.go); nil: the page
	// says they are not offered. ReplayTimeout bounds one (default
	// DefaultReplayTimeout).
	Replay        Replay
	ReplayTimeout time.Duration
}

// MaxBody bounds request bodies other than remote-write (which has its own).
const MaxBody = 1 << 20

// server holds what the handlers share.
type server struct {
	d        Deps
	log      *slog.Logger
	now      func() time.Time
	access   *Access
	sessions *sessions
	pages    *pages
	metrics  *webMetrics
	routes   []route
	// The signed routes: their counters, the requests seen (against
	// replay), and the client that answers Slack through a response_url.
	signed       *signedMetrics
	replays      *seen
	signedClient *http.Client
	hub          *hub // the event streams' one source of state (events.go)

	newSeries    *seriesBudgets
	alertMetrics *alertMetrics
	logins       loginFailures
	replaying    atomic.Bool // a replay of the replay page runs
}

// New returns the HTTP handler. It fails when a token's secret cannot be read.
func New(d Deps) (http.Handler, error) {
	if d.Engine == nil || d.Store == nil {
		return nil, errors.New("web: an engine and a store are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.EventEvery <= 0 {
		d.EventEvery = time.Second
	}
	if d.ReplayTimeout <= 0 {
		d.ReplayTimeout = DefaultReplayTimeout
	}
	if d.SessionTTL <= 0 {
		d.SessionTTL = 12 * time.Hour
	}
	acc := d.Access
	if acc == nil {
		var err error
		if acc, err = LoadAccess(d.Web, d.ConfigDir, d.Getenv); err != nil {
			return nil, err
		}
	}
	pg, err := loadPages(d.Now)
	if err != nil {
		return nil, err
	}
	s := &server{d: d, log: d.Logger, now: d.Now, access: acc, sessions: newSessions(d.SessionTTL), pages: pg, newSeries: newSeriesBudgets(), alertMetrics: newAlertMetrics()}
	s.metrics = newWebMetrics(s)
	s.hub = newHub(d.EventEvery, s.snapshot)
	s.signed, s.replays, s.signedClient = newSignedMetrics(), newSeen(), &http.Client{Timeout: slackClickTimeout}
	if d.Registerer != nil {
		if err := d.Registerer.Register(s.metrics); err != nil {
			return nil, fmt.Errorf("web metrics: %w", err)
		}
		if err := d.Registerer.Register(s.signed.requests); err != nil {
			return nil, fmt.Errorf("web metrics: %w", err)
		}
		if err := s.alertMetrics.register(d.Registerer); err != nil {
			return nil, fmt.Errorf("web metrics: %w", err)
		}
	}
	s.routes = s.routeTable()
	return s.mux(), nil
}

// Handler returns the HTTP handler, or one that answers 500 with the reason
// when New fails. Prefer New.
func Handler(d Deps) http.Handler {
	h, err := New(d)
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusInternalServerError, "", err.Error())
		})
	}
	return h
}

// Server returns an http.Server with timeouts suited to a monitoring daemon
// (the event stream lifts its own write deadline).
func Server(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}
