// Package config is assertd.yaml, the file that says which assert and
// remediation files to load and how assertd reaches its sources, store,
// notifiers and people, and the loader that reads all of them into one
// checked set, reporting every problem as file:line:col.
package config

import (
	"reflect"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/remediations"
)

// Config is assertd.yaml.
type Config struct {
	// Files lists the assert and remediation files, as paths or globs
	// relative to the config file.
	Files              []string            `yaml:"files" jsonschema_description:"Assert and remediation files: paths or globs, relative to this file."`
	DataDir            string              `yaml:"data_dir" jsonschema_description:"Where the embedded store and TSDB keep their files (default ./data)."`
	Defaults           Defaults            `yaml:"defaults"`
	Heartbeats         []asserts.Heartbeat `yaml:"heartbeats"`
	Pings              asserts.Pings       `yaml:"pings"`
	Sources            Sources             `yaml:"sources"`
	Store              Store               `yaml:"store"`
	Notifiers          []Notifier          `yaml:"notifiers"`
	EscalationPolicies []EscalationPolicy  `yaml:"escalation_policies"`
	Web                Web                 `yaml:"web"`
	Safety             Safety              `yaml:"safety"`
	// PrometheusRules: how the Prometheus rule files among Files are
	// evaluated, and the bindings that give their alerts remediations.
	PrometheusRules PrometheusRules `yaml:"prometheus_rules"`
	Cluster         Cluster         `yaml:"cluster"`
}

// KeyHints explains keys that are not accepted at the top of assertd.yaml.
func (*Config) KeyHints() map[string]string {
	h := "asserts and remediations live in their own files: list them under files:"
	return map[string]string{
		"asserts": h, "remediations": h, "rule_files": "list Prometheus rule files under files: too", "include": "write files:",
		"global": "write defaults:", "alerting": "write notifiers: and escalation_policies:",
	}
}

// Defaults fill in what asserts and heartbeats leave out.
type Defaults struct {
	Every        assertd.Duration `yaml:"every" jsonschema_description:"Evaluation interval of asserts without every or schedule (default 30s)."`
	UncertainFor assertd.Duration `yaml:"uncertain_for" jsonschema_description:"How long an instance may be uncertain before it is escalated (default 5m)."`
	Grace        assertd.Duration `yaml:"grace" jsonschema_description:"Grace of heartbeats that set none (default 5m)."`
	Escalate     string           `yaml:"escalate" jsonschema_description:"Escalation policy of asserts that name none."`
	MaxInstances int              `yaml:"max_instances" jsonschema:"minimum=1" jsonschema_description:"The most instances one assert may have, unless it sets max_instances (default 10000)."`
	Flapping     Flapping         `yaml:"flapping"`
	// ExpectedDisruption bounds how long a target in an expected-disruption
	// lifecycle state (installing, upgrading, restart, retiring) may stay
	// violated unpaged.
	ExpectedDisruption assertd.Duration `yaml:"expected_disruption" jsonschema_description:"How long a target that is installing, upgrading, restarting or retiring may stay violated before it is paged anyway (default 30m)."`
}

// Flapping sets the thresholds of flap detection (percent of weighted state
// changes over the last 21 results, Nagios-style).
type Flapping struct {
	High float64 `yaml:"high" jsonschema_description:"Start flapping above this percentage (default 50)."`
	Low  float64 `yaml:"low" jsonschema_description:"Stop flapping below this percentage (default 25)."`
}

// Sources says where values come from.
type Sources struct {
	Default    string       `yaml:"default" jsonschema_description:"Source of asserts that name none: embedded (default) or a prometheus source's name."`
	Embedded   Embedded     `yaml:"embedded"`
	Prometheus []Prometheus `yaml:"prometheus"`
}

// EmbeddedName is the name of the embedded TSDB source.
const EmbeddedName = "embedded"

// Embedded is the in-process Prometheus TSDB, fed by scraping and remote-write.
type Embedded struct {
	Retention      assertd.Duration `yaml:"retention" jsonschema_description:"How long samples are kept (default 15d)."`
	ScrapeInterval assertd.Duration `yaml:"scrape_interval" jsonschema_description:"Default 15s."`
	ScrapeTimeout  assertd.Duration `yaml:"scrape_timeout" jsonschema_description:"Default 10s; at most scrape_interval."`
	Targets        []ScrapeTarget   `yaml:"targets"`
}

// ScrapeTarget is one /metrics endpoint to scrape.
type ScrapeTarget struct {
	URL    string            `yaml:"url" jsonschema:"required"`
	Labels map[string]string `yaml:"labels"`
}

// Prometheus is a remote Prometheus-compatible query API (Prometheus, Thanos,
// Mimir, VictoriaMetrics).
type Prometheus struct {
	Name            string            `yaml:"name" jsonschema:"required"`
	URL             string            `yaml:"url" jsonschema:"required"`
	Timeout         assertd.Duration  `yaml:"timeout" jsonschema_description:"Query timeout (default 30s)."`
	Headers         map[string]string `yaml:"headers" jsonschema_description:"Extra headers, such as X-Scope-OrgID for Mimir tenants. No secrets here."`
	BearerTokenEnv  string            `yaml:"bearer_token_env"`
	BearerTokenFile string            `yaml:"bearer_token_file"`
	BasicAuth       *BasicAuth        `yaml:"basic_auth"`
	TLS             TLS               `yaml:"tls"`
}

// KeyHints explains keys that are not accepted.
func (*Prometheus) KeyHints() map[string]string {
	return map[string]string{"bearer_token": "secrets only by reference: write bearer_token_env: VARIABLE or bearer_token_file: PATH"}
}

// BasicAuth is HTTP basic authentication; the password only by reference.
type BasicAuth struct {
	Username     string `yaml:"username" jsonschema:"required"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
}

// KeyHints explains keys that are not accepted.
func (*BasicAuth) KeyHints() map[string]string {
	return map[string]string{"password": "secrets only by reference: write password_env: VARIABLE or password_file: PATH"}
}

// TLS configures a client connection.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Store says where state is kept.
type Store struct {
	Driver  string `yaml:"driver" jsonschema:"enum=sqlite,enum=postgres" jsonschema_description:"sqlite (default, a file under data_dir) or postgres."`
	Path    string `yaml:"path" jsonschema_description:"SQLite file (default data_dir/assertd.db)."`
	DSNEnv  string `yaml:"dsn_env" jsonschema_description:"Environment variable holding the PostgreSQL connection string."`
	DSNFile string `yaml:"dsn_file" jsonschema_description:"File holding the PostgreSQL connection string."`
}

// KeyHints explains keys that are not accepted.
func (*Store) KeyHints() map[string]string {
	return map[string]string{"dsn": "connection strings carry passwords: write dsn_env: VARIABLE or dsn_file: PATH"}
}

// Notifier is one channel; exactly one of its kinds is set.
type Notifier struct {
	Name      string     `yaml:"name" jsonschema:"required"`
	Console   *Console   `yaml:"console"`
	Slack     *Slack     `yaml:"slack"`
	PagerDuty *PagerDuty `yaml:"pagerduty"`
	Webhook   *Webhook   `yaml:"webhook"`
	// Alertmanager forwards pages to Alertmanagers (notifiers/alertmanager.go).
	Alertmanager *AlertmanagerNotifier `yaml:"alertmanager"`
}

// KeyHints explains keys that are not accepted.
func (*Notifier) KeyHints() map[string]string {
	return map[string]string{"type": "write the kind as a key: slack: {...}, pagerduty: {...}, webhook: {...} or console: {}"}
}

// Console prints messages on standard output.
type Console struct{}

// Slack posts with a bot token (chat.postMessage, threads, updates) or to an
// incoming webhook.
type Slack struct {
	TokenEnv       string `yaml:"token_env" jsonschema_description:"Variable holding a bot token (xoxb-...)."`
	TokenFile      string `yaml:"token_file"`
	WebhookURLEnv  string `yaml:"webhook_url_env" jsonschema_description:"Variable holding an incoming-webhook URL, instead of a token."`
	WebhookURLFile string `yaml:"webhook_url_file"`
	Channel        string `yaml:"channel" jsonschema_description:"Channel for chat.postMessage, such as #platform-alerts."`
	APIURL         string `yaml:"api_url" jsonschema_description:"Slack API base URL (default https://slack.com/api/)."`
	// Interactivity: with a signing secret, pages and approval requests
	// carry buttons, and POST /api/v1/slack/interactions takes their clicks.
	SigningSecretEnv  string `yaml:"signing_secret_env" jsonschema_description:"Variable holding the Slack app's signing secret: pages and approval requests carry buttons (Acknowledge, Approve, Refuse, Silence 1h), answered at /api/v1/slack/interactions."`
	SigningSecretFile string `yaml:"signing_secret_file"`
	// Users maps Slack user IDs to the names the audit trail records; when
	// set, only these users may act from Slack.
	Users map[string]string `yaml:"users" jsonschema_description:"Slack user ID (U…) → the name recorded in the audit trail. When set, only these users may act from Slack; unset, anyone in the channel acts as slack:<user ID>."`
}

// KeyHints explains keys that are not accepted.
func (*Slack) KeyHints() map[string]string {
	return map[string]string{
		"token":          "secrets only by reference: write token_env: VARIABLE or token_file: PATH",
		"webhook_url":    "a webhook URL is a secret: write webhook_url_env: VARIABLE or webhook_url_file: PATH",
		"signing_secret": "secrets only by reference: write signing_secret_env: VARIABLE or signing_secret_file: PATH",
	}
}

// PagerDuty sends Events API v2 events.
type PagerDuty struct {
	RoutingKeyEnv  string `yaml:"routing_key_env" jsonschema_description:"Variable holding the integration (routing) key."`
	RoutingKeyFile string `yaml:"routing_key_file"`
	EventsURL      string `yaml:"events_url" jsonschema_description:"Events API v2 endpoint (default https://events.pagerduty.com/v2/enqueue)."`
	RatePerMinute  int    `yaml:"rate_per_minute" jsonschema_description:"Events per minute for this key (default 100; PagerDuty allows about 120)."`
	// ChangeEvents sends remediation runs as change events.
	ChangeEvents bool `yaml:"change_events" jsonschema_description:"Send the informational messages of remediation runs as PagerDuty change events instead of incidents."`
	// The secret of a v3 webhook subscription: acknowledgements and
	// resolves made in PagerDuty reach assertd at /api/v1/pagerduty/webhook.
	WebhookSecretEnv  string `yaml:"webhook_secret_env" jsonschema_description:"Variable holding the secret of the PagerDuty v3 webhook subscription that posts to /api/v1/pagerduty/webhook."`
	WebhookSecretFile string `yaml:"webhook_secret_file"`
}

// KeyHints explains keys that are not accepted.
func (*PagerDuty) KeyHints() map[string]string {
	return map[string]string{
		"routing_key":     "secrets only by reference: write routing_key_env: VARIABLE or routing_key_file: PATH",
		"integration_key": "write routing_key_env: VARIABLE or routing_key_file: PATH",
		"service_key":     "write routing_key_env: VARIABLE or routing_key_file: PATH",
		"webhook_secret":  "secrets only by reference: write webhook_secret_env: VARIABLE or webhook_secret_file: PATH",
	}
}

// Webhook posts a versioned JSON payload signed with HMAC-SHA256.
type Webhook struct {
	URL        string           `yaml:"url"`
	URLEnv     string           `yaml:"url_env" jsonschema_description:"Variable holding the URL, when the URL itself is a secret."`
	SecretEnv  string           `yaml:"secret_env" jsonschema_description:"Variable holding the HMAC signing secret."`
	SecretFile string           `yaml:"secret_file"`
	Timeout    assertd.Duration `yaml:"timeout" jsonschema_description:"Default 10s."`
}

// KeyHints explains keys that are not accepted.
func (*Webhook) KeyHints() map[string]string {
	return map[string]string{"secret": "secrets only by reference: write secret_env: VARIABLE or secret_file: PATH"}
}

// AlertmanagerNotifier posts pages as alerts to the /api/v2/alerts of every
// Alertmanager listed (as Prometheus does), and resolves them on recovery.
type AlertmanagerNotifier struct {
	URLs    []string         `yaml:"urls" jsonschema:"required" jsonschema_description:"Base URLs of the Alertmanagers, such as http://alertmanager:9093; each gets every alert."`
	Timeout assertd.Duration `yaml:"timeout" jsonschema_description:"Default 10s."`
}

// EscalationPolicy says who is paged, in what order, on which channels.
type EscalationPolicy struct {
	Name      string           `yaml:"name" jsonschema:"required"`
	Levels    []Level          `yaml:"levels" jsonschema:"required"`
	Repeat    assertd.Duration `yaml:"repeat" jsonschema_description:"Start again from the first level after this, until acknowledged or resolved."`
	Info      []string         `yaml:"info" jsonschema_description:"Channels for informational messages (auto-healed incidents); never pages."`
	GroupBy   []string         `yaml:"group_by" jsonschema_description:"Labels that group pages into one message (default: the assert)."`
	GroupWait assertd.Duration `yaml:"group_wait" jsonschema_description:"How long to gather a group before the first page (default 5s)."`
}

// Level is one step of an escalation.
type Level struct {
	After  assertd.Duration `yaml:"after" jsonschema_description:"Delay after the escalation starts."`
	Notify []string         `yaml:"notify" jsonschema:"required" jsonschema_description:"Channels (notifier names) paged at once, redundantly."`
}

// Web is the HTTP listener: UI, API, pings, remote-write, metrics.
type Web struct {
	Listen      string `yaml:"listen" jsonschema_description:"Address (default 127.0.0.1:8080). Any other than a loopback address needs web.tokens (or basic-auth users in --web.config.file)."`
	ExternalURL string `yaml:"external_url" jsonschema_description:"URL of the UI as people reach it, for links in messages; the browser origin trusted for changes; https makes the session cookie Secure."`
	// IngestListen is a second address that serves ingestion only.
	IngestListen string  `yaml:"ingest_listen" jsonschema_description:"A second address serving only remote-write, heartbeat pings and /healthz, /readyz (with the same TLS and credentials), so that they can be reachable where the UI and the API are not. Read at start."`
	PublicRead   bool    `yaml:"public_read" jsonschema_description:"Allow reading without a token. Changes always need an admin token."`
	PublicWrite  bool    `yaml:"public_write" jsonschema_description:"Accept remote-write (POST /api/v1/write) without credentials. Anyone who reaches the listener can then feed the engine."`
	Tokens       []Token `yaml:"tokens"`
	// NewSeries bounds the series each writer may create through
	// remote-write.
	NewSeries NewSeriesLimit `yaml:"new_series_limit"`
}

// NewSeriesLimit is a token bucket of new series per writer (a token, a
// basic-auth user, or anonymous under public_write).
type NewSeriesLimit struct {
	PerSecond float64 `yaml:"per_second" jsonschema_description:"New series a writer may create per second through remote-write (default 100)."`
	Burst     int     `yaml:"burst" jsonschema_description:"New series a writer may create at once (default 10000); a request with more is refused with 429."`
}

// Token is a named API token.
type Token struct {
	Name      string `yaml:"name" jsonschema:"required"`
	Role      string `yaml:"role" jsonschema:"required,enum=read,enum=write,enum=admin" jsonschema_description:"read: the API and the UI; write: read and remote-write; admin: everything."`
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	// WriteMatchers restrict the series the token may remote-write: each
	// series must match one of these selectors.
	WriteMatchers []string `yaml:"write_matchers" jsonschema_description:"Selectors the series this token remote-writes must match (any one of them), such as '{job=\"api\"}'; a request with another series is refused whole with 403."`
}

// KeyHints explains keys that are not accepted.
func (*Token) KeyHints() map[string]string {
	return map[string]string{"token": "secrets only by reference: write token_env: VARIABLE or token_file: PATH"}
}

// Safety holds the global limits on automation.
type Safety struct {
	KillSwitch        bool                `yaml:"kill_switch" jsonschema_description:"Start with automation stopped."`
	MaxConcurrentRuns int                 `yaml:"max_concurrent_runs" jsonschema_description:"Remediation runs at once (default 4)."`
	RunBudget         *remediations.Limit `yaml:"run_budget" jsonschema_description:"Runs allowed across all remediations per window."`
	BlastRadius       BlastRadius         `yaml:"blast_radius"`
}

// BlastRadius suspends automation when too many instances turn violated at once.
type BlastRadius struct {
	Disabled bool             `yaml:"disabled"`
	Share    float64          `yaml:"share" jsonschema_description:"Share of an assert's instances (default 0.3)."`
	Window   assertd.Duration `yaml:"window" jsonschema_description:"Window in which they turn violated (default 5m)."`
	By       []string         `yaml:"by" jsonschema_description:"Also count per value of these labels, such as zone."`
}

var reflectConfig = reflect.TypeFor[Config]()
