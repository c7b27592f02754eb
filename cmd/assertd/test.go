package main

import (
	"fmt"
	"os"

	"github.com/assertd/assertd/asserttest"
	"github.com/assertd/assertd/config"
)

type testCmd struct {
	JUnit string   `placeholder:"FILE" help:"Also write the results as JUnit XML to FILE."`
	Paths []string `arg:"" help:"Test files, directories, dir/... or globs (files with a top-level tests: key)."`
}

func (c *testCmd) Run(e *env) error {
	files, errs := config.ExpandPaths(c.Paths)
	for _, err := range errs {
		fmt.Fprintln(e.stderr, err)
	}
	var all []asserttest.Result
	failed := len(errs) > 0
	n := 0
	for _, f := range files {
		if !config.IsTestFile(f) {
			continue
		}
		n++
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
	if !asserttest.Report(e.stdout, all) {
		failed = true
	}
	if c.JUnit != "" {
		f, err := os.Create(c.JUnit)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := asserttest.JUnit(f, all); err != nil {
			return err
		}
	}
	if failed {
		fmt.Fprintln(e.stdout, "FAIL")
		return exitCode(1)
	}
	fmt.Fprintf(e.stdout, "PASS: %d tests in %d files\n", len(all), n)
	return nil
}
