package config

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/assertd/assertd/internal/strictyaml"
)

// Report is the outcome of checking files, as `assertd check` prints it.
type Report struct {
	Files        []string            `json:"files"`
	Asserts      int                 `json:"asserts"`
	Heartbeats   int                 `json:"heartbeats"`
	Remediations int                 `json:"remediations"`
	RuleGroups   int                 `json:"rule_groups,omitempty"`
	Rules        int                 `json:"rules,omitempty"`
	Errors       []*strictyaml.Error `json:"errors"`
	// Warnings are problems that do not stop the files from loading, such
	// as a label that reaches a url or an argv without an allow pattern.
	Warnings []*strictyaml.Error `json:"warnings"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Errors) == 0 }

func (r *Report) add(set *Set, errs strictyaml.Errors) {
	r.Errors = append(r.Errors, errs...)
	if set == nil {
		return
	}
	for _, f := range append([]string{set.ConfigPath}, set.Files...) {
		if f != "" && !slices.Contains(r.Files, f) {
			r.Files = append(r.Files, f)
		}
	}
	r.Asserts += len(set.Asserts)
	r.Heartbeats += len(set.Heartbeats)
	r.Remediations += len(set.Remediations)
	g, n := set.RuleCount()
	r.RuleGroups += g
	r.Rules += n
	for _, rem := range set.Remediations {
		r.Warnings = append(r.Warnings, rem.Warnings...)
	}
}

// Check checks files the way `assertd check` does.
//
// With no paths it loads the config at cfgPath with every file it lists. With
// paths and an explicit config, the given rule files are checked in that
// config's context instead of the files it lists. With paths alone, every
// config among them is checked with its files, and the rule files no config
// covers are checked together on their own.
func Check(cfgPath string, cfgGiven bool, paths []string) *Report {
	rep := &Report{}
	if len(paths) == 0 {
		if _, err := os.Stat(cfgPath); err != nil && !cfgGiven {
			rep.Errors = append(rep.Errors, &strictyaml.Error{Pos: strictyaml.Pos{File: cfgPath},
				Msg: "no config here: pass -c path/to/assertd.yaml, or the files to check, such as assertd check examples/..."})
			return rep.finish()
		}
		set, errs := Load(cfgPath)
		rep.add(set, errs)
		return rep.finish()
	}
	files, errs := ExpandPaths(paths)
	rep.Errors = append(rep.Errors, errs...)
	var configs, rules []string
	for _, f := range files {
		switch {
		case IsTestFile(f):
			continue // checked by assertd test
		case isConfigFile(f):
			configs = append(configs, f)
		default:
			rules = append(rules, f)
		}
	}
	if cfgGiven {
		cfg, pos, errs := LoadConfig(cfgPath)
		rep.Errors = append(rep.Errors, errs...)
		if cfg != nil {
			set, errs := LoadRules(cfgPath, cfg, pos, rules)
			rep.add(set, errs)
		}
		return rep.finish()
	}
	covered := map[string]bool{}
	for _, c := range configs {
		set, errs := Load(c)
		rep.add(set, errs)
		if set != nil {
			for _, f := range set.Files {
				covered[filepath.Clean(f)] = true
			}
		}
	}
	var rest []string
	for _, f := range rules {
		if !covered[filepath.Clean(f)] {
			rest = append(rest, f)
		}
	}
	if len(rest) > 0 {
		set, errs := LoadRules("", nil, nil, rest)
		rep.add(set, errs)
	}
	return rep.finish()
}

func (r *Report) finish() *Report {
	r.Errors = strictyaml.Errors(r.Errors).Sort()
	for _, e := range r.Errors {
		// A file with a positioned error was read, even if nothing loaded.
		if e.Pos.Line > 0 && !slices.Contains(r.Files, e.Pos.File) {
			r.Files = append(r.Files, e.Pos.File)
		}
	}
	if r.Errors == nil {
		r.Errors = []*strictyaml.Error{}
	}
	r.Warnings = strictyaml.Errors(r.Warnings).Sort()
	if r.Warnings == nil {
		r.Warnings = []*strictyaml.Error{}
	}
	return r
}

// ExpandPaths turns command-line paths into YAML files: a file stands for
// itself, a directory for the YAML files in it, dir/... for the YAML files
// anywhere below it, and a pattern with * ? [ for its matches.
func ExpandPaths(args []string) ([]string, strictyaml.Errors) {
	var errs strictyaml.Errors
	var out []string
	add := func(f string) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	isYAML := func(p string) bool { return strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") }
	for _, arg := range args {
		if dir, ok := strings.CutSuffix(arg, "..."); ok {
			dir = filepath.Clean(strings.TrimSuffix(dir, "/"))
			if dir == "" {
				dir = "."
			}
			n := 0
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() && p != dir && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
					return filepath.SkipDir
				}
				if !d.IsDir() && isYAML(p) {
					add(p)
					n++
				}
				return nil
			})
			if err != nil {
				errs.Add(strictyaml.Pos{File: arg}, "cannot read: %v", unwrapPathError(err))
			} else if n == 0 {
				errs.Add(strictyaml.Pos{File: arg}, "no .yaml or .yml files below %s", dir)
			}
			continue
		}
		if strings.ContainsAny(arg, "*?[") {
			matches, err := filepath.Glob(arg)
			if err != nil || len(matches) == 0 {
				errs.Add(strictyaml.Pos{File: arg}, "pattern matches no file")
			}
			for _, m := range matches {
				add(m)
			}
			continue
		}
		st, err := os.Stat(arg)
		switch {
		case err != nil:
			errs.Add(strictyaml.Pos{File: arg}, "cannot read: %v", unwrapPathError(err))
		case st.IsDir():
			entries, _ := os.ReadDir(arg)
			n := 0
			for _, e := range entries {
				if !e.IsDir() && isYAML(e.Name()) {
					add(filepath.Join(arg, e.Name()))
					n++
				}
			}
			if n == 0 {
				errs.Add(strictyaml.Pos{File: arg}, "no .yaml or .yml files in this directory (use %s/... to include subdirectories)", strings.TrimSuffix(arg, "/"))
			}
		default:
			add(arg)
		}
	}
	return out, errs
}

// ruleKeys are the top-level keys of a rule file.
var ruleKeys = []string{"asserts", "heartbeats", "remediations"}

// isConfigFile tells assertd.yaml files from rule files: by name, or by a
// top-level key that only a config has.
func isConfigFile(path string) bool {
	base := filepath.Base(path)
	if base == "assertd.yaml" || base == "assertd.yml" {
		return true
	}
	for _, k := range topKeys(path) {
		if !slices.Contains(ruleKeys, k) && slices.Contains(strictyaml.Keys(reflectConfig), k) {
			return true
		}
	}
	return false
}

// IsTestFile reports whether path is an `assertd test` file: one with a
// top-level tests: key.
func IsTestFile(path string) bool { return slices.Contains(topKeys(path), "tests") }

func topKeys(path string) []string {
	data, errs := readFile(path)
	if errs != nil {
		return nil
	}
	doc, _ := strictyaml.Parse(path, data)
	if doc == nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	top := doc.Content[0]
	for i := 0; i < len(top.Content); i += 2 {
		keys = append(keys, top.Content[i].Value)
	}
	return keys
}

// WriteText prints one path:line:col: message line per problem (warnings
// as path:line:col: warning: message), then a summary. Warnings do not
// make the report fail.
func (r *Report) WriteText(out, summary io.Writer) {
	for _, e := range r.Errors {
		fmt.Fprintln(out, e.Error())
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(out, "%s: warning: %s\n", w.Pos, w.Msg)
	}
	counts := fmt.Sprintf("%s, %s, %s in %s", plural(r.Asserts, "assert"), plural(r.Heartbeats, "heartbeat"),
		plural(r.Remediations, "remediation"), plural(len(r.Files), "file"))
	if r.RuleGroups > 0 {
		counts = fmt.Sprintf("%s, %s, %s, %s (%s) in %s", plural(r.Asserts, "assert"), plural(r.Heartbeats, "heartbeat"),
			plural(r.Remediations, "remediation"), plural(r.RuleGroups, "Prometheus rule group"), plural(r.Rules, "rule"), plural(len(r.Files), "file"))
	}
	if len(r.Warnings) > 0 {
		counts += ", " + plural(len(r.Warnings), "warning")
	}
	if r.OK() {
		fmt.Fprintf(summary, "ok: %s\n", counts)
		return
	}
	fmt.Fprintf(summary, "%s: %s\n", plural(len(r.Errors), "error"), counts)
}

// WriteJSON prints the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		OK bool `json:"ok"`
		*Report
	}{r.OK(), r})
}
