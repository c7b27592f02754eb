package config

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/internal/strictyaml"
)

// PrometheusRules says how the Prometheus rule files among files: (those
// with a top-level groups:) are evaluated, and what assertd adds to their
// alerts without the files being edited.
type PrometheusRules struct {
	EvaluationInterval assertd.Duration  `yaml:"evaluation_interval" jsonschema_description:"Interval of the groups that set none, as Prometheus' global.evaluation_interval (default 1m)."`
	ExternalLabels     map[string]string `yaml:"external_labels" jsonschema_description:"Prometheus' global.external_labels: $externalLabels in templates."`
	Source             string            `yaml:"source" jsonschema_description:"Where the rules query: embedded (default) or a sources.prometheus entry."`
	RemoteWrite        *RuleRemoteWrite  `yaml:"remote_write" jsonschema_description:"With a remote source: where recording rules' samples are remote-written. Without it, check refuses recording rules on a remote source."`
	OutageTolerance    assertd.Duration  `yaml:"outage_tolerance" jsonschema_description:"Prometheus' --rules.alert.for-outage-tolerance (default 1h)."`
	ForGracePeriod     assertd.Duration  `yaml:"for_grace_period" jsonschema_description:"Prometheus' --rules.alert.for-grace-period (default 10m)."`
	Bindings           []Binding         `yaml:"bindings" jsonschema_description:"Matchers on the alerts of the rule files, each giving the alerts it matches a remediation and an escalation. An alert matches the first binding whose matchers it satisfies."`
}

// RuleRemoteWrite is a Prometheus remote-write endpoint (one with
// --web.enable-remote-write-receiver, Mimir, Thanos Receive …).
type RuleRemoteWrite struct {
	URL             string           `yaml:"url" jsonschema:"required"`
	BearerTokenEnv  string           `yaml:"bearer_token_env"`
	BearerTokenFile string           `yaml:"bearer_token_file"`
	Timeout         assertd.Duration `yaml:"timeout" jsonschema_description:"Default 30s."`
}

// KeyHints explains keys that are not accepted.
func (*RuleRemoteWrite) KeyHints() map[string]string {
	return map[string]string{"bearer_token": "secrets only by reference: write bearer_token_env: VARIABLE or bearer_token_file: PATH"}
}

// Binding attaches assertd's remediation and escalation to the alerts of
// Prometheus rule files that its matchers select.
type Binding struct {
	Name         string           `yaml:"name" jsonschema_description:"Name of the assert the binding makes (default the alertname it matches, else binding-N)."`
	Match        string           `yaml:"match" jsonschema:"required" jsonschema_description:"A selector on the alert's labels, such as '{alertname=\"PostgresqlDown\", severity=\"critical\"}'."`
	Remediate    string           `yaml:"remediate" jsonschema_description:"Remediation run when a matching alert fires."`
	Escalate     string           `yaml:"escalate" jsonschema_description:"Escalation policy (default defaults.escalate)."`
	UncertainFor assertd.Duration `yaml:"uncertain_for" jsonschema_description:"How long the binding's alerts may be uncertain (a rule that could raise them fails to evaluate, the source is down, the rules stopped evaluating) before they are escalated (default defaults.uncertain_for)."`
	Every        assertd.Duration `yaml:"every" jsonschema_description:"How often the binding's assert is evaluated besides after each evaluation of a rule group (default defaults.every)."`
	// Verify checks a fix; default: the alert resolves within 5m.
	Verify *asserts.Verify   `yaml:"verify" jsonschema_description:"How a remediation's verify step checks the fix: resolved_within (default 5m: the rule, evaluated on the data, no longer fires), and/or query and expect."`
	Labels map[string]string `yaml:"labels" jsonschema_description:"Labels added to the assert's instances (not to the alert)."`
}

// DefaultBindingResolvedWithin is how long a binding's verify waits for the
// alert to resolve when the binding sets no verify:.
const DefaultBindingResolvedWithin = 5 * time.Minute

// KeyHints explains keys that are not accepted.
func (*Binding) KeyHints() map[string]string {
	return map[string]string{
		"matchers": "write match: '{alertname=\"X\", severity=\"critical\"}'",
		"matcher":  "write match: '{alertname=\"X\"}'",
		"for":      "the rule's own for: decides when the alert fires; a binding acts on firing alerts",
		"no_data":  "a rule that cannot be evaluated makes the alerts it could raise uncertain, escalated after uncertain_for: a broken rule is never taken for a quiet one; set uncertain_for:",
	}
}

// PromRuleFile is one Prometheus rule file, parsed and checked as
// `promtool check rules` checks it.
type PromRuleFile struct {
	Path   string
	Groups *rulefmt.RuleGroups
	// Pos of each group and of each of its rules, for messages.
	GroupPos []strictyaml.Pos
	RulePos  [][]strictyaml.Pos
}

// CompiledBinding is a binding with its matchers parsed.
type CompiledBinding struct {
	Binding
	Index    int
	Pos      strictyaml.Pos
	Matchers []*labels.Matcher
	// Assert is the alert-triggered assert the binding makes, among the
	// set's asserts.
	Assert *asserts.Compiled
}

// DefaultEvaluationInterval is Prometheus' default global.evaluation_interval.
const DefaultEvaluationInterval = time.Minute

// RuleFileParser parses the expressions of rule files as Prometheus does.
var RuleFileParser = parser.NewParser(parser.Options{})

// isPromRuleFile reports whether data is a Prometheus rule file: a mapping
// with a top-level groups: key.
func isPromRuleFile(data []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return false
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "groups" {
			return true
		}
	}
	return false
}

var linecol = regexp.MustCompile(`^(\d+):(\d+): (?:\d+:\d+: )?`)
var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// addPromRules parses and checks one Prometheus rule file into the set.
func (s *Set) addPromRules(file string, data []byte) strictyaml.Errors {
	var errs strictyaml.Errors
	groups, perrs := rulefmt.Parse(data, false, model.UTF8Validation, RuleFileParser, slog.New(slog.DiscardHandler))
	var f *PromRuleFile
	if groups != nil {
		f = &PromRuleFile{Path: file, Groups: groups}
		f.GroupPos, f.RulePos = rulePositions(file, data, groups)
	}
	for _, err := range perrs {
		if pos, ok := f.ruleOf(err); ok {
			errs.Add(pos, "%v", err)
			continue
		}
		for _, e := range ruleFileError(file, data, err) {
			if e.Pos.Line == 0 {
				e.Pos = f.groupOf(e.Msg, file)
			}
			errs = append(errs, e)
		}
	}
	if groups == nil {
		return errs
	}
	s.PromRules = append(s.PromRules, f)
	return errs
}

var ruleRef = regexp.MustCompile(`^group "((?:[^"\\]|\\.)*)", rule (\d+), `)

// ruleOf finds the rule an error without a position names (an annotation
// whose template does not parse, say).
func (f *PromRuleFile) ruleOf(err error) (strictyaml.Pos, bool) {
	var re *rulefmt.Error
	if f == nil || !errors.As(err, &re) || linecol.MatchString(err.Error()) || !ruleRef.MatchString(err.Error()) {
		return strictyaml.Pos{}, false
	}
	for i, g := range f.Groups.Groups {
		if g.Name == re.Group && re.Rule >= 1 && re.Rule <= len(f.RulePos[i]) {
			return f.RulePos[i][re.Rule-1], true
		}
	}
	return strictyaml.Pos{}, false
}

var groupRef = regexp.MustCompile(`group(?:name)?:? "((?:[^"\\]|\\.)*)"`)

// groupOf finds the group an error without a position names (the last of
// that name: a repeated name is reported at its repetition), else the top
// of the file.
func (f *PromRuleFile) groupOf(msg, file string) strictyaml.Pos {
	pos := strictyaml.Pos{File: file, Line: 1, Col: 1}
	m := groupRef.FindStringSubmatch(msg)
	if f == nil || m == nil {
		return pos
	}
	for i, g := range f.Groups.Groups {
		if g.Name == m[1] {
			pos = f.GroupPos[i]
		}
	}
	return pos
}

// ruleFileError turns one of rulefmt's errors into file:line:col errors.
func ruleFileError(file string, data []byte, err error) strictyaml.Errors {
	var errs strictyaml.Errors
	msg := err.Error()
	if m := linecol.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		errs.Add(strictyaml.Pos{File: file, Line: line, Col: col}, "%s", msg[len(m[0]):])
		return errs
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			errs.Append(yamlLineError(file, data, e))
		}
		return errs
	}
	return yamlLineError(file, data, strings.TrimPrefix(msg, "yaml: "))
}

var ruleTypes = strings.NewReplacer("in type rulefmt.RuleGroups", "at the top of a Prometheus rule file (it holds groups:)",
	"in type rulefmt.RuleGroup", "in a Prometheus rule group (name, interval, query_offset, limit, labels, rules)",
	"in type rulefmt.Rule", "in a Prometheus rule (record or alert, expr, for, keep_firing_for, labels, annotations)")

var unknownField = regexp.MustCompile(`^field (\S+) not found`)

func yamlLineError(file string, data []byte, msg string) strictyaml.Errors {
	var errs strictyaml.Errors
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col := 1
		if f := unknownField.FindStringSubmatch(m[2]); f != nil {
			if lines := strings.Split(string(data), "\n"); line <= len(lines) {
				if i := strings.Index(lines[line-1], f[1]+":"); i >= 0 {
					col = i + 1
				}
			}
		}
		errs.Add(strictyaml.Pos{File: file, Line: line, Col: col}, "%s", ruleTypes.Replace(m[2]))
		return errs
	}
	errs.Add(strictyaml.Pos{File: file, Line: 1, Col: 1}, "%s", msg)
	return errs
}

// rulePositions finds where each group and rule of a parsed file is.
func rulePositions(file string, data []byte, rgs *rulefmt.RuleGroups) ([]strictyaml.Pos, [][]strictyaml.Pos) {
	gp := make([]strictyaml.Pos, len(rgs.Groups))
	rp := make([][]strictyaml.Pos, len(rgs.Groups))
	for i := range gp {
		gp[i] = strictyaml.Pos{File: file, Line: 1, Col: 1}
		rp[i] = make([]strictyaml.Pos, len(rgs.Groups[i].Rules))
		for j := range rp[i] {
			rp[i][j] = gp[i]
		}
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return gp, rp
	}
	groups := mapValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return gp, rp
	}
	for i, g := range groups.Content {
		if i >= len(gp) {
			break
		}
		gp[i] = strictyaml.Pos{File: file, Line: g.Line, Col: g.Column}
		rules := mapValue(g, "rules")
		for j := range rp[i] {
			rp[i][j] = gp[i]
			if rules != nil && rules.Kind == yaml.SequenceNode && j < len(rules.Content) {
				rp[i][j] = strictyaml.Pos{File: file, Line: rules.Content[j].Line, Col: rules.Content[j].Column}
			}
		}
	}
	return gp, rp
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// RuleCount is the number of groups and rules of the Prometheus rule files.
func (s *Set) RuleCount() (groups, rules int) {
	for _, f := range s.PromRules {
		groups += len(f.Groups.Groups)
		for _, g := range f.Groups.Groups {
			rules += len(g.Rules)
		}
	}
	return groups, rules
}

// validatePromRules checks the prometheus_rules: section on its own.
func validatePromRules(c *Config, p *strictyaml.Positions, sourceNames []string) strictyaml.Errors {
	var errs strictyaml.Errors
	pr := c.PrometheusRules
	loc := p.In("prometheus_rules")
	if pr.EvaluationInterval < 0 || (pr.EvaluationInterval == 0 && loc.Has("evaluation_interval")) {
		errs.Add(loc.At("evaluation_interval"), "evaluation_interval must be more than 0s, such as evaluation_interval: 1m")
	}
	for k, v := range pr.ExternalLabels {
		if !model.UTF8Validation.IsValidLabelName(k) || k == model.MetricNameLabel {
			errs.Add(loc.At("external_labels", k), "external label name %q is not valid", k)
		}
		if v == "" {
			errs.Add(loc.At("external_labels", k), "external label %s has an empty value: remove it or give it one", k)
		}
	}
	if s := pr.Source; s != "" && !slices.Contains(sourceNames, s) {
		errs.Add(loc.At("source"), "source %q is not defined%s; write embedded or the name of a sources.prometheus entry", s, strictyaml.DidYouMean(s, sourceNames))
	}
	if rw := pr.RemoteWrite; rw != nil {
		checkURL(&errs, loc.At("remote_write", "url"), rw.URL, "remote_write url")
		oneOf(&errs, loc.In("remote_write"), false, "bearer_token_env", rw.BearerTokenEnv, "bearer_token_file", rw.BearerTokenFile)
		if pr.Source == "" || pr.Source == EmbeddedName {
			errs.Add(loc.At("remote_write"), "remote_write is for rules on a remote source: with the embedded source, recording rules are written to the embedded TSDB; remove remote_write or set source:")
		}
	}
	for _, d := range []struct {
		key string
		v   assertd.Duration
	}{{"outage_tolerance", pr.OutageTolerance}, {"for_grace_period", pr.ForGracePeriod}} {
		if d.v < 0 {
			errs.Add(loc.At(d.key), "%s must not be negative", d.key)
		}
	}
	for i, b := range pr.Bindings {
		bl := loc.In("bindings", i)
		if _, err := RuleFileParser.ParseMetricSelector(b.Match); err != nil || strings.TrimSpace(b.Match) == "" {
			errs.Add(bl.At("match"), "match must be a selector on the alert's labels, such as '{alertname=\"PostgresqlDown\", severity=\"critical\"}': %v", err)
		}
		if b.UncertainFor < 0 {
			errs.Add(bl.At("uncertain_for"), "uncertain_for must not be negative")
		}
		for k := range b.Labels {
			if err := assertd.CheckLabelName(k); err != nil {
				errs.Add(bl.At("labels", k), "%v", err)
			}
		}
	}
	return errs
}

// compileBindings parses the bindings' matchers, names them, and compiles
// each into an alert-triggered assert on the rules' alerts.
func (s *Set) compileBindings(c *Config, p *strictyaml.Positions, def asserts.Defaults) strictyaml.Errors {
	var errs strictyaml.Errors
	taken := map[string]bool{}
	for i, b := range c.PrometheusRules.Bindings {
		loc := p.In("prometheus_rules", "bindings", i)
		cb := &CompiledBinding{Binding: b, Index: i, Pos: loc.At()}
		cb.Matchers, _ = RuleFileParser.ParseMetricSelector(b.Match)
		if cb.Name == "" {
			cb.Name = fmt.Sprintf("binding-%d", i+1)
			for _, m := range cb.Matchers {
				if m.Name == model.AlertNameLabel && m.Type == labels.MatchEqual && assertd.CheckName("assert", m.Value) == nil && !taken[m.Value] {
					cb.Name = m.Value
				}
			}
		}
		taken[cb.Name] = true
		v := b.Verify
		if v == nil {
			v = &asserts.Verify{ResolvedWithin: assertd.Duration(DefaultBindingResolvedWithin)}
		}
		a := &asserts.Assert{Name: cb.Name, Description: "alerts of the Prometheus rule files matching " + b.Match,
			Every: b.Every, Trigger: &asserts.Trigger{Rules: b.Match}, Verify: v, Remediate: b.Remediate, Escalate: b.Escalate,
			UncertainFor: b.UncertainFor, Labels: b.Labels, Source: c.PrometheusRules.Source, Pos: cb.Pos}
		ac, aerrs := asserts.Compile(a, loc, def)
		for _, e := range aerrs {
			if !strings.HasPrefix(e.Msg, "trigger rules:") { // match: is checked on its own
				errs.Add(e.Pos, "binding %s: %s", cb.Name, e.Msg)
			}
		}
		cb.Assert = ac
		s.Asserts = append(s.Asserts, ac)
		s.Bindings = append(s.Bindings, cb)
	}
	return errs
}

// checkPromRules checks what the rule files need from the configuration:
// recording rules on a remote source need remote_write.
func checkPromRules(set *Set) strictyaml.Errors {
	var errs strictyaml.Errors
	cfg := set.Config
	if cfg == nil {
		return nil
	}
	errs.Append(checkBindingVerifies(set))
	pr := cfg.PrometheusRules
	remote := pr.Source != "" && pr.Source != EmbeddedName
	if !remote || pr.RemoteWrite != nil {
		return errs
	}
	for _, f := range set.PromRules {
		for i, g := range f.Groups.Groups {
			for j, r := range g.Rules {
				if r.Record != "" {
					errs.Add(f.RulePos[i][j], "recording rule %s cannot be written: the rules query the remote source %s, and assertd writes recording rules to the embedded TSDB only when it is the source; set prometheus_rules.remote_write: {url: ...} to remote-write them, or keep this rule in Prometheus", r.Record, pr.Source)
				}
			}
		}
	}
	return errs
}

// checkBindingVerifies refuses a verify step on a binding's assert whose
// timeout would end it before the alert may resolve.
func checkBindingVerifies(set *Set) strictyaml.Errors {
	var errs strictyaml.Errors
	within := map[string]time.Duration{}
	for _, b := range set.Bindings {
		if b.Assert != nil && b.Assert.Trigger != nil {
			within[b.Assert.Name] = b.Assert.Trigger.ResolvedWithin
		}
	}
	for _, r := range set.Remediations {
		for i, st := range r.Steps {
			if st.Kind != "verify" || st.Step.Verify == nil {
				continue
			}
			if w, ok := within[st.Step.Verify.Assert]; ok && w > 0 && st.Timeout <= w {
				errs.Add(r.Loc.At("steps", i, "timeout"), "verify step %s of %s waits up to resolved_within %s for the alert of binding %s to resolve, longer than its timeout %s: set timeout: above it, such as timeout: %s, or a shorter verify: {resolved_within: ...} on the binding",
					st.Name, r.Name, assertd.Duration(w), st.Step.Verify.Assert, assertd.Duration(st.Timeout), assertd.Duration(w+30*time.Second))
			}
		}
	}
	return errs
}
