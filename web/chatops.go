package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assertd/assertd/config"
)

// This file: the signed routes, where Slack and PagerDuty answer the
// messages assertd sent them — a click on a button of a Slack message
// (POST /api/v1/slack/interactions) and a PagerDuty v3 webhook (POST
// /api/v1/pagerduty/webhook). They carry no token: each request is
// authenticated by its sender's signature, made with a secret the
// configuration names by reference on the channel (slack
// signing_secret_env/_file, pagerduty webhook_secret_env/_file). A request
// that is unsigned, badly signed, stale or replayed is refused with 401 and
// changes nothing; a signed one is applied through the same operations as
// the API (acknowledge, approve, silence), audited under the identity the
// sender vouches for.

// The signed routes. Their role is roleSigned: no token's role reaches
// them, their handler checks the sender's signature (serveRoute does not
// authorize them, and no browser cross-origin check applies: servers call
// them, never a browser).
const (
	PathSlackInteractions = "/api/v1/slack/interactions"
	PathPagerDutyWebhook  = "/api/v1/pagerduty/webhook"
)

func (s *server) signedRoutes() []route {
	return []route{
		{method: http.MethodPost, path: PathSlackInteractions, role: roleSigned, api: true, h: s.slackInteractions},
		{method: http.MethodPost, path: PathPagerDutyWebhook, role: roleSigned, api: true, h: s.pagerDutyWebhook},
	}
}

// ChatOps holds the secrets the signed routes check, read from the
// notifiers of a configuration. A reload swaps in a new one.
type ChatOps struct {
	mu    sync.RWMutex
	slack []slackApp
	pd    []pdHook
}

// slackApp is one slack notifier whose Slack app sends its clicks here.
type slackApp struct {
	channel string
	secret  string
	users   map[string]string // Slack user ID → name; empty: anyone, as slack:<ID>
	// responseHosts are where a click's response_url may point: Slack's
	// hooks.slack.com, or the host of the channel's api_url.
	responseHosts []string
}

// pdHook is one pagerduty notifier with a v3 webhook subscription.
type pdHook struct {
	channel string
	secret  string
}

// LoadChatOps reads the signing secrets of the slack notifiers and the
// webhook secrets of the pagerduty notifiers from their variables (getenv)
// or files (relative to dir). Errors name the notifier and the setting,
// never the secret.
func LoadChatOps(notifiers []config.Notifier, dir string, getenv func(string) string) (*ChatOps, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	c := &ChatOps{}
	for _, n := range notifiers {
		switch {
		case n.Slack != nil:
			sec, err := readSecret(n.Name, "slack.signing_secret", n.Slack.SigningSecretEnv, n.Slack.SigningSecretFile, dir, getenv)
			if err != nil {
				return nil, err
			}
			if sec == "" {
				continue
			}
			hosts := []string{"hooks.slack.com"}
			if n.Slack.APIURL != "" {
				if u, err := url.Parse(n.Slack.APIURL); err == nil && u.Host != "" {
					hosts = append(hosts, u.Host)
				}
			}
			c.slack = append(c.slack, slackApp{channel: n.Name, secret: sec, users: n.Slack.Users, responseHosts: hosts})
		case n.PagerDuty != nil:
			sec, err := readSecret(n.Name, "pagerduty.webhook_secret", n.PagerDuty.WebhookSecretEnv, n.PagerDuty.WebhookSecretFile, dir, getenv)
			if err != nil {
				return nil, err
			}
			if sec != "" {
				c.pd = append(c.pd, pdHook{channel: n.Name, secret: sec})
			}
		}
	}
	return c, nil
}

// readSecret reads a secret given by variable or file; "" when neither is set.
func readSecret(channel, what, env, file, dir string, getenv func(string) string) (string, error) {
	switch {
	case env != "":
		v := strings.TrimSpace(getenv(env))
		if v == "" {
			return "", fmt.Errorf("notifier %q: %s_env names $%s, which is empty or unset", channel, what, env)
		}
		return v, nil
	case file != "":
		p := file
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return "", fmt.Errorf("notifier %q: %s_file: cannot read %s: %w", channel, what, p, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("notifier %q: %s_file: %s is empty", channel, what, p)
		}
		return v, nil
	}
	return "", nil
}

// Swap puts the secrets of n in force.
func (c *ChatOps) Swap(n *ChatOps) {
	n.mu.RLock()
	sl, pd := n.slack, n.pd
	n.mu.RUnlock()
	c.mu.Lock()
	c.slack, c.pd = sl, pd
	c.mu.Unlock()
}

func (c *ChatOps) snapshot() ([]slackApp, []pdHook) {
	if c == nil {
		return nil, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.slack, c.pd
}

// SecretsChanged names the notifiers of n whose signing or webhook secret
// differs from the one in force.
func (c *ChatOps) SecretsChanged(n *ChatOps) []string {
	curS, curP := c.snapshot()
	nextS, nextP := n.snapshot()
	var out []string
	for _, a := range nextS {
		for _, b := range curS {
			if a.channel == b.channel && a.secret != b.secret {
				out = append(out, a.channel)
			}
		}
	}
	for _, a := range nextP {
		for _, b := range curP {
			if a.channel == b.channel && a.secret != b.secret {
				out = append(out, a.channel)
			}
		}
	}
	return out
}

// SignatureWindow is how old (or how far ahead) a signed Slack request may
// be: Slack's own five minutes, checked by slack.NewSecretsVerifier.
const SignatureWindow = 5 * time.Minute

// maxSeen bounds the signatures and event IDs remembered against replay.
const maxSeen = 10000

// seen remembers signed requests for as long as they could be replayed:
// a second request with the same signature (Slack) or event ID (PagerDuty)
// within the window is refused. It runs on the wall clock, as the Slack
// library's timestamp check does: a request stays remembered as long as
// that check would let it in.
type seen struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]time.Time // key → until when it is remembered
}

func newSeen() *seen { return &seen{now: time.Now, m: map[string]time.Time{}} }

// first records key until until and reports whether it is new. When the
// memory is full of keys still in their window, it refuses (false, full).
func (sn *seen) first(key string, until time.Time) (fresh, full bool) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	now := sn.now()
	if t, ok := sn.m[key]; ok && now.Before(t) {
		return false, false
	}
	if len(sn.m) >= maxSeen {
		for k, t := range sn.m {
			if !now.Before(t) {
				delete(sn.m, k)
			}
		}
		if len(sn.m) >= maxSeen {
			return false, true
		}
	}
	sn.m[key] = until
	return true, false
}

// signedMetrics count what the signed routes did with each request.
type signedMetrics struct {
	requests *prometheus.CounterVec
}

// The results of a signed request.
const (
	resultApplied    = "applied"    // signed, and its action was carried out
	resultFailed     = "failed"     // signed, but the action was refused (not paged, already decided …)
	resultForbidden  = "forbidden"  // signed, by a Slack user not in users:
	resultIgnored    = "ignored"    // signed, nothing to do (a link, an event assertd does not act on)
	resultUnknown    = "unknown"    // signed, about an incident assertd did not open
	resultDuplicate  = "duplicate"  // a PagerDuty event delivered again
	resultUnsigned   = "unsigned"   // no signature, or not one of ours
	resultStale      = "stale"      // signed outside the window
	resultReplayed   = "replayed"   // the same signed request again
	resultUnprepared = "unprepared" // the channel has no secret configured
)

func newSignedMetrics() *signedMetrics {
	m := &signedMetrics{requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "assertd_signed_requests_total",
		Help: "Requests of Slack and PagerDuty to the signed routes, by sender and result (applied, failed, forbidden, ignored, unknown, duplicate, unsigned, stale, replayed, unprepared)."},
		[]string{"sender", "result"})}
	for _, sender := range []string{"slack", "pagerduty"} {
		for _, r := range []string{resultApplied, resultFailed, resultForbidden, resultIgnored, resultUnknown, resultDuplicate,
			resultUnsigned, resultStale, resultReplayed, resultUnprepared} {
			m.requests.WithLabelValues(sender, r)
		}
	}
	return m
}

func (m *signedMetrics) count(sender, result string) {
	m.requests.WithLabelValues(sender, result).Inc()
}
