package remediations

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
)

// Step targets that are not step indexes.
const (
	Page = -1 // stop and page humans
	Done = -2 // stop: the fix is verified
)

// Defaults of a step.
const (
	DefaultTimeout       = 60 * time.Second
	DefaultVerifyTimeout = 30 * time.Second
	DefaultBackoff       = 5 * time.Second
	DefaultApprovalTTL   = 15 * time.Minute
	MaxRetries           = 10
)

// Names available in a guard expression.
const (
	FnViolating         = "violating"          // violating(assert) int
	FnInstances         = "instances"          // instances(assert) int
	FnFractionViolating = "fraction_violating" // fraction_violating(assert [, label]) float64
)

// Compiled is a remediation ready to run.
type Compiled struct {
	*Remediation
	Mode             Mode
	ApprovalRequired bool
	ApprovalExpire   time.Duration
	Lock             *template.Template // nil: no lock
	Guard            *vm.Program        // nil: no guard
	Rollout          []*labels.Matcher  // nil: everywhere
	Allow            []allowPattern     // sorted by label
	Steps            []CompiledStep
	// Warnings are problems that do not stop the remediation from loading
	// (assertd check prints them), such as a label used in a url or an
	// argv without an allow pattern.
	Warnings strictyaml.Errors

	// Refs to asserts, checked against the loaded set by the caller.
	VerifyAsserts []Ref // verify: NAME
	VerifyExprs   []Ref // verify: {expr: ...}; Name holds the expression
	GuardAsserts  []Ref // assert names read by the guard
	// Loc finds where each setting was written, for later checks.
	Loc strictyaml.Loc
}

// CompiledStep is a step with its defaults filled in and targets resolved.
type CompiledStep struct {
	*Step
	Kind      string // run, http, wait, verify
	Run       []*template.Template
	URL       *template.Template
	URLBase   *url.URL // the literal scheme and host of URL
	Body      *template.Template
	BodyJSON  bool   // Body is JSON: its values are JSON-encoded
	ArgLit    []bool // ArgLit[i]: run element i begins with literal text
	Timeout   time.Duration
	Backoff   time.Duration
	OnSuccess int // step index, Done
	OnFailure int // step index, Page
}

// Ref is a name used somewhere, with its position.
type Ref struct {
	Name string
	Pos  strictyaml.Pos
}

// TemplateFields are the fields lock and step templates may use.
var TemplateFields = assertd.TemplateFields{
	"Assert": nil, "Remediation": nil, "Labels": nil, "Values": nil, "RunID": nil,
}

// GuardEnv is the environment guard expressions compile against.
func GuardEnv() map[string]any {
	return map[string]any{
		"now":               time.Time{},
		"labels":            map[string]string{},
		FnViolating:         func(string) int { return 0 },
		FnInstances:         func(string) int { return 0 },
		FnFractionViolating: func(string, ...string) float64 { return 0 },
	}
}

var promql = parser.NewParser(parser.Options{})

// Compile checks r and compiles it, reporting every problem at its position.
func Compile(r *Remediation, loc strictyaml.Loc) (*Compiled, strictyaml.Errors) {
	var errs strictyaml.Errors
	at := loc.At
	c := &Compiled{Remediation: r, Mode: r.Mode, Loc: loc}
	if err := assertd.CheckName("remediation", r.Name); err != nil {
		errs.Add(at("name"), "%v", err)
	}
	switch r.Mode {
	case "":
		c.Mode = ModeOn
	case ModeOn, ModeShadow:
	default:
		errs.Add(at("mode"), "mode must be on or shadow, not %q%s", r.Mode, strictyaml.DidYouMean(string(r.Mode), []string{"on", "shadow"}))
	}
	if r.MaxRuns != nil {
		if r.MaxRuns.Count < 1 {
			errs.Add(at("max_runs", "count"), "max_runs count must be at least 1, such as max_runs: {count: 3, within: 1h}")
		}
		if r.MaxRuns.Within <= 0 {
			errs.Add(at("max_runs", "within"), "max_runs within must be more than 0s, such as within: 1h")
		}
	}
	if r.Cooldown < 0 {
		errs.Add(at("cooldown"), "cooldown must not be negative")
	}
	if r.Lock != "" {
		t, err := assertd.ParseTemplate("lock", r.Lock, TemplateFields)
		if err != nil {
			errs.Add(at("lock"), "lock: %v", err)
		}
		c.Lock = t
	}
	if strings.TrimSpace(r.Guard) != "" {
		prog, names, err := assertd.CompileExpr(r.Guard, GuardEnv(), FnViolating, FnInstances, FnFractionViolating)
		if err != nil {
			errs.Add(at("guard"), "guard: %v", err)
		}
		c.Guard = prog
		for _, fn := range []string{FnViolating, FnInstances, FnFractionViolating} {
			for _, n := range names[fn] {
				c.GuardAsserts = append(c.GuardAsserts, Ref{Name: n, Pos: at("guard")})
			}
		}
	}
	if r.Rollout != "" {
		m, err := promql.ParseMetricSelector(r.Rollout)
		if err != nil {
			errs.Add(at("rollout"), "rollout must be a label selector such as '{env=~\"staging|canary\"}': %v", err)
		}
		c.Rollout = m
	}
	c.Allow = compileAllow(r.Allow, loc, &errs)
	switch r.Approval.Mode {
	case "", "none":
	case "required":
		c.ApprovalRequired = true
	default:
		errs.Add(at("approval", "mode"), "approval mode must be none or required, not %q", r.Approval.Mode)
	}
	c.ApprovalExpire = r.Approval.Expire.Std()
	if r.Approval.Expire < 0 || (r.Approval.Expire == 0 && loc.Has("approval", "expire")) {
		errs.Add(at("approval", "expire"), "approval expire must be more than 0s, such as expire: 15m")
	}
	if c.ApprovalExpire == 0 {
		c.ApprovalExpire = DefaultApprovalTTL
	}

	if len(r.Steps) == 0 {
		errs.Add(at("steps"), "remediation %q has no steps: add steps, ending with a verify step", r.Name)
		return c, errs
	}
	c.Steps = make([]CompiledStep, len(r.Steps))
	index := map[string]int{}
	for i := range r.Steps {
		s := &r.Steps[i]
		sat := loc.In("steps", i)
		switch {
		case s.Name == "":
			errs.Add(sat.At(), "step %d has no name: add name: (it is how on_success and on_failure refer to it)", i+1)
		case s.Name == "page" || s.Name == "done":
			errs.Add(sat.At("name"), "step name %q is reserved for on_success/on_failure: choose another", s.Name)
		case assertd.CheckName("step", s.Name) != nil:
			errs.Add(sat.At("name"), "%v", assertd.CheckName("step", s.Name))
		default:
			if j, dup := index[s.Name]; dup {
				errs.Add(sat.At("name"), "duplicate step name %q (also step %d)", s.Name, j+1)
			} else {
				index[s.Name] = i
			}
		}
		c.Steps[i] = compileStep(s, sat, c, &errs)
	}
	checkGraph(c, loc, index, &errs)
	c.Warnings = unguardedLabels(c, loc)
	return c, errs
}

func compileStep(s *Step, at strictyaml.Loc, c *Compiled, errs *strictyaml.Errors) CompiledStep {
	cs := CompiledStep{Step: s, Timeout: s.Timeout.Std(), Backoff: s.Backoff.Std()}
	var kinds []string
	if len(s.Run) > 0 || at.Has("run") {
		kinds = append(kinds, "run")
	}
	if s.HTTP != nil {
		kinds = append(kinds, "http")
	}
	if s.Wait != 0 || at.Has("wait") {
		kinds = append(kinds, "wait")
	}
	if s.Verify != nil {
		kinds = append(kinds, "verify")
	}
	switch len(kinds) {
	case 0:
		errs.Add(at.At(), "step %q does nothing: give it exactly one of run, http, wait or verify", s.Name)
	case 1:
		cs.Kind = kinds[0]
	default:
		errs.Add(at.At(kinds[1]), "step %q has %s: give each step exactly one of run, http, wait or verify (split it into several steps)", s.Name, strings.Join(kinds, " and "))
		cs.Kind = kinds[0]
	}
	if cs.Kind != "run" {
		for _, k := range []string{"env", "env_allow", "dir"} {
			if at.Has(k) {
				errs.Add(at.At(k), "%s only applies to run steps", k)
			}
		}
	}
	if s.Timeout < 0 || (s.Timeout == 0 && at.Has("timeout")) {
		errs.Add(at.At("timeout"), "timeout must be more than 0s")
	}
	if cs.Timeout == 0 {
		cs.Timeout = DefaultTimeout
		if cs.Kind == "verify" {
			cs.Timeout = DefaultVerifyTimeout
		}
	}
	if s.Retries < 0 || s.Retries > MaxRetries {
		errs.Add(at.At("retries"), "retries must be between 0 and %d", MaxRetries)
	}
	if s.Backoff < 0 {
		errs.Add(at.At("backoff"), "backoff must not be negative")
	}
	if cs.Backoff == 0 {
		cs.Backoff = DefaultBackoff
	}
	switch cs.Kind {
	case "run":
		cs.Run = compileArgv(&cs, at, errs)
		cs.ArgLit = make([]bool, len(cs.Run))
		for i, t := range cs.Run {
			cs.ArgLit[i] = literalPrefix(t) != ""
		}
	case "http":
		compileHTTP(&cs, at.In("http"), errs)
	case "wait":
		if s.Wait <= 0 {
			errs.Add(at.At("wait"), "wait must be more than 0s, such as wait: 20s")
		}
	case "verify":
		v := s.Verify
		switch {
		case (v.Assert == "") == (v.Expr == ""):
			errs.Add(at.At("verify"), "verify takes an assert name (verify: api-latency) or an expression (verify: {expr: \"p99_ms < 50\"}), exactly one")
		case v.Assert != "":
			c.VerifyAsserts = append(c.VerifyAsserts, Ref{Name: v.Assert, Pos: at.At("verify")})
		default:
			c.VerifyExprs = append(c.VerifyExprs, Ref{Name: v.Expr, Pos: at.At("verify", "expr")})
		}
	}
	return cs
}

var shells = []string{"sh", "bash", "dash", "zsh", "ksh", "ash", "fish", "csh", "tcsh", "busybox", "env"}

func compileArgv(cs *CompiledStep, at strictyaml.Loc, errs *strictyaml.Errors) []*template.Template {
	s := cs.Step
	if len(s.Run) == 0 {
		errs.Add(at.At("run"), "run needs a program: write run: [program, arg, ...]")
		return nil
	}
	if strings.Contains(s.Run[0], "{{") {
		errs.Add(at.At("run", 0), "the program (first element of run) cannot be a template: label values must never choose what runs")
	}
	if len(s.Run) == 1 && strings.ContainsAny(s.Run[0], " \t|;&$") {
		errs.Add(at.At("run", 0), "run is an argv list, not a shell string: write run: [%s]", strings.Join(strings.Fields(s.Run[0]), ", "))
	}
	prog := filepath.Base(s.Run[0])
	shellC := slices.Contains(shells, prog) && slices.ContainsFunc(s.Run[1:], func(a string) bool { return a == "-c" || a == "-lc" })
	out := make([]*template.Template, len(s.Run))
	for i, arg := range s.Run {
		if shellC && strings.Contains(arg, "{{") {
			errs.Add(at.At("run", i), "a template inside a shell command string lets label values inject commands: pass values as separate argv elements instead of through %s -c", prog)
		}
		what := fmt.Sprintf("run[%d]", i)
		t, err := assertd.ParseTemplate(what, arg, TemplateFields)
		if err != nil {
			errs.Add(at.At("run", i), "%s: %v", what, err)
		} else if _, err := escapeTemplate(t, what, argvStart); err != nil {
			errs.Add(at.At("run", i), "%v", err)
		}
		out[i] = t
	}
	for name, v := range s.Env {
		checkValue(v, at.In("env", name), "environment variable "+name, errs)
	}
	return out
}

// secretish names headers and variables that carry credentials.
func secretish(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"authorization", "token", "secret", "password", "passwd", "api-key", "api_key", "apikey", "cookie", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func checkValue(v Value, at strictyaml.Loc, what string, errs *strictyaml.Errors) {
	set := 0
	for _, s := range []string{v.Value, v.SecretEnv, v.SecretFile} {
		if s != "" {
			set++
		}
	}
	switch {
	case set > 1:
		errs.Add(at.At(), "%s: give one of a value, secret_env or secret_file", what)
	case v.Value != "" && secretish(what):
		errs.Add(at.At(), "%s looks like a secret: secrets only by reference: write {secret_env: VARIABLE} or {secret_file: PATH}", what)
	case v.Prefix != "" && !v.IsSecret():
		errs.Add(at.At("prefix"), "%s: prefix goes with secret_env or secret_file", what)
	}
	if !v.IsSecret() {
		if _, err := assertd.ParseTemplate(what, v.Value, TemplateFields); err != nil {
			errs.Add(at.At(), "%s: %v", what, err)
		}
	}
}

func compileHTTP(cs *CompiledStep, at strictyaml.Loc, errs *strictyaml.Errors) {
	h := cs.HTTP
	switch strings.ToUpper(h.Method) {
	case "":
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if h.Method != strings.ToUpper(h.Method) {
			errs.Add(at.At("method"), "write the method in capitals: %s", strings.ToUpper(h.Method))
		}
	default:
		errs.Add(at.At("method"), "method must be GET, HEAD, POST, PUT, PATCH or DELETE, not %q", h.Method)
	}
	if h.URL == "" {
		errs.Add(at.At("url"), "http needs a url: such as url: https://lb.internal/api/v1/drain")
	} else if t, err := assertd.ParseTemplate("url", h.URL, TemplateFields); err != nil {
		errs.Add(at.At("url"), "url: %v", err)
	} else {
		cs.URL = t
		if _, err := escapeTemplate(t, "url", urlScheme); err != nil {
			errs.Add(at.At("url"), "%v", err)
		} else if base, err := urlBase(t, h.URL); err != nil {
			errs.Add(at.At("url"), "%v", err)
		} else {
			cs.URLBase = base
		}
	}
	cs.BodyJSON = jsonContentType(h.Headers)
	switch h.BodyEscape {
	case "":
	case "json":
		if !cs.BodyJSON {
			errs.Add(at.At("body_escape"), "body_escape json needs the JSON content type: add headers: {Content-Type: application/json}")
		}
	case "none":
		cs.BodyJSON = false
	default:
		errs.Add(at.At("body_escape"), "body_escape must be json or none, not %q", h.BodyEscape)
	}
	if h.Body != "" {
		t, err := assertd.ParseTemplate("body", h.Body, TemplateFields)
		if err != nil {
			errs.Add(at.At("body"), "body: %v", err)
		}
		cs.Body = t
		switch {
		case t == nil:
		case cs.BodyJSON:
			end, err := escapeTemplate(t, "body", jsonBare)
			switch {
			case err != nil:
				errs.Add(at.At("body"), "%v", err)
			case end != jsonBare:
				errs.Add(at.At("body"), "body: a JSON string is not closed: the body ends inside quotes")
			}
		case h.BodyEscape == "" && hasActions(t):
			errs.Add(at.At("body"), "body inserts values, but the request is not JSON, so they cannot be escaped: add headers: {Content-Type: application/json} to have them JSON-encoded, or write body_escape: none to insert them as they are")
		}
	}
	for i, s := range h.ExpectStatus {
		if s < 100 || s > 599 {
			errs.Add(at.At("expect_status", i), "expect_status %d is not an HTTP status (100 to 599)", s)
		}
	}
	for name, v := range h.Headers {
		checkValue(v, at.In("headers", name), "header "+name, errs)
	}
}
