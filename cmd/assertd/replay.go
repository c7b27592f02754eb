package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/replay"
)

type replayCmd struct {
	Config  string `short:"c" default:"assertd.yaml" placeholder:"FILE" help:"assertd.yaml."`
	From    string `required:"" placeholder:"AGO|TIME" help:"Start of the window: a duration ago (7d, 24h) or a time (RFC 3339)."`
	To      string `default:"now" placeholder:"AGO|TIME" help:"End of the window: now, a duration ago or a time (RFC 3339)."`
	Step    string `default:"30s" placeholder:"DURATION" help:"Evaluate every this long (the range queries' step)."`
	Chunk   string `default:"2h" placeholder:"DURATION" help:"Span of one range query: memory is bounded by one chunk per distinct query."`
	Format  string `enum:"text,json,markdown,junit,html" default:"text" help:"Output format: text, json, markdown (a pull-request comment), junit, or html (a page with a timeline per assert)."`
	Compare string `placeholder:"DIR|GITREF" help:"Replay the same window with another version of the rules (a directory or a git ref) and print the difference."`
	FailOn  string `enum:",more-pages" default:"" help:"With --compare: exit 1 when this version would have paged more (more-pages)."`
}

// Run exits 1 only when --fail-on matches; every error is 2.
func (c *replayCmd) Run(e *env) error {
	err := c.run(e)
	var ec exitCode
	if err == nil || errors.As(err, &ec) {
		return err
	}
	fmt.Fprintln(e.stderr, "assertd replay:", err)
	return exitCode(2)
}

func (c *replayCmd) run(e *env) error {
	now := time.Now()
	from, err := when(c.From, now)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := when(c.To, now)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	step, err := assertd.ParseDuration(c.Step)
	if err != nil || step <= 0 {
		return fmt.Errorf("--step %s: write a duration such as 30s", c.Step)
	}
	chunk, err := assertd.ParseDuration(c.Chunk)
	if err != nil || chunk <= 0 {
		return fmt.Errorf("--chunk %s: write a duration such as 2h", c.Chunk)
	}
	if c.Compare != "" && (c.Format == "junit" || c.Format == "html") {
		return fmt.Errorf("--format %s with --compare: write text, json or markdown (the diff's formats)", c.Format)
	}
	if c.FailOn != "" && c.Compare == "" {
		return fmt.Errorf("--fail-on %s compares: add --compare DIR|GITREF", c.FailOn)
	}
	set, errs := config.Load(c.Config)
	if len(errs) > 0 {
		for _, err := range errs {
			fmt.Fprintln(e.stderr, err)
		}
		return exitCode(2)
	}
	o := replay.Options{ConfigPath: c.Config, From: from, To: to, Step: step, Chunk: chunk, DataDir: set.DataDir()}
	rep, err := replay.Run(e.ctx, o)
	if err != nil {
		return err
	}
	if c.Compare == "" {
		return replay.Write(e.stdout, rep, c.Format)
	}
	v, err := replay.OpenVersion(e.ctx, c.Config, c.Compare)
	if err != nil {
		return err
	}
	defer v.Close()
	o.ConfigPath = v.Config
	base, err := replay.Run(e.ctx, o)
	if err != nil {
		return fmt.Errorf("--compare %s: %w", c.Compare, err)
	}
	d := replay.Compare(base, rep, c.Compare)
	if err := replay.WriteDiff(e.stdout, d, c.Format); err != nil {
		return err
	}
	if c.FailOn == "more-pages" && d.MorePages() {
		fmt.Fprintf(e.stderr, "assertd replay: this version would have paged %d times, %s %d\n", d.Pages, c.Compare, d.BasePages)
		return exitCode(1)
	}
	return nil
}

// when reads a time: now, a duration ago or RFC 3339.
func when(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if d, err := assertd.ParseDuration(strings.TrimSuffix(s, " ago")); err == nil {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: write a duration ago (24h, 7d) or a time such as 2026-11-22T01:00:00Z", s)
	}
	return t, nil
}
