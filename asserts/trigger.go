package asserts

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/alerts"
	"github.com/assertd/assertd/internal/strictyaml"
)

// Trigger makes an assert alert-triggered: its instances are the alerts of
// one sender that a selector matches, one instance per alert.
type Trigger struct {
	Alertmanager string           `yaml:"alertmanager" jsonschema_description:"Selector over the alerts Alertmanager posts to /api/v1/alertmanager, such as '{alertname=\"PostgresqlDown\"}'."`
	Rules        string           `yaml:"rules" jsonschema_description:"Selector over the alerts of the Prometheus rule files assertd evaluates, such as '{alertname=\"PostgresqlDown\"}'."`
	Silence      assertd.Duration `yaml:"silence" jsonschema_description:"alertmanager only: while a run fixes the alert, silence it in the Alertmanager that sent it (its externalURL), for at most this long; the silence is expired when the run ends."`
	StaleAfter   assertd.Duration `yaml:"stale_after" jsonschema_description:"A firing alert its sender has not reported again for this long is uncertain (default for alertmanager: 4h10m, its default repeat_interval and group_interval; set it above yours)."`
}

// KeyHints explains keys people write by habit.
func (*Trigger) KeyHints() map[string]string {
	return map[string]string{
		"matchers": `write the sender and a selector: alertmanager: '{alertname="PostgresqlDown"}'`,
		"alert":    `write the sender and a selector: alertmanager: '{alertname="PostgresqlDown"}'`,
	}
}

// Verify is how an alert-triggered assert checks a fix without trusting
// the alert alone: queries with an expect, the alert resolving within a
// time, or both.
type Verify struct {
	Query          map[string]string `yaml:"query" jsonschema_description:"Name → PromQL, against the assert's source; each name is a number in expect."`
	Expect         string            `yaml:"expect" jsonschema_description:"expr-lang boolean over the query names that must hold for the instance after the fix."`
	ResolvedWithin assertd.Duration  `yaml:"resolved_within" jsonschema_description:"The alert must resolve within this long of the verify step's start (give the step a timeout above it)."`
}

// DefaultStaleAfterAlertmanager is how long a firing alert from
// Alertmanager is trusted without a repeat: Alertmanager's default
// repeat_interval (4h) and group_interval (5m), with a margin.
const DefaultStaleAfterAlertmanager = 4*time.Hour + 10*time.Minute

// CompiledTrigger is a trigger ready to select alerts.
type CompiledTrigger struct {
	Sender   string
	Selector string
	Matchers []assertd.Matcher
	Set      *assertd.MatcherSet
	// StaleAfter: a firing alert not reported again for this long is
	// uncertain (0: only the sender's own allowance is judged).
	StaleAfter time.Duration
	// Silence: while a run fixes an alert, it is silenced in the
	// Alertmanager that sent it, for at most this long (0: not silenced).
	Silence time.Duration
	// ResolvedWithin: a verify waits this long for the alert to resolve
	// (0: it does not wait for it).
	ResolvedWithin time.Duration
	// Check holds the verify queries and expect; nil when there are none.
	Check *Compiled
}

// ParseSelector reads a PromQL selector such as {alertname="X",severity=~"page|crit"}.
func ParseSelector(s string) ([]assertd.Matcher, error) {
	ms, err := promql.ParseMetricSelector(s)
	if err != nil {
		return nil, fmt.Errorf("not a selector: %s; write one such as '{alertname=\"PostgresqlDown\"}'", promqlMsg(err))
	}
	ops := map[labels.MatchType]assertd.MatchOp{labels.MatchEqual: assertd.MatchEqual, labels.MatchNotEqual: assertd.MatchNotEqual,
		labels.MatchRegexp: assertd.MatchRegexp, labels.MatchNotRegexp: assertd.MatchNotRegex}
	out := make([]assertd.Matcher, 0, len(ms))
	for _, m := range ms {
		name := m.Name
		if name == model.MetricNameLabel {
			name = "alertname" // X{…} selects the alerts named X
		}
		out = append(out, assertd.Matcher{Name: name, Op: ops[m.Type], Value: m.Value})
	}
	return out, nil
}

// compileTrigger compiles trigger: and verify: into c.
func (c *Compiled) compileTrigger(loc strictyaml.Loc, def Defaults, errs *strictyaml.Errors) {
	a, at := c.Assert, loc.At
	for _, key := range []string{"query", "expect", "clear", "clear_for", "join", "no_data", "missing"} {
		if loc.Has(key) {
			errs.Add(at(key), "an assert with trigger: is violated while its alert fires: remove %s: (put the queries that check a fix under verify:)", key)
		}
	}
	if a.Trigger == nil {
		errs.Add(at("verify"), "verify: belongs to an assert with trigger:; for a query assert a remediation's verify step re-evaluates expect")
		return
	}
	t := &CompiledTrigger{StaleAfter: a.Trigger.StaleAfter.Std(), Silence: a.Trigger.Silence.Std()}
	c.Trigger = t
	switch {
	case a.Trigger.Alertmanager != "" && a.Trigger.Rules != "":
		errs.Add(at("trigger", "rules"), "a trigger reads one sender: set alertmanager: or rules:, not both (write two asserts)")
	case a.Trigger.Alertmanager != "":
		t.Sender, t.Selector = alerts.SenderAlertmanager, a.Trigger.Alertmanager
		if !loc.Has("trigger", "stale_after") {
			t.StaleAfter = DefaultStaleAfterAlertmanager
		}
	case a.Trigger.Rules != "":
		t.Sender, t.Selector = alerts.SenderRules, a.Trigger.Rules
	default:
		errs.Add(at("trigger"), `trigger needs the alerts it reads: alertmanager: '{alertname="PostgresqlDown"}' (or rules: for the rule files assertd evaluates)`)
	}
	if t.Selector != "" {
		ms, err := ParseSelector(t.Selector)
		if err != nil {
			errs.Add(at("trigger", t.Sender), "trigger %s: %v", t.Sender, err)
		}
		t.Matchers, t.Set = ms, assertd.NewMatcherSet(ms)
	}
	switch {
	case a.Trigger.Silence < 0 || (a.Trigger.Silence == 0 && loc.Has("trigger", "silence")):
		errs.Add(at("trigger", "silence"), "silence must be more than 0s, such as silence: 1h (the longest a run may keep the alert silenced)")
	case a.Trigger.Silence > 0 && t.Sender != alerts.SenderAlertmanager:
		errs.Add(at("trigger", "silence"), "silence: silences the alert in the Alertmanager that sent it: it needs alertmanager:, not %s:", t.Sender)
	}
	if a.Trigger.StaleAfter < 0 || (a.Trigger.StaleAfter == 0 && loc.Has("trigger", "stale_after")) {
		errs.Add(at("trigger", "stale_after"), "stale_after must be more than 0s, such as stale_after: 4h10m (above Alertmanager's repeat_interval + group_interval)")
	}

	v := a.Verify
	switch {
	case v == nil && a.Remediate != "":
		errs.Add(at("remediate"), "assert %q remediates but has no verify: a fix is never verified by the alert alone: add verify: {query: {up: 'up{job=\"db\"}'}, expect: up == 1} or verify: {resolved_within: 5m}, or both", a.Name)
		return
	case v == nil:
		return // it pages only
	}
	t.ResolvedWithin = v.ResolvedWithin.Std()
	if v.ResolvedWithin < 0 || (v.ResolvedWithin == 0 && loc.Has("verify", "resolved_within")) {
		errs.Add(at("verify", "resolved_within"), "resolved_within must be more than 0s, such as resolved_within: 5m")
	}
	switch {
	case len(v.Query) == 0 && strings.TrimSpace(v.Expect) == "" && v.ResolvedWithin == 0:
		errs.Add(at("verify"), "verify needs query: and expect:, or resolved_within:, or both")
	case len(v.Query) > 0 && strings.TrimSpace(v.Expect) == "":
		errs.Add(at("verify", "query"), "verify has query: but no expect: add the condition that proves the fix, such as expect: up == 1")
	case len(v.Query) == 0 && strings.TrimSpace(v.Expect) != "":
		errs.Add(at("verify", "expect"), "verify has expect: but no query: add query: {name: PromQL}")
	case len(v.Query) > 0:
		// The check is a query assert of its own: the same join, no-data
		// (a check that finds nothing fails) and expect rules.
		check := &Assert{Name: a.Name, Source: a.Source, Query: v.Query, Expect: v.Expect, NoData: NoDataViolated, Pos: at("verify")}
		cc, cerrs := Compile(check, loc.In("verify"), def)
		for _, e := range cerrs {
			if !strings.Contains(e.Msg, "no_data") {
				errs.Add(e.Pos, "verify: %s", e.Msg)
			}
		}
		t.Check = cc
		c.Heartbeats = append(c.Heartbeats, cc.Heartbeats...)
	}
}

// Alerts reads the alert feed (*alerts.Feed). An alert-triggered assert is
// evaluated with a Querier that implements it.
type Alerts interface {
	Select(sender string, m alerts.Matcher, now time.Time) ([]alerts.Alert, error)
}

// evaluateTrigger makes one verdict per alert of the trigger's sender that
// its selector matches: firing → violated, pending → pending, resolved →
// ok, firing but not reported again within stale_after → uncertain.
func (c *Compiled) evaluateTrigger(q Querier, now time.Time) Evaluation {
	ev := Evaluation{At: now}
	feed, ok := q.(Alerts)
	if !ok {
		ev.SourceErr = fmt.Errorf("%w: no alert feed is running", assertd.ErrSourceUnavailable)
		return ev
	}
	t := c.Trigger
	as, err := feed.Select(t.Sender, t.Set, now)
	if err != nil {
		ev.SourceErr = err
		return ev
	}
	for _, al := range as {
		v := Verdict{Labels: al.Labels.Copy(), Values: map[string]float64{}, Annotations: maps.Clone(map[string]string(al.Annotations)), GeneratorURL: al.GeneratorURL}
		for k, val := range c.Assert.Labels {
			v.Labels[k] = val
		}
		name := al.Labels["alertname"]
		switch {
		case al.State == alerts.Resolved:
			v.State, v.Clear = assertd.OK, true
			v.Reason = fmt.Sprintf("alert %s resolved at %s (%s)", name, stamp(al.EndsAt), t.Sender)
		case al.State == alerts.Firing && t.StaleAfter > 0 && now.Sub(al.LastSeen) > t.StaleAfter:
			v.State = assertd.Uncertain
			v.Reason = fmt.Sprintf("alert %s was last reported by %s at %s, longer ago than stale_after %s: the sender may be down", name, t.Sender, stamp(al.LastSeen), assertd.Duration(t.StaleAfter))
		case al.State == alerts.Pending:
			v.State = assertd.Pending
			v.Reason = fmt.Sprintf("alert %s pending since %s (%s)", name, stamp(al.StartsAt), t.Sender)
		default:
			v.State = assertd.Violated
			v.Reason = fmt.Sprintf("alert %s firing since %s (%s)", name, stamp(al.StartsAt), t.Sender)
			if s := al.Annotations["summary"]; s != "" {
				v.Reason += ": " + s
			}
		}
		ev.Verdicts = append(ev.Verdicts, v)
	}
	return ev
}

// AlertsFor returns the alerts of the trigger that agree with the labels
// of an instance (on every label they share), with the assert's labels.
func (c *Compiled) AlertsFor(feed Alerts, ls assertd.Labels, now time.Time) ([]alerts.Alert, error) {
	t := c.Trigger
	as, err := feed.Select(t.Sender, t.Set, now)
	if err != nil {
		return nil, err
	}
	var out []alerts.Alert
	for _, al := range as {
		full := al.Labels.Copy()
		for k, v := range c.Assert.Labels {
			full[k] = v
		}
		if agreeOnShared(full, ls) {
			out = append(out, al)
		}
	}
	return out, nil
}

func agreeOnShared(a, b assertd.Labels) bool {
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			return false
		}
	}
	return true
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// CheckFix evaluates the verify queries of an alert-triggered assert now
// and reports whether expect holds for every result that agrees with the
// instance's labels; at least one must.
func (c *Compiled) CheckFix(ctx context.Context, q Querier, hb HeartbeatFunc, ls assertd.Labels, now time.Time) (bool, string, error) {
	chk := c.Trigger.Check
	ev := chk.Evaluate(ctx, q, hb, now)
	if ev.SourceErr != nil {
		return false, "", ev.SourceErr
	}
	matched := 0
	for _, v := range ev.Verdicts {
		if !agreeOnShared(v.Labels, ls) {
			continue
		}
		matched++
		if v.State != assertd.OK {
			return false, fmt.Sprintf("verify of %s is %s: %s", c.Name, v.State, v.Reason), nil
		}
	}
	if matched == 0 {
		return false, fmt.Sprintf("verify of %s: its queries return nothing for %s", c.Name, ls), nil
	}
	return true, fmt.Sprintf("verify of %s holds for %s: %s", c.Name, ls, chk.Assert.Expect), nil
}
