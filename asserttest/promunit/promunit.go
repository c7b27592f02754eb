// Package promunit runs promtool's rule unit test files (`promtool test
// rules`) unchanged, with promtool's semantics, output and exit codes: the
// input series are loaded by Prometheus' promqltest lazy loader, the rule
// files by Prometheus' rule manager, and the rules are evaluated group by
// group at every evaluation interval from the start time, exactly as
// promtool does it.
//
// The evaluation and comparison logic is a port of promtool's
// cmd/promtool/unittest.go (github.com/prometheus/prometheus v0.315.0,
// Copyright The Prometheus Authors, Apache License 2.0), which lives in a
// main package and cannot be imported. It follows the module, not older
// promtool releases such as Debian's 2.42: start_timestamp, fuzzy_compare,
// native histograms in input_series and exp_samples, and a test group
// without interval taking the file's evaluation_interval all come from the
// module.
package promunit

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/util/junitxml"
	"go.yaml.in/yaml/v2"
)

// Options are promtool test rules' flags.
type Options struct {
	// Run, when set, runs only the test groups whose names match one of
	// these regular expressions (promtool's --run).
	Run []string
	// IgnoreUnknownFields ignores unknown fields in test and rule files
	// (promtool's --ignore-unknown-fields).
	IgnoreUnknownFields bool
	// Debug prints each group's timing and a dump of all data at its last
	// evaluation to Stderr (promtool's --debug).
	Debug bool
	// Stdout and Stderr receive promtool's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Exit codes, as promtool's.
const (
	ExitSuccess = 0
	ExitFailure = 1
)

// IsTestFile reports whether data is a promtool rule unit test file rather
// than an assertd test file: a top-level tests: key and no config: key (an
// assertd test file names the assertd.yaml under test).
func IsTestFile(data []byte) bool {
	var top map[string]any
	if err := yaml.Unmarshal(data, &top); err != nil {
		return false
	}
	_, tests := top["tests"]
	_, cfg := top["config"]
	return tests && !cfg
}

// IsTestPath is IsTestFile on a file's content; unreadable files are not
// test files.
func IsTestPath(path string) bool {
	data, err := os.ReadFile(path)
	return err == nil && IsTestFile(data)
}

// Runner runs promtool test files and collects their JUnit results.
type Runner struct {
	opts   Options
	run    *regexp.Regexp
	parser parser.Parser
	JUnit  junitxml.JUnitXML
	// Failed is set once a file has failed.
	Failed bool
}

// NewRunner returns a runner with promtool's query options: the @ modifier
// and negative offsets enabled, as promtool test rules enables them.
func NewRunner(opts Options) (*Runner, error) {
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	r := &Runner{opts: opts, parser: parser.NewParser(parser.Options{})}
	if len(opts.Run) > 0 {
		re, err := regexp.Compile(strings.Join(opts.Run, "|"))
		if err != nil {
			return nil, fmt.Errorf("--run: %w", err)
		}
		r.run = re
	}
	return r, nil
}

func (r *Runner) queryOpts() promqltest.LazyLoaderOpts {
	return promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true}
}

// RunFiles runs each file like promtool test rules and returns its exit
// code; JUnit XML goes to junit when it is not nil.
func RunFiles(opts Options, junit io.Writer, files ...string) (int, error) {
	r, err := NewRunner(opts)
	if err != nil {
		return ExitFailure, err
	}
	for _, f := range files {
		r.RunFile(f)
	}
	if junit != nil {
		if err := r.JUnit.WriteXML(junit); err != nil {
			return ExitFailure, fmt.Errorf("failed to write JUnit XML: %w", err)
		}
	}
	if r.Failed {
		return ExitFailure, nil
	}
	return ExitSuccess, nil
}

// RunFile runs one file and prints its verdict as promtool does: SUCCESS on
// stdout, or FAILED: and every error on stderr. It reports whether the file
// passed.
func (r *Runner) RunFile(filename string) bool {
	errs := r.ruleUnitTest(filename, r.JUnit.Suite(filename))
	if errs != nil {
		fmt.Fprintln(r.opts.Stderr, "  FAILED:")
		for _, e := range errs {
			fmt.Fprintln(r.opts.Stderr, e.Error())
			fmt.Fprintln(r.opts.Stdout)
		}
		r.Failed = true
	} else {
		fmt.Fprintln(r.opts.Stdout, "  SUCCESS")
	}
	fmt.Fprintln(r.opts.Stdout)
	return errs == nil
}

func (r *Runner) ruleUnitTest(filename string, ts *junitxml.TestSuite) []error {
	b, err := os.ReadFile(filename)
	if err != nil {
		ts.Abort(err)
		return []error{err}
	}
	var in unitTestFile
	if err := yaml.UnmarshalStrict(b, &in); err != nil {
		ts.Abort(err)
		return []error{err}
	}
	if err := r.resolveAndGlobFilepaths(filepath.Dir(filename), &in); err != nil {
		ts.Abort(err)
		return []error{err}
	}
	if in.EvaluationInterval == 0 {
		in.EvaluationInterval = model.Duration(time.Minute)
	}
	evalInterval := time.Duration(in.EvaluationInterval)
	ts.Settime(time.Now().Format("2006-01-02T15:04:05"))
	// Lower numbered groups are evaluated before higher numbered ones.
	groupOrderMap := make(map[string]int)
	for i, gn := range in.GroupEvalOrder {
		if _, ok := groupOrderMap[gn]; ok {
			err := fmt.Errorf("group name repeated in evaluation order: %s", gn)
			ts.Abort(err)
			return []error{err}
		}
		groupOrderMap[gn] = i
	}
	var errs []error
	for i, t := range in.Tests {
		if r.run != nil && !r.run.MatchString(t.TestGroupName) {
			continue
		}
		testname := t.TestGroupName
		if testname == "" {
			testname = fmt.Sprintf("unnamed#%d", i)
		}
		tc := ts.Case(testname)
		if t.Interval == 0 {
			t.Interval = in.EvaluationInterval
		}
		ers := r.test(&t, testname, evalInterval, groupOrderMap, in.FuzzyCompare, in.RuleFiles...)
		for _, e := range ers {
			tc.Fail(e.Error())
		}
		errs = append(errs, ers...)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// resolveAndGlobFilepaths joins relative rule file paths with the test
// file's directory and expands globs.
func (r *Runner) resolveAndGlobFilepaths(baseDir string, utf *unitTestFile) error {
	for i, rf := range utf.RuleFiles {
		if rf != "" && !filepath.IsAbs(rf) {
			utf.RuleFiles[i] = filepath.Join(baseDir, rf)
		}
	}
	var globbed []string
	for _, rf := range utf.RuleFiles {
		m, err := filepath.Glob(rf)
		if err != nil {
			return err
		}
		if len(m) == 0 {
			fmt.Fprintln(r.opts.Stderr, "  WARNING: no file match pattern", rf)
		}
		globbed = append(globbed, m...)
	}
	utf.RuleFiles = globbed
	return nil
}
