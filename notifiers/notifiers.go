// Package notifiers delivers what the engine writes to the durable outbox:
// pages, resolves, acknowledgements and informational messages (approval
// requests among them), over Slack (with buttons when the channel has a
// signing secret), PagerDuty (Events API v2: trigger, acknowledge, resolve,
// change events), signed webhooks and the console.
//
// Write first, deliver later: the engine commits every message with the
// decision that caused it; a Deliverer claims due messages from the store,
// sends them and marks them delivered, so a 429 or a restart loses nothing.
// Delivery is at least once, made idempotent by dedup keys (PagerDuty) and
// stored provider message IDs (a Slack ts: later messages of an incident go
// to its thread and the resolve updates it).
//
// Each channel is a small Notifier; the Deliverer does everything else:
// per-channel rate limits, exponential backoff with jitter that honours
// Retry-After, dead letters (refusals, or give-up after MaxAge), grouping of
// pages (group_by, group_wait), threading (a later level, a repeat or a
// resolve goes to the thread of the incident's page), and redundancy: a
// channel that keeps failing is reported on the others, and "no channel
// works" in logs and metrics. Who is paged when — levels, repeats,
// acknowledgements, resolves — the engine decides and writes to the outbox;
// the deliverer does not read instances or escalation timelines.
//
// Everything runs on the time it is given (DeliverDue(ctx, now)), so tests
// drive backoff and retries exactly; Run calls it on a ticker.
package notifiers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/store"
)

// Notifier sends one message over one channel. It reports whether a failure
// is worth retrying (a 429, a 5xx, a timeout, a garbled answer) or not (a
// refusal: the same message will never be accepted). On success it sets
// m.ProviderID (a Slack "channel/ts", a PagerDuty dedup key) so later
// messages of the same incident can thread or update. A RetryAfterError in
// the chain tells the deliverer not to try again sooner.
type Notifier interface {
	Notify(ctx context.Context, m *Message) (recoverable bool, err error)
}

// Message is what a notifier renders: one notice, or several for a group.
type Message struct {
	Key      string             // the outbox key (webhook receivers may deduplicate on it)
	Channel  string             // notifier name
	Kind     assertd.NoticeKind // trigger, resolve or info
	DedupKey string             // the incident: assert/fingerprint, or a group's key
	Notices  []assertd.Notice   // at least one
	// Thread is the ProviderID of this incident's first delivered message on
	// this channel ("" when none): replies and updates go there.
	Thread string
	// Resolved is set on a resolve once every notice of the thread has
	// recovered (a group resolves with its last member).
	Resolved bool
	Level    int       // escalation level of a trigger, from 0
	Round    int       // repeat round, from 0
	At       time.Time // when the deliverer sends it
	UI       string    // link to the instance in the UI, "" when web.external_url is unset

	ProviderID string // set by Notify on success
}

// RetryAfterError carries a provider's Retry-After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

func retryAfter(err error) time.Duration {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After
	}
	return 0
}

// Store is the part of store.Store the deliverer uses.
type Store interface {
	Enqueue(ctx context.Context, msgs ...assertd.Message) ([]int64, error)
	Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]assertd.Message, error)
	Ack(ctx context.Context, id int64, owner string, at time.Time, providerID string) error
	Nack(ctx context.Context, id int64, owner string, at time.Time, errText string, retryAt time.Time, dead bool) error
	Release(ctx context.Context, id int64, owner string, next time.Time, note string) error
	Messages(ctx context.Context, f store.MessageFilter) ([]assertd.Message, error)
	Decisions(ctx context.Context, f store.DecisionFilter) ([]assertd.Decision, error)
	Instances(ctx context.Context, assert string) ([]assertd.Instance, error)
}

// Options configure New. Zero values take the defaults.
type Options struct {
	Store      Store // required
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are not registered
	Now        func() time.Time      // Run's clock (default time.Now)
	Stdout     io.Writer             // the console notifier's output (default os.Stdout)
	Transport  http.RoundTripper     // HTTP transport of every channel (default http.DefaultTransport)
	Timeout    time.Duration         // one send (default 10s; a webhook's own timeout wins)
	Owner      string                // claim owner (default host/pid)
	Poll       time.Duration         // Run's interval (default 1s)
	Lease      time.Duration         // how long a claim lasts (default 1m)
	Batch      int                   // messages claimed at once (default 100)
	// Backoff of a failing channel: Base·2ⁿ up to Max, with jitter; a
	// Retry-After is never undercut.
	BackoffBase, BackoffMax time.Duration // default 1s, 1m
	MaxAge                  time.Duration // a message still failing this old is dead (default 24h)
	FailingAfter            time.Duration // a channel failing this long is reported on the others (default 1m)
	Jitter                  func() float64
	// Notifiers replaces channels by name (tests).
	Notifiers map[string]Notifier
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 10*time.Second)
	def(&o.Poll, time.Second)
	def(&o.Lease, time.Minute)
	def(&o.BackoffBase, time.Second)
	def(&o.BackoffMax, time.Minute)
	def(&o.MaxAge, 24*time.Hour)
	def(&o.FailingAfter, time.Minute)
	if o.Batch <= 0 {
		o.Batch = 100
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Owner == "" {
		h, _ := os.Hostname()
		o.Owner = fmt.Sprintf("%s/%d/%x", h, os.Getpid(), rand.Uint32())
	}
}

// secrets resolves the secret references of one notifier and remembers
// every value so that no log line or error carries one.
type secrets struct {
	dir    string
	getenv func(string) string
	values []string
}

// get reads a secret given by variable or file. It is an error, naming the
// channel and the setting (never the value), when the reference is set but
// yields nothing. want says whether one of them must be set.
func (s *secrets) get(channel, kind, envKey, env, fileKey, file string, want bool) (string, error) {
	var v string
	switch {
	case env != "":
		v = strings.TrimSpace(s.getenv(env))
		if v == "" {
			return "", fmt.Errorf("notifier %q: %s.%s names $%s, which is empty or unset", channel, kind, envKey, env)
		}
	case file != "":
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(s.dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", fmt.Errorf("notifier %q: %s.%s: cannot read %s: %w", channel, kind, fileKey, p, err)
		}
		v = strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("notifier %q: %s.%s: %s is empty", channel, kind, fileKey, p)
		}
	case want:
		return "", fmt.Errorf("notifier %q: %s needs %s or %s", channel, kind, envKey, fileKey)
	default:
		return "", nil
	}
	s.values = append(s.values, v)
	return v, nil
}

// build makes the notifier of one configured channel.
func build(n config.Notifier, sec *secrets, o Options, ui string) (Notifier, string, error) {
	client := func(timeout time.Duration) *http.Client {
		return &http.Client{Transport: captureTransport{o.Transport}, Timeout: timeout}
	}
	switch {
	case n.Console != nil:
		return &Console{w: o.Stdout}, "console", nil
	case n.Slack != nil:
		c := n.Slack
		tok, err := sec.get(n.Name, "slack", "token_env", c.TokenEnv, "token_file", c.TokenFile, false)
		if err != nil {
			return nil, "", err
		}
		hook := ""
		if tok == "" {
			if hook, err = sec.get(n.Name, "slack", "webhook_url_env", c.WebhookURLEnv, "webhook_url_file", c.WebhookURLFile, true); err != nil {
				return nil, "", err
			}
		}
		return newSlack(c, tok, hook, client(o.Timeout)), "slack", nil
	case n.PagerDuty != nil:
		c := n.PagerDuty
		key, err := sec.get(n.Name, "pagerduty", "routing_key_env", c.RoutingKeyEnv, "routing_key_file", c.RoutingKeyFile, true)
		if err != nil {
			return nil, "", err
		}
		return newPagerDuty(c, key, client(o.Timeout), ui), "pagerduty", nil
	case n.Webhook != nil:
		c := n.Webhook
		url := c.URL
		if c.URLEnv != "" {
			var err error
			if url, err = sec.get(n.Name, "webhook", "url_env", c.URLEnv, "", "", true); err != nil {
				return nil, "", err
			}
		}
		key, err := sec.get(n.Name, "webhook", "secret_env", c.SecretEnv, "secret_file", c.SecretFile, false)
		if err != nil {
			return nil, "", err
		}
		timeout := o.Timeout
		if c.Timeout > 0 {
			timeout = c.Timeout.Std()
		}
		return &Webhook{url: url, secret: []byte(key), client: client(timeout)}, "webhook", nil
	case n.Alertmanager != nil:
		timeout := o.Timeout
		if n.Alertmanager.Timeout > 0 {
			timeout = n.Alertmanager.Timeout.Std()
		}
		return newAlertmanager(n.Alertmanager.URLs, client(timeout), ui), "alertmanager", nil
	}
	return nil, "", fmt.Errorf("notifier %q has no kind: add one of console: {}, slack: {...}, pagerduty: {...}, webhook: {...}, alertmanager: {...}", n.Name)
}

// redactor replaces every secret value in a text.
type redactor []string

func (r redactor) String(s string) string {
	for _, v := range r {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[secret]")
		}
	}
	return s
}
