package app

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The stack is wired in one place: only app builds the engine, the
// remediation runner, the deliverer, the heartbeat tracker and the HTTP
// handler. cmd/assertd, the demo, assertd test, the web tests and the bench
// build assertd through New. A component's own package (its code and its
// tests) may call its constructor; so may the few tests and benches listed
// in wiringExceptions, each of which uses one component beside the one it
// tests or measures, not the stack.

// constructors are the functions that build a part of the stack, by the
// import path of their package.
var constructors = map[string][]string{
	"engine":            {"New"},
	"remediations":      {"NewRunner"},
	"notifiers":         {"New"},
	"sources/heartbeat": {"New"},
	"web":               {"New"},
}

// wiringExceptions: files (a path.Match pattern relative to the module
// root) → the constructors they may call, with why. An entry that no file
// needs any more is an error too, so the list only shrinks.
var wiringExceptions = map[string][]string{
	// The engine's tests of its runner interface and gates, on the real
	// runner.
	"engine/*_test.go": {"remediations.NewRunner"},
	// The deliverer's tests of the outbox the real engine writes.
	"notifiers/*_test.go": {"engine.New"},
	// Row 1 measures the engine's evaluation cycle alone against
	// Prometheus' rule manager; row 4 the engine's memory per instance.
	"bench/eval.go": {"engine.New"},
	"bench/mem.go":  {"engine.New"},
	// Row 8 measures the engine's evaluation cycle split over replicas
	// sharing one store (several engines in one process).
	"bench/cluster.go": {"engine.New"},
	// Row 2 measures the heartbeat tracker's ping handler alone against a
	// bare handler.
	"bench/ping.go": {"heartbeat.New"},
	// The silence benchmark measures the engine's matching of instances
	// against silences alone.
	"bench/silence_test.go": {"engine.New"},
}

func TestStackIsWiredOnlyInApp(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	problems, err := checkWiring(root, wiringExceptions)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestWiringCheckFindsASecondWiring: the check above can fail. A module
// whose cmd builds the engine and the runner itself (under another import
// name, and as a function value; cmd/x/main.go is no test, so the pattern
// of tests does not allow it), whose app tests build the engine, and whose
// exceptions name calls that are gone, is reported in each of those.
func TestWiringCheckFindsASecondWiring(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.mod":                  "module github.com/assertd/assertd\n",
		"engine/engine.go":        "package engine\n\nfunc New() {}\n",
		"engine/engine_test.go":   "package engine_test\n\nimport \"github.com/assertd/assertd/engine\"\n\nvar _ = engine.New\n",
		"remediations/runner.go":  "package remediations\n\nfunc NewRunner() {}\n",
		"app/app.go":              "package app\n\nimport \"github.com/assertd/assertd/engine\"\n\nfunc New() { engine.New() }\n",
		"app/app_test.go":         "package app\n\nimport \"github.com/assertd/assertd/engine\"\n\nfunc f() { engine.New() }\n",
		"bench/ok.go":             "package bench\n\nimport \"github.com/assertd/assertd/engine\"\n\nfunc f() { engine.New() }\n",
		"cmd/x/main.go":           "package main\n\nimport (\n\teng \"github.com/assertd/assertd/engine\"\n\t\"github.com/assertd/assertd/remediations\"\n)\n\nfunc main() {\n\teng.New()\n\tnewRunner := remediations.NewRunner\n\tnewRunner()\n}\n",
		"cmd/x/shadow.go":         "package main\n\nimport \"github.com/assertd/assertd/engine\"\n\nfunc g() {\n\tvar engine struct{ New func() }\n\tengine.New()\n}\n",
		"testdata/ignored/x.go":   "package x\n\nimport \"github.com/assertd/assertd/engine\"\n\nvar _ = engine.New\n",
		"cmd/y/dot.go":            "package y\n\nimport . \"github.com/assertd/assertd/engine\"\n\nvar _ = New\n",
		"internal/z/unrelated.go": "package z\n\nimport \"strings\"\n\nvar _ = strings.NewReader\n",
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	problems, err := checkWiring(root, map[string][]string{
		"bench/ok.go":     {"engine.New"},
		"bench/gone*.go":  {"engine.New"},
		"cmd/x/*_test.go": {"engine.New"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(problems, "\n")
	for _, want := range []string{
		"cmd/x/main.go:9: engine.New",
		"cmd/x/main.go:10: remediations.NewRunner",
		"app/app_test.go:5: engine.New",
		"cmd/y/dot.go:3: a dot import of github.com/assertd/assertd/engine",
		"bench/gone*.go: listed as calling engine.New, which no such file does",
		"cmd/x/*_test.go: listed as calling engine.New, which no such file does",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in the problems:\n%s", want, got)
		}
	}
	if len(problems) != 6 {
		t.Errorf("%d problems, want 6 (app.go, the engine's own test, bench/ok.go, the shadowing local, testdata and strings are fine):\n%s", len(problems), got)
	}
}

// checkWiring reports every reference, in the Go files of the module at
// root, to a constructor of the stack from outside app's code and the
// constructor's own package, that exceptions do not allow; and every
// exception that matches no reference.
func checkWiring(root string, exceptions map[string][]string) ([]string, error) {
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	var module string
	for _, line := range strings.Split(string(mod), "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			module = strings.TrimSpace(m)
		}
	}
	if module == "" {
		return nil, fmt.Errorf("%s/go.mod names no module", root)
	}
	ctors := map[string][]string{} // import path → names
	for p, names := range constructors {
		ctors[module+"/"+p] = names
	}
	var problems []string
	used := map[string]bool{} // "file constructor" of an exception that was met
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, p, nil, 0) // with object resolution: a local that shadows an import is told apart
		if err != nil {
			return err
		}
		dirPath := module
		if dir := path.Dir(rel); dir != "." {
			dirPath = module + "/" + dir
		}
		isTest := strings.HasSuffix(rel, "_test.go")
		names := map[string]string{} // local name → import path, of the constructor packages
		for _, im := range f.Imports {
			ip, _ := strconv.Unquote(im.Path.Value)
			if _, ok := ctors[ip]; !ok || ip == dirPath {
				continue
			}
			name := path.Base(ip)
			if im.Name != nil {
				name = im.Name.Name
			}
			if name == "." {
				problems = append(problems, fmt.Sprintf("%s:%d: a dot import of %s: the stack is built by app.New only", rel, fset.Position(im.Pos()).Line, ip))
				continue
			}
			names[name] = ip
		}
		if len(names) == 0 {
			return nil
		}
		inApp := dirPath == module+"/app" && !isTest
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok || id.Obj != nil { // id.Obj: a local that shadows the import
				return true
			}
			ip, ok := names[id.Name]
			if !ok || !slices.Contains(ctors[ip], sel.Sel.Name) {
				return true
			}
			what := path.Base(ip) + "." + sel.Sel.Name
			if inApp {
				return true
			}
			allowed := false
			for pattern, whats := range exceptions {
				if ok, _ := path.Match(pattern, rel); ok && slices.Contains(whats, what) {
					used[pattern+" "+what], allowed = true, true
				}
			}
			if !allowed {
				problems = append(problems, fmt.Sprintf("%s:%d: %s: the stack is built by app.New only (app.Options and the App's accessors give a test or a driver what it replaces)",
					rel, fset.Position(sel.Pos()).Line, what))
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for pattern, whats := range exceptions {
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, fmt.Errorf("exception %q: %w", pattern, err)
		}
		for _, what := range whats {
			if !used[pattern+" "+what] {
				problems = append(problems, fmt.Sprintf("%s: listed as calling %s, which no such file does: drop it from the exceptions", pattern, what))
			}
		}
	}
	slices.Sort(problems)
	return problems, nil
}
