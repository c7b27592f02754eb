package asserts

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"
	_ "time/tzdata" // schedules name time zones; do not depend on the host's zoneinfo

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/internal/strictyaml"
	"github.com/assertd/assertd/schedule"
)

// Defaults fill in what an assert or heartbeat leaves out.
type Defaults struct {
	Every        time.Duration
	UncertainFor time.Duration
	Grace        time.Duration
	MaxInstances int
}

// DefaultMaxInstances bounds the instances of one assert unless the config
// or the assert says otherwise.
const DefaultMaxInstances = 10000

// DefaultDefaults are used when the config says nothing.
var DefaultDefaults = Defaults{Every: 30 * time.Second, UncertainFor: 5 * time.Minute, Grace: 5 * time.Minute, MaxInstances: DefaultMaxInstances}

// Compiled is an assert ready to evaluate.
type Compiled struct {
	*Assert
	Every        time.Duration // zero when Schedule is set
	Schedule     *schedule.Schedule
	UncertainFor time.Duration
	MaxInstances int // the most instances the assert may have
	NoData       NoData
	Missing      Missing
	Queries      []Query // sorted by name
	Expect       *vm.Program
	Clear        *vm.Program // nil: expect must hold
	Annotations  map[string]*template.Template
	// Heartbeats names the heartbeats the expressions read, with where.
	Heartbeats []Ref
	// Loc finds where each setting was written, for later checks.
	Loc strictyaml.Loc
	// Trigger is set for an alert-triggered assert (trigger.go); it then
	// has no queries and no expect.
	Trigger *CompiledTrigger
	// readsLabels: expect or clear may read the instance's labels, which
	// are then built for every evaluation.
	readsLabels bool
}

// Query is one named PromQL query.
type Query struct {
	Name string
	Text string
	Expr parser.Expr
}

// Ref is a name used somewhere, kept with its position for cross-file checks.
type Ref struct {
	Name string
	Pos  strictyaml.Pos
}

// QueryNames returns the names bound by the queries, sorted.
func (c *Compiled) QueryNames() []string {
	names := make([]string, len(c.Queries))
	for i, q := range c.Queries {
		names[i] = q.Name
	}
	return names
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var promql = parser.NewParser(parser.Options{})

// Compile checks a and compiles it. All problems are reported, each at the
// position of the value that causes it.
func Compile(a *Assert, loc strictyaml.Loc, def Defaults) (*Compiled, strictyaml.Errors) {
	var errs strictyaml.Errors
	at := loc.At
	c := &Compiled{Assert: a, Loc: loc, NoData: a.NoData, Missing: a.Missing, UncertainFor: a.UncertainFor.Std()}
	if err := assertd.CheckName("assert", a.Name); err != nil {
		errs.Add(at("name"), "%v", err)
	}

	switch {
	case !a.Schedule.IsZero() && a.Every != 0:
		errs.Add(at("schedule"), "set every or schedule, not both")
	case !a.Schedule.IsZero():
		s, err := a.Schedule.Compile()
		if err != nil {
			errs.Add(at("schedule"), "%v", err)
		}
		c.Schedule = s
	default:
		c.Every = a.Every.Std()
		if c.Every == 0 {
			c.Every = def.Every
		}
		if a.Every == 0 && loc.Has("every") {
			errs.Add(at("every"), "every must be more than 0s, such as every: 30s")
		}
	}
	positive := func(key string, d assertd.Duration) {
		if d < 0 {
			errs.Add(at(key), "%s must not be negative", key)
		}
	}
	positive("for", a.For)
	positive("clear_for", a.ClearFor)
	positive("uncertain_for", a.UncertainFor)
	if c.UncertainFor == 0 {
		c.UncertainFor = def.UncertainFor
	}
	c.MaxInstances = a.MaxInstances
	switch {
	case a.MaxInstances < 0 || a.MaxInstances == 0 && loc.Has("max_instances"):
		errs.Add(at("max_instances"), "max_instances must be at least 1, such as max_instances: 1000")
	case a.MaxInstances == 0:
		c.MaxInstances = cmp.Or(def.MaxInstances, DefaultMaxInstances)
	}

	if a.Trigger != nil || a.Verify != nil {
		c.NoData, c.Missing = NoDataOK, MissingResolve
		c.compileTrigger(loc, def, &errs)
		c.compileMeta(at, &errs)
		return c, errs
	}

	switch a.NoData {
	case "":
		c.NoData = NoDataUncertain
	case NoDataOK, NoDataViolated, NoDataUncertain:
	default:
		errs.Add(at("no_data"), "no_data must be ok, violated or uncertain, not %q%s", a.NoData,
			didYouMean(string(a.NoData), []string{"ok", "violated", "uncertain"}))
	}
	switch a.Missing {
	case "":
		c.Missing = MissingResolve
	case MissingResolve, MissingUncertain:
	default:
		errs.Add(at("missing"), "missing must be resolve or uncertain, not %q%s", a.Missing,
			didYouMean(string(a.Missing), []string{"resolve", "uncertain"}))
	}

	for _, name := range sortedKeys(a.Query) {
		text := a.Query[name]
		switch {
		case !identRE.MatchString(name):
			errs.Add(at("query", name), "query name %q cannot be used in expect: use letters, digits and _ (such as %s)", name, identSuggestion(name))
			continue
		case slices.Contains(reservedNames, name):
			errs.Add(at("query", name), "query name %q is a built-in name of expect; choose another, such as %s_value", name, name)
			continue
		}
		e, err := promql.ParseExpr(text)
		if err != nil {
			errs.Add(at("query", name), "query %s is not valid PromQL: %s", name, promqlMsg(err))
			continue
		}
		switch e.Type() {
		case parser.ValueTypeVector, parser.ValueTypeScalar:
		default:
			kind := map[parser.ValueType]string{parser.ValueTypeMatrix: "range vector", parser.ValueTypeString: "string"}[e.Type()]
			errs.Add(at("query", name), "query %s returns a %s; it must return an instant vector or a scalar (wrap a range selector in rate(), avg_over_time() …)", name, kind)
			continue
		}
		c.Queries = append(c.Queries, Query{Name: name, Text: text, Expr: e})
	}
	for i, l := range a.Join {
		if err := assertd.CheckLabelName(l); err != nil {
			errs.Add(at("join", i), "join: %v", err)
		}
	}

	// Every usable name goes into the environment, even when its PromQL does
	// not parse, so that expect is not blamed for the query's mistake.
	var envNames []string
	for name := range a.Query {
		if identRE.MatchString(name) && !slices.Contains(reservedNames, name) {
			envNames = append(envNames, name)
		}
	}
	env := Env(envNames)
	compile := func(key, src string) *vm.Program {
		prog, names, err := assertd.CompileExpr(src, env, EnvHeartbeat)
		if err != nil {
			errs.Add(at(key), "%s: %v", key, err)
			return nil
		}
		for _, hb := range names[EnvHeartbeat] {
			c.Heartbeats = append(c.Heartbeats, Ref{Name: hb, Pos: at(key)})
		}
		return prog
	}
	if strings.TrimSpace(a.Expect) == "" {
		errs.Add(at("expect"), "assert has no expect: add the condition that must hold, such as expect: p99_ms < 50")
	} else {
		c.Expect = compile("expect", a.Expect)
		if c.Expect != nil && len(a.Query) == 0 && len(c.Heartbeats) == 0 {
			errs.Add(at("expect"), "expect reads no query and no heartbeat, so it can never change: add query: {name: PromQL} or use heartbeat(\"name\")")
		}
	}
	if strings.TrimSpace(a.Clear) != "" {
		c.Clear = compile("clear", a.Clear)
	}
	c.readsLabels = readsLabels(c.Expect) || readsLabels(c.Clear)
	c.compileMeta(at, &errs)
	return c, errs
}

// compileMeta checks the labels and compiles the annotation templates.
func (c *Compiled) compileMeta(at func(path ...any) strictyaml.Pos, errs *strictyaml.Errors) {
	a := c.Assert
	for k := range a.Labels {
		if err := assertd.CheckLabelName(k); err != nil {
			errs.Add(at("labels", k), "%v", err)
		}
	}
	fields := AnnotationFields(sortedKeys(a.Query))
	c.Annotations = map[string]*template.Template{}
	for _, k := range sortedKeys(a.Annotations) {
		t, err := assertd.ParseTemplate(k, a.Annotations[k], fields)
		if err != nil {
			errs.Add(at("annotations", k), "annotation %s: %v", k, err)
			continue
		}
		c.Annotations[k] = t
	}
}

// AnnotationFields are the fields an annotation template may use.
func AnnotationFields(queryNames []string) assertd.TemplateFields {
	return assertd.TemplateFields{
		"Assert": nil, "Description": nil, "State": nil,
		"Labels": nil, "Values": queryNames,
	}
}

func promqlMsg(err error) string {
	if pe := parser.ParseErrors(nil); errors.As(err, &pe) && len(pe) > 0 {
		return fmt.Sprintf("%v (at %s)", pe[0].Err, pe[0].PositionRange.StartPosInput(pe[0].Query, 0))
	}
	return err.Error()
}

func identSuggestion(name string) string {
	s := regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(name, "_")
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "q_" + s
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func didYouMean(word string, candidates []string) string {
	return strictyaml.DidYouMean(word, candidates)
}

// readsLabels reports whether p may read the labels from its environment:
// it names them, or the environment itself ($env).
func readsLabels(p *vm.Program) bool {
	if p == nil {
		return false
	}
	node := p.Node()
	f := &identFinder{names: []string{EnvLabels, "$env"}}
	ast.Walk(&node, f)
	return f.found
}

type identFinder struct {
	names []string
	found bool
}

func (f *identFinder) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok && slices.Contains(f.names, id.Value) {
		f.found = true
	}
}
