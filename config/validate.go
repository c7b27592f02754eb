package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
)

// validate checks assertd.yaml on its own.
func validate(c *Config, p *strictyaml.Positions) strictyaml.Errors {
	var errs strictyaml.Errors
	at := p.Of
	if len(c.Files) == 0 {
		errs.Add(at("files"), "no files: list the assert and remediation files, such as files: [asserts/*.yaml]")
	}
	if c.Defaults.Every == 0 && p.Has("defaults", "every") {
		errs.Add(at("defaults", "every"), "defaults.every must be more than 0s, such as every: 30s")
	}

	if n := c.Defaults.MaxInstances; n < 0 || n == 0 && p.Has("defaults", "max_instances") {
		errs.Add(at("defaults", "max_instances"), "defaults.max_instances must be at least 1, such as max_instances: 10000")
	}
	if f := c.Defaults.Flapping; f.High < 0 || f.High > 100 || f.Low < 0 || f.Low > 100 || (f.High > 0 && f.Low >= f.High) {
		errs.Add(at("defaults", "flapping"), "flapping thresholds are percentages with low below high, such as {high: 50, low: 25}")
	}

	oneOf(&errs, p.In("pings"), false, "key_env", c.Pings.KeyEnv, "key_file", c.Pings.KeyFile)

	// Sources.
	names := []string{EmbeddedName}
	for i, s := range c.Sources.Prometheus {
		loc := p.In("sources", "prometheus", i)
		checkName(&errs, loc, "source", s.Name, names)
		names = append(names, s.Name)
		checkURL(&errs, loc.At("url"), s.URL, "url")
		if s.Timeout < 0 || (s.Timeout == 0 && loc.Has("timeout")) {
			errs.Add(loc.At("timeout"), "timeout must be more than 0s")
		}
		oneOf(&errs, loc, false, "bearer_token_env", s.BearerTokenEnv, "bearer_token_file", s.BearerTokenFile)
		if s.BasicAuth != nil {
			oneOf(&errs, loc.In("basic_auth"), true, "password_env", s.BasicAuth.PasswordEnv, "password_file", s.BasicAuth.PasswordFile)
			if s.BearerTokenEnv != "" || s.BearerTokenFile != "" {
				errs.Add(loc.At("basic_auth"), "use basic_auth or a bearer token, not both")
			}
		}
		for h := range s.Headers {
			if strings.EqualFold(h, "authorization") {
				errs.Add(loc.At("headers", h), "secrets only by reference: use bearer_token_env or basic_auth instead of an Authorization header")
			}
		}
		if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
			errs.Add(loc.At("tls"), "tls needs cert_file and key_file together")
		}
	}
	if d := c.Sources.Default; d != "" && !slices.Contains(names, d) {
		errs.Add(at("sources", "default"), "default source %q is not defined%s; write embedded or the name of a sources.prometheus entry", d, strictyaml.DidYouMean(d, names))
	}
	errs.Append(validatePromRules(c, p, names))
	e := c.Sources.Embedded
	if e.ScrapeInterval < 0 || (e.ScrapeInterval == 0 && p.Has("sources", "embedded", "scrape_interval")) {
		errs.Add(at("sources", "embedded", "scrape_interval"), "scrape_interval must be more than 0s")
	}
	if e.ScrapeTimeout > 0 && e.ScrapeInterval > 0 && e.ScrapeTimeout > e.ScrapeInterval {
		errs.Add(at("sources", "embedded", "scrape_timeout"), "scrape_timeout (%s) must not exceed scrape_interval (%s)", e.ScrapeTimeout, e.ScrapeInterval)
	}
	if e.Retention < 0 || (e.Retention == 0 && p.Has("sources", "embedded", "retention")) {
		errs.Add(at("sources", "embedded", "retention"), "retention must be more than 0s, such as retention: 15d")
	}
	for i, t := range e.Targets {
		loc := p.In("sources", "embedded", "targets", i)
		checkURL(&errs, loc.At("url"), t.URL, "target url")
		for k := range t.Labels {
			if err := assertd.CheckLabelName(k); err != nil {
				errs.Add(loc.At("labels", k), "%v", err)
			}
		}
	}

	errs.Append(validateCluster(c, p))

	// Store.
	switch c.Store.Driver {
	case "", "sqlite":
		if c.Store.DSNEnv != "" || c.Store.DSNFile != "" {
			errs.Add(at("store", "driver"), "dsn_env and dsn_file are for driver: postgres")
		}
	case "postgres":
		oneOf(&errs, p.In("store"), true, "dsn_env", c.Store.DSNEnv, "dsn_file", c.Store.DSNFile)
		if c.Store.Path != "" {
			errs.Add(at("store", "path"), "path is for driver: sqlite")
		}
	default:
		errs.Add(at("store", "driver"), "store driver must be sqlite or postgres, not %q%s", c.Store.Driver, strictyaml.DidYouMean(c.Store.Driver, []string{"sqlite", "postgres"}))
	}

	// Notifiers.
	var channels []string
	for i, n := range c.Notifiers {
		loc := p.In("notifiers", i)
		checkName(&errs, loc, "notifier", n.Name, channels)
		channels = append(channels, n.Name)
		var kinds []string
		if n.Console != nil {
			kinds = append(kinds, "console")
		}
		if n.Slack != nil {
			kinds = append(kinds, "slack")
			s, sl := n.Slack, loc.In("slack")
			tok := s.TokenEnv != "" || s.TokenFile != ""
			hook := s.WebhookURLEnv != "" || s.WebhookURLFile != ""
			switch {
			case tok == hook:
				errs.Add(sl.At(), "slack needs a bot token (token_env or token_file) or an incoming webhook (webhook_url_env or webhook_url_file), one of them")
			case tok:
				oneOf(&errs, sl, true, "token_env", s.TokenEnv, "token_file", s.TokenFile)
				if s.Channel == "" {
					errs.Add(sl.At(), "slack with a bot token needs channel:, such as channel: \"#platform-alerts\"")
				}
			default:
				oneOf(&errs, sl, true, "webhook_url_env", s.WebhookURLEnv, "webhook_url_file", s.WebhookURLFile)
			}
			if s.APIURL != "" {
				checkURL(&errs, sl.At("api_url"), s.APIURL, "api_url")
			}
			oneOf(&errs, sl, false, "signing_secret_env", s.SigningSecretEnv, "signing_secret_file", s.SigningSecretFile)
			if len(s.Users) > 0 && s.SigningSecretEnv == "" && s.SigningSecretFile == "" {
				errs.Add(sl.At("users"), "users: maps who clicks a button: it needs signing_secret_env or signing_secret_file")
			}
			for id, name := range s.Users {
				if !slackUserID.MatchString(id) || strings.TrimSpace(name) == "" {
					errs.Add(sl.At("users", id), "users: maps a Slack user ID (such as U024BE7LH) to a name (such as alice), not %q: %q", id, name)
				}
			}
		}
		if n.PagerDuty != nil {
			kinds = append(kinds, "pagerduty")
			pl := loc.In("pagerduty")
			oneOf(&errs, pl, true, "routing_key_env", n.PagerDuty.RoutingKeyEnv, "routing_key_file", n.PagerDuty.RoutingKeyFile)
			if n.PagerDuty.EventsURL != "" {
				checkURL(&errs, pl.At("events_url"), n.PagerDuty.EventsURL, "events_url")
			}
			oneOf(&errs, pl, false, "webhook_secret_env", n.PagerDuty.WebhookSecretEnv, "webhook_secret_file", n.PagerDuty.WebhookSecretFile)
			if n.PagerDuty.RatePerMinute < 0 {
				errs.Add(pl.At("rate_per_minute"), "rate_per_minute must not be negative")
			}
		}
		if n.Webhook != nil {
			kinds = append(kinds, "webhook")
			wl := loc.In("webhook")
			switch {
			case (n.Webhook.URL == "") == (n.Webhook.URLEnv == ""):
				errs.Add(wl.At(), "webhook needs url: or url_env:, one of them")
			case n.Webhook.URL != "":
				checkURL(&errs, wl.At("url"), n.Webhook.URL, "url")
			}
			oneOf(&errs, wl, false, "secret_env", n.Webhook.SecretEnv, "secret_file", n.Webhook.SecretFile)
		}
		if n.Alertmanager != nil {
			kinds = append(kinds, "alertmanager")
			al := loc.In("alertmanager")
			if len(n.Alertmanager.URLs) == 0 {
				errs.Add(al.At(), "alertmanager needs urls:, such as urls: [http://alertmanager:9093]")
			}
			for j, u := range n.Alertmanager.URLs {
				checkURL(&errs, al.At("urls", j), u, "urls")
			}
		}
		switch len(kinds) {
		case 0:
			errs.Add(loc.At(), "notifier %q has no kind: add one of console: {}, slack: {...}, pagerduty: {...}, webhook: {...}, alertmanager: {...}", n.Name)
		case 1:
		default:
			errs.Add(loc.At(kinds[1]), "notifier %q is both %s: make one notifier per channel", n.Name, strings.Join(kinds, " and "))
		}
	}

	// Escalation policies.
	var policies []string
	knownChannel := func(at strictyaml.Pos, name string) {
		if !slices.Contains(channels, name) {
			errs.Add(at, "unknown notifier %q%s; the notifiers are: %s", name, strictyaml.DidYouMean(name, channels), listOrNone(channels))
		}
	}
	for i, ep := range c.EscalationPolicies {
		loc := p.In("escalation_policies", i)
		checkName(&errs, loc, "escalation policy", ep.Name, policies)
		policies = append(policies, ep.Name)
		if len(ep.Levels) == 0 {
			errs.Add(loc.At("levels"), "escalation policy %q has no levels: add levels: [{after: 0s, notify: [a-notifier]}]", ep.Name)
		}
		var last assertd.Duration
		for j, l := range ep.Levels {
			ll := loc.In("levels", j)
			if len(l.Notify) == 0 {
				errs.Add(ll.At("notify"), "level %d notifies nobody: add notify: [notifier, ...]", j+1)
			}
			for k, ch := range l.Notify {
				knownChannel(ll.At("notify", k), ch)
			}
			if l.After < 0 || (j > 0 && l.After <= last) {
				errs.Add(ll.At("after"), "level %d: after must be later than the level before (%s)", j+1, last)
			}
			last = max(last, l.After)
		}
		for k, ch := range ep.Info {
			knownChannel(loc.At("info", k), ch)
		}
		if ep.Repeat < 0 || (ep.Repeat > 0 && ep.Repeat <= last) {
			errs.Add(loc.At("repeat"), "repeat must be later than the last level (%s)", last)
		}
		for k, l := range ep.GroupBy {
			if err := assertd.CheckLabelName(l); err != nil {
				errs.Add(loc.At("group_by", k), "%v", err)
			}
		}
	}
	if d := c.Defaults.Escalate; d != "" && !slices.Contains(policies, d) {
		errs.Add(at("defaults", "escalate"), "unknown escalation policy %q%s", d, strictyaml.DidYouMean(d, policies))
	}

	// Web.
	if c.Web.Listen != "" {
		if host, port, err := net.SplitHostPort(c.Web.Listen); err != nil {
			errs.Add(at("web", "listen"), "listen must be host:port, such as 127.0.0.1:8080")
		} else if len(c.Web.Tokens) == 0 && !loopback(host) {
			errs.Add(at("web", "listen"), "listen %s is not a loopback address and web.tokens is empty, so nothing would authenticate "+
				"remote-write or changes: add web.tokens (role write for remote-write, admin for changes), or write listen: 127.0.0.1:%s", c.Web.Listen, port)
		}
	}
	if c.Web.IngestListen != "" {
		if _, _, err := net.SplitHostPort(c.Web.IngestListen); err != nil {
			errs.Add(at("web", "ingest_listen"), "ingest_listen must be host:port, such as 0.0.0.0:9091")
		}
	}
	if c.Web.ExternalURL != "" {
		checkURL(&errs, at("web", "external_url"), c.Web.ExternalURL, "external_url")
	}
	var tokens []string
	for i, t := range c.Web.Tokens {
		loc := p.In("web", "tokens", i)
		checkName(&errs, loc, "token", t.Name, tokens)
		tokens = append(tokens, t.Name)
		if t.Role != "read" && t.Role != "write" && t.Role != "admin" {
			errs.Add(loc.At("role"), "role must be read, write (read and remote-write) or admin, not %q", t.Role)
		}
		oneOf(&errs, loc, true, "token_env", t.TokenEnv, "token_file", t.TokenFile)
		for k, m := range t.WriteMatchers {
			if _, err := ParseWriteMatchers(m); err != nil {
				errs.Add(loc.At("write_matchers", k), "%v", err)
			}
		}
	}
	if l := c.Web.NewSeries; l.PerSecond < 0 || l.Burst < 0 {
		errs.Add(at("web", "new_series_limit"), "new_series_limit must not be negative, such as new_series_limit: {per_second: 100, burst: 10000}")
	}

	// Safety.
	s := c.Safety
	if s.MaxConcurrentRuns < 0 {
		errs.Add(at("safety", "max_concurrent_runs"), "max_concurrent_runs must not be negative")
	}
	if b := s.RunBudget; b != nil && (b.Count < 1 || b.Within <= 0) {
		errs.Add(at("safety", "run_budget"), "run_budget needs count ≥ 1 and within > 0s, such as run_budget: {count: 20, within: 1h}")
	}
	if br := s.BlastRadius; br.Share < 0 || br.Share > 1 {
		errs.Add(at("safety", "blast_radius", "share"), "share is a fraction between 0 and 1, such as 0.3")
	}
	if s.BlastRadius.Window < 0 {
		errs.Add(at("safety", "blast_radius", "window"), "window must not be negative")
	}
	for k, l := range s.BlastRadius.By {
		if err := assertd.CheckLabelName(l); err != nil {
			errs.Add(at("safety", "blast_radius", "by", k), "%v", err)
		}
	}
	return errs
}

func checkName(errs *strictyaml.Errors, loc strictyaml.Loc, kind, name string, taken []string) {
	if err := assertd.CheckName(kind, name); err != nil {
		errs.Add(loc.At("name"), "%v", err)
	} else if slices.Contains(taken, name) {
		errs.Add(loc.At("name"), "duplicate %s name %q", kind, name)
	}
}

// oneOf checks a secret given by reference: at most one of the two settings,
// and at least one when required.
// slackUserID is the form of a Slack user ID.
var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

func oneOf(errs *strictyaml.Errors, loc strictyaml.Loc, required bool, k1, v1, k2, v2 string) {
	switch {
	case v1 != "" && v2 != "":
		errs.Add(loc.At(k2), "set %s or %s, not both", k1, k2)
	case required && v1 == "" && v2 == "":
		errs.Add(loc.At(), "missing %s: VARIABLE (or %s: PATH)", k1, k2)
	}
}

func checkURL(errs *strictyaml.Errors, pos strictyaml.Pos, s, what string) {
	u, err := url.Parse(s)
	switch {
	case s == "":
		errs.Add(pos, "%s is empty: write an http:// or https:// URL", what)
	case err != nil:
		errs.Add(pos, "%s does not parse: %v", what, err)
	case u.Scheme != "http" && u.Scheme != "https":
		errs.Add(pos, "%s must start with http:// or https://, got %q", what, s)
	case u.Host == "":
		errs.Add(pos, "%s has no host: %q", what, s)
	case u.User != nil:
		errs.Add(pos, "%s carries credentials: secrets only by reference (use the *_env / *_file settings)", what)
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none (add notifiers:)"
	}
	return fmt.Sprint(strings.Join(names, ", "))
}

var selectorParser = parser.NewParser(parser.Options{})

// ParseWriteMatchers reads one selector of a token's write_matchers, such as
// {job="api"} or {job="api", instance=~"db-.*"}, the way Prometheus reads
// series selectors.
func ParseWriteMatchers(s string) ([]*labels.Matcher, error) {
	ms, err := selectorParser.ParseMetricSelector(s)
	if err != nil {
		return nil, fmt.Errorf("write_matchers %q is not a series selector: %v; write one such as '{job=\"api\"}'", s, err)
	}
	return ms, nil
}

// loopback reports whether a listen host is loopback only.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
