// Package main is assertd, the one binary: it checks assert files, runs the
// engine and the demo, and answers the operator commands.
// It only parses flags; the work is done by the packages it calls.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
)

type cli struct {
	Run          runCmd    `cmd:"" help:"Run assertd: evaluate, act and serve the HTTP listener."`
	Status       statusCmd `cmd:"" help:"Print the instances, worst first: from the API with --url, else from the store."`
	operatorCmds `embed:""`
	Check        checkCmd   `cmd:"" help:"Check assertd.yaml and assert/remediation files; report every problem as path:line:col."`
	Eval         evalCmd    `cmd:"" help:"Evaluate one assert now: every instance with its values and verdict."`
	Test         testCmd    `cmd:"" help:"Run assertd test files: input series and pings against the real engine, expectations at times."`
	Replay       replayCmd  `cmd:"" help:"Replay the engine over history: what it would have paged and remediated; --compare diffs two versions of the rules."`
	Import       importCmd  `cmd:"" help:"Import other formats: prometheus-rules."`
	Schema       schemaCmd  `cmd:"" help:"Print the JSON Schema of rule files (rules) or of assertd.yaml (config)."`
	Demo         demoCmd    `cmd:"" help:"Run the demo: a demo service, the quickstart asserts and the UI on 127.0.0.1:8080."`
	Version      versionCmd `cmd:"" help:"Print the version, the VCS revision and the Go version assertd was built with."`
}

// exitCode carries a process exit status without printing anything more.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
}

type checkCmd struct {
	Config string   `short:"c" placeholder:"FILE" help:"assertd.yaml (default ./assertd.yaml). With PATHs: the config (policies, sources, heartbeats) they are checked against."`
	Output string   `short:"o" enum:"text,json" default:"text" help:"Output format: text or json."`
	Paths  []string `arg:"" optional:"" help:"Files, directories, dir/... (recursive) or globs. Default: the files the config lists."`
}

func (c *checkCmd) Run(e *env) error {
	cfg, given := c.Config, c.Config != ""
	if !given {
		cfg = "assertd.yaml"
	}
	rep := config.Check(cfg, given, c.Paths)
	if c.Output == "json" {
		if err := rep.WriteJSON(e.stdout); err != nil {
			return err
		}
	} else {
		rep.WriteText(e.stdout, e.stderr)
	}
	if !rep.OK() {
		return exitCode(1)
	}
	return nil
}

type schemaCmd struct {
	Kind string `arg:"" enum:"rules,config" help:"rules or config."`
}

func (c *schemaCmd) Run(e *env) error {
	f := config.RulesSchema
	if c.Kind == "config" {
		f = config.ConfigSchema
	}
	out, err := f()
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}

type versionCmd struct {
	Output string `short:"o" enum:"text,json" default:"text" help:"Output format: text or json."`
}

func (c versionCmd) Run(e *env) error {
	b := assertd.Build()
	if c.Output == "json" {
		return json.NewEncoder(e.stdout).Encode(b)
	}
	fmt.Fprintf(e.stdout, "assertd, version %s (revision: %s)\n  go version: %s\n", b.Version, b.Revision, b.GoVersion)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	exit := -1
	parser, err := kong.New(&c, kong.Name("assertd"),
		kong.Description("Assertion-based monitoring and auto-remediation."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exit = code }),
		kong.UsageOnError())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if exit >= 0 {
		return exit
	}
	if err != nil {
		fmt.Fprintf(stderr, "assertd: %v\n", err)
		return 2
	}
	err = kctx.Run(&env{ctx: ctx, stdout: stdout, stderr: stderr})
	var ec exitCode
	switch {
	case errors.As(err, &ec):
		return int(ec)
	case err != nil:
		fmt.Fprintf(stderr, "assertd: %v\n", err)
		return 1
	}
	return 0
}
