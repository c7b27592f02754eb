package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/assertd/assertd/demo"
)

type demoCmd struct {
	Run     demoRunCmd     `cmd:"" default:"withargs" help:"Run the demo (the default)."`
	Fault   demoFaultCmd   `cmd:"" help:"Switch a fault of the running demo service on (or off with --off)."`
	Restart demoRestartCmd `cmd:"" help:"Restart the running demo service by hand."`
}

type demoRunCmd struct {
	Data     string        `name:"storage.path" aliases:"data" placeholder:"DIR" help:"Keep data in DIR (default: a temporary directory)."`
	Listen   string        `name:"web.listen-address" aliases:"listen" default:"127.0.0.1:8080" help:"assertd's listener (the UI)."`
	Service  string        `default:"127.0.0.1:8081" help:"The demo service's address (the quickstart scrapes it there)."`
	AutoSlow time.Duration `default:"20s" help:"Start story 1 (a latency fault) after this; 0 to never."`
	Verbose  bool          `short:"v" help:"Show assertd's logs."`
	logFlags
}

func (c *demoRunCmd) Run(e *env) error {
	logger := slog.New(slog.DiscardHandler)
	if c.Verbose {
		logger = c.logger(e.stderr)
	}
	auto := c.AutoSlow
	if auto == 0 {
		auto = -1
	}
	if err := demo.Run(e.ctx, demo.Options{DataDir: c.Data, Listen: c.Listen, Service: c.Service, AutoSlow: auto, Out: e.stdout, Logger: logger}); err != nil {
		fmt.Fprintf(e.stderr, "assertd demo: %v\n", err)
		return exitCode(1)
	}
	return nil
}

type demoFaultCmd struct {
	Name    string `arg:"" enum:"latency,stuck-latency,connections,heartbeat" help:"latency, stuck-latency, connections or heartbeat."`
	Off     bool   `help:"Switch it off."`
	Service string `default:"127.0.0.1:8081" help:"The demo service's address."`
}

func (c *demoFaultCmd) Run(e *env) error {
	st, err := demo.SetFault(e.ctx, c.Service, c.Name, !c.Off)
	if err != nil {
		fmt.Fprintf(e.stderr, "assertd demo fault: %v\n", err)
		return exitCode(1)
	}
	fmt.Fprintf(e.stdout, "faults on: %s\n", orNone(strings.Join(st.SortedFaults(), ", ")))
	return nil
}

type demoRestartCmd struct {
	Service string `default:"127.0.0.1:8081" help:"The demo service's address."`
}

func (c *demoRestartCmd) Run(e *env) error {
	st, err := demo.RestartService(e.ctx, c.Service)
	if err != nil {
		fmt.Fprintf(e.stderr, "assertd demo restart: %v\n", err)
		return exitCode(1)
	}
	fmt.Fprintf(e.stdout, "restarted (%d restarts); faults on: %s\n", st.Restarts, orNone(strings.Join(st.SortedFaults(), ", ")))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
