package assertd

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/assertd/assertd/internal/strictyaml"
)

// FnDuration is the expression function that turns "26h" into a duration.
const FnDuration = "duration"

var durationFn = expr.Function(FnDuration, func(params ...any) (any, error) {
	return ParseDuration(params[0].(string))
}, new(func(string) time.Duration))

// parseConfig is what parsing needs of the compiler's configuration (the
// functions that are not builtins), made once: parsing does not change it.
var parseConfig = sync.OnceValue(func() *conf.Config {
	c := conf.CreateNew()
	durationFn(c)
	return c
})

// CompileExpr compiles a boolean expression against env (built by Env, plus
// any extra functions the caller adds) and checks the literal arguments of
// duration() and of the functions in nameArgs (such as heartbeat), whose
// first argument must be a quoted name; those names are returned by function.
func CompileExpr(src string, env map[string]any, nameArgs ...string) (*vm.Program, map[string][]string, error) {
	// The literal arguments are checked on the tree as written (compiling
	// with optimisations folds a call on a literal away), and the program
	// compiled once, with them.
	c := &callCollector{want: nameArgs, names: map[string][]string{}}
	if tree, err := parser.ParseWithConfig(src, parseConfig()); err == nil {
		ast.Walk(&tree.Node, c)
	}
	if c.err != nil {
		// A type error is told first, as the compiler finds it.
		if _, err := expr.Compile(src, expr.Env(env), expr.AsBool(), durationFn, expr.Optimize(false)); err != nil {
			return nil, nil, exprError(err, env)
		}
		return nil, nil, c.err
	}
	prog, err := compileBool(src, env)
	if err != nil {
		return nil, nil, exprError(err, env)
	}
	return prog, c.names, nil
}

// compileConfig is the compiler's configuration without an environment,
// made once; compileBool copies it for each expression.
var compileConfig = sync.OnceValue(func() *conf.Config {
	c := conf.CreateNew()
	durationFn(c)
	return c
})

// compileBool is expr.Compile(src, expr.Env(env), expr.AsBool(),
// durationFn) on a copy of compileConfig: expr.Compile makes a new
// configuration each time (a map of its ~100 builtins, the largest part of
// loading 100k asserts after YAML). The copy shares the configuration's
// tables (builtins, functions), which compiling only reads, and has a
// cache of its own.
func compileBool(src string, env map[string]any) (*vm.Program, error) {
	c := *compileConfig()
	c.WithEnv(env)
	c.Expect, c.ExpectAny = reflect.Bool, true
	c.Check()
	tree, err := checker.ParseCheck(src, &c)
	if err != nil {
		return nil, err
	}
	if err := optimizer.Optimize(&tree.Node, &c); err != nil {
		if fe, ok := errors.AsType[*file.Error](err); ok {
			return nil, fe.Bind(tree.Source)
		}
		return nil, err
	}
	return compiler.Compile(tree, &c)
}

type callCollector struct {
	want  []string
	names map[string][]string
	err   error
}

func (c *callCollector) Visit(n *ast.Node) {
	call, ok := (*n).(*ast.CallNode)
	if !ok || c.err != nil {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || (id.Value != FnDuration && !slices.Contains(c.want, id.Value)) {
		return
	}
	if len(call.Arguments) == 0 {
		return // the type checker reports it
	}
	s, ok := call.Arguments[0].(*ast.StringNode)
	if !ok {
		c.err = fmt.Errorf("%s() takes a quoted literal, such as %s(%q)", id.Value, id.Value, example(id.Value))
		return
	}
	if id.Value == FnDuration {
		if _, err := ParseDuration(s.Value); err != nil {
			c.err = fmt.Errorf("in duration(): %v", err)
		}
		return
	}
	c.names[id.Value] = append(c.names[id.Value], s.Value)
}

func example(fn string) string {
	if fn == FnDuration {
		return "26h"
	}
	return "nightly-backup"
}

// exprError turns expr's error into one sentence in the user's words.
func exprError(err error, env map[string]any) error {
	msg, col := err.Error(), 0
	if fe := (*file.Error)(nil); errors.As(err, &fe) {
		msg, col = fe.Message, fe.Column+1
	}
	if strings.HasPrefix(msg, "expected bool, but got ") {
		msg = fmt.Sprintf("must be true or false, such as p99_ms < 50, but it is %s", kindWord(strings.TrimPrefix(msg, "expected bool, but got ")))
	}
	var name string
	if _, e := fmt.Sscanf(msg, "unknown name %s", &name); e == nil {
		var names []string
		for k := range env {
			names = append(names, k)
		}
		slices.Sort(names)
		msg = fmt.Sprintf("unknown name %s%s; the names here are: %s", name,
			strictyaml.DidYouMean(name, names), strings.Join(names, ", "))
	}
	if col == 0 {
		return errors.New(msg)
	}
	return fmt.Errorf("%s (at column %d of the expression)", msg, col)
}

func kindWord(goType string) string {
	switch goType {
	case "float64", "int":
		return "a number"
	case "string":
		return "a string"
	case "time.Duration":
		return "a duration"
	case "time.Time":
		return "a time"
	}
	return "not a boolean"
}
