package main

import (
	"fmt"
	"os"

	"github.com/prometheus/prometheus/util/junitxml"

	"github.com/assertd/assertd/asserttest"
	"github.com/assertd/assertd/asserttest/promunit"
	"github.com/assertd/assertd/config"
)

type testCmd struct {
	JUnit               string   `name:"junit" placeholder:"FILE" help:"Also write the results as JUnit XML to FILE."`
	RunGroups           []string `name:"run" placeholder:"REGEXP" help:"promtool test files: run only the test groups whose names match (may be repeated)."`
	IgnoreUnknownFields bool     `help:"promtool test files: ignore unknown fields in test and rule files."`
	Debug               bool     `help:"promtool test files: print each group's timing and a dump of its data."`
	Paths               []string `arg:"" help:"Test files, directories, dir/... or globs (files with a top-level tests: key): assertd test files (with config:) and promtool rule unit test files."`
}

func (c *testCmd) Run(e *env) error {
	files, errs := config.ExpandPaths(c.Paths)
	for _, err := range errs {
		fmt.Fprintln(e.stderr, err)
	}
	prom, err := promunit.NewRunner(promunit.Options{
		Run: c.RunGroups, IgnoreUnknownFields: c.IgnoreUnknownFields, Debug: c.Debug,
		Stdout: e.stdout, Stderr: e.stderr,
	})
	if err != nil {
		return err
	}
	var all []asserttest.Result
	failed := len(errs) > 0
	n, promFiles := 0, 0
	for _, f := range files {
		if !config.IsTestFile(f) {
			continue
		}
		n++
		if promunit.IsTestPath(f) {
			// promtool's format, run and reported as promtool does.
			promFiles++
			prom.RunFile(f)
			continue
		}
		res, err := asserttest.RunFile(e.ctx, f)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			failed = true
			continue
		}
		all = append(all, res...)
	}
	if n == 0 {
		fmt.Fprintln(e.stderr, "assertd test: no test files (YAML files with a top-level tests: key) in", c.Paths)
		return exitCode(1)
	}
	failed = failed || prom.Failed
	native := n - promFiles
	if native > 0 && !asserttest.Report(e.stdout, all) {
		failed = true
	}
	if c.JUnit != "" {
		if err := c.writeJUnit(prom, all, promFiles > 0); err != nil {
			return err
		}
	}
	if native == 0 {
		// promtool prints nothing more.
		if failed {
			return exitCode(promunit.ExitFailure)
		}
		return nil
	}
	if failed {
		fmt.Fprintln(e.stdout, "FAIL")
		return exitCode(1)
	}
	fmt.Fprintf(e.stdout, "PASS: %d tests in %d files\n", len(all), n)
	return nil
}

// writeJUnit writes assertd's JUnit XML, or promtool's when promtool files
// ran (with assertd's results as one more suite).
func (c *testCmd) writeJUnit(prom *promunit.Runner, all []asserttest.Result, promtool bool) error {
	f, err := os.Create(c.JUnit)
	if err != nil {
		return err
	}
	defer f.Close()
	if !promtool {
		return asserttest.JUnit(f, all)
	}
	if len(all) > 0 {
		s := prom.JUnit.Suite("assertd")
		for _, r := range all {
			s.Case(r.Name)
			for _, msg := range r.Failures {
				s.Fail(msg)
			}
		}
	}
	return writeJUnitXML(f, &prom.JUnit)
}

func writeJUnitXML(f *os.File, j *junitxml.JUnitXML) error {
	if err := j.WriteXML(f); err != nil {
		return err
	}
	return f.Close()
}
