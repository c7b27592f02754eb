package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/asserts"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/sources"
)

type evalCmd struct {
	Config string `short:"c" default:"assertd.yaml" placeholder:"FILE" help:"assertd.yaml."`
	At     string `placeholder:"TIME" help:"Evaluate at this time (RFC 3339); default now."`
	Output string `short:"o" enum:"text,json" default:"text" help:"Output format: text or json."`
	Name   string `arg:"" help:"The assert to evaluate."`
}

func (c *evalCmd) Run(e *env) error {
	set, errs := config.Load(c.Config)
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(e.stderr, err)
		}
		return exitCode(2)
	}
	a := set.Assert(c.Name)
	if a == nil {
		var names []string
		for _, a := range set.Asserts {
			names = append(names, a.Name)
		}
		fmt.Fprintf(e.stderr, "assertd eval: no assert %q in %s; the asserts are: %s\n", c.Name, c.Config, strings.Join(names, ", "))
		return exitCode(2)
	}
	at := time.Now()
	if c.At != "" {
		t, err := time.Parse(time.RFC3339, c.At)
		if err != nil {
			return fmt.Errorf("--at: write a time such as 2026-11-22T01:00:00Z: %w", err)
		}
		at = t
	}
	src := set.SourceName(a)
	var ev asserts.Evaluation
	q, closeSrc, err := sources.OpenForEval(set, src, os.Getenv)
	if err != nil {
		ev = asserts.Evaluation{At: at, SourceErr: err}
	} else {
		defer func() { _ = closeSrc() }() // read-only: nothing to lose on close
		ev = a.Evaluate(e.ctx, q, noHeartbeats, at)
	}
	if c.Output == "json" {
		return writeEvalJSON(e, a, src, ev)
	}
	writeEvalText(e, a, src, ev)
	return nil
}

// noHeartbeats answers heartbeat() for eval, which has no heartbeat state of
// its own (pings are recorded by assertd run).
func noHeartbeats(name string) (asserts.HeartbeatStatus, error) {
	return asserts.HeartbeatStatus{Name: name}, fmt.Errorf("heartbeat %s: eval has no heartbeat state (pings are recorded by assertd run)", name)
}

func sourceReason(err error) string {
	switch {
	case errors.Is(err, assertd.ErrSourceUnavailable):
		return "source unavailable: " + strings.Replace(err.Error(), assertd.ErrSourceUnavailable.Error()+": ", "", 1)
	case errors.Is(err, assertd.ErrBadQuery):
		return "bad query: " + strings.Replace(err.Error(), assertd.ErrBadQuery.Error()+": ", "", 1)
	}
	return "source error: " + err.Error()
}

func writeEvalText(e *env, a *asserts.Compiled, src string, ev asserts.Evaluation) {
	fmt.Fprintf(e.stdout, "%s (%s) at %s, source %s\n", a.Name, a.Pos, ev.At.UTC().Format(time.RFC3339), src)
	fmt.Fprintf(e.stdout, "expect: %s\n", a.Assert.Expect)
	if ev.SourceErr != nil {
		fmt.Fprintf(e.stdout, "uncertain (%s)\n", sourceReason(ev.SourceErr))
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	counts := map[assertd.State]int{}
	for _, v := range ev.Verdicts {
		counts[v.State]++
		var vals []string
		for _, k := range a.QueryNames() {
			if x, ok := v.Values[k]; ok {
				vals = append(vals, k+"="+strconv.FormatFloat(x, 'g', 6, 64))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Labels, v.State, strings.Join(vals, " "), v.Reason)
	}
	tw.Flush()
	var parts []string
	for _, s := range []assertd.State{assertd.Violated, assertd.Uncertain, assertd.OK} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	noun := "instances"
	if len(ev.Verdicts) == 1 {
		noun = "instance"
	}
	fmt.Fprintf(e.stdout, "%d %s: %s\n", len(ev.Verdicts), noun, strings.Join(parts, ", "))
}

func writeEvalJSON(e *env, a *asserts.Compiled, src string, ev asserts.Evaluation) error {
	out := struct {
		Assert    string            `json:"assert"`
		Position  string            `json:"position"`
		Source    string            `json:"source"`
		At        time.Time         `json:"at"`
		Uncertain string            `json:"uncertain,omitempty"`
		Verdicts  []asserts.Verdict `json:"verdicts"`
	}{a.Name, a.Pos.String(), src, ev.At.UTC(), "", ev.Verdicts}
	if ev.SourceErr != nil {
		out.Uncertain = sourceReason(ev.SourceErr)
	}
	if out.Verdicts == nil {
		out.Verdicts = []asserts.Verdict{}
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
