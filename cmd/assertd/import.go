package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/assertd/assertd/promimport"
)

type importCmd struct {
	PrometheusRules importRulesCmd `cmd:"" name:"prometheus-rules" help:"Write native assert files from Prometheus alerting rule files (and assertd tests from their promtool tests)."`
}

type importRulesCmd struct {
	Out                string            `short:"o" placeholder:"DIR" help:"Write NAME.asserts.yaml per rule file into DIR (default: print to stdout)."`
	EvaluationInterval time.Duration     `default:"1m" help:"The interval of groups without one (Prometheus' evaluation_interval)."`
	ExternalLabel      map[string]string `placeholder:"NAME=VALUE" help:"The value of $externalLabels.NAME in annotations (repeatable)."`
	ExternalURL        string            `placeholder:"URL" help:"The value of $externalURL in annotations."`
	Tests              []string          `placeholder:"FILE" help:"promtool test files of these rules: also write them as assertd test files (with an assertd.yaml) into --out."`
	Files              []string          `arg:"" help:"Prometheus rule files (groups:)."`
}

func (c *importRulesCmd) Run(e *env) error {
	res, err := promimport.Import(c.Files, promimport.Options{EvaluationInterval: c.EvaluationInterval,
		ExternalLabels: c.ExternalLabel, ExternalURL: c.ExternalURL})
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return exitCode(1)
	}
	for _, s := range res.Skipped {
		fmt.Fprintln(e.stderr, "not imported:", s)
	}
	if len(res.Recorded) > 0 {
		fmt.Fprintf(e.stderr, "not imported: %d recording rules (%s); asserts read what Prometheus records\n", len(res.Recorded), strings.Join(res.Recorded, ", "))
	}
	if c.Out == "" {
		if len(c.Tests) > 0 {
			return fmt.Errorf("--tests needs --out DIR")
		}
		for _, f := range c.Files {
			fmt.Fprint(e.stdout, string(res.Files[f]))
		}
		return nil
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	var names []string
	for _, f := range c.Files {
		name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)) + ".asserts.yaml"
		names = append(names, name)
		if err := os.WriteFile(filepath.Join(c.Out, name), res.Files[f], 0o644); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, filepath.Join(c.Out, name))
	}
	if len(c.Tests) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(c.Out, "assertd.yaml"), promimport.Config(names), 0o644); err != nil {
		return err
	}
	for _, t := range c.Tests {
		tf, err := promimport.ReadTestFile(t)
		if err != nil {
			return err
		}
		for _, d := range tf.Reduce(res) {
			fmt.Fprintf(e.stderr, "%s: not converted: %s\n", t, d)
		}
		base := strings.TrimSuffix(filepath.Base(t), filepath.Ext(t))
		for i := range tf.Groups() {
			b, err := tf.ConvertGroup(i, res, "assertd.yaml")
			if err != nil {
				return fmt.Errorf("%s: %w", t, err)
			}
			name := filepath.Join(c.Out, fmt.Sprintf("%s.%d.test.yaml", base, i+1))
			if err := os.WriteFile(name, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, name)
		}
	}
	return nil
}
