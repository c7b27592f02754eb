package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/assertd/assertd"
	"github.com/assertd/assertd/app"
	"github.com/assertd/assertd/config"
	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/replay"
)

type runCmd struct {
	Config      string `name:"config.file" short:"c" aliases:"config" default:"assertd.yaml" placeholder:"FILE" help:"assertd.yaml."`
	Listen      string `name:"web.listen-address" aliases:"listen" placeholder:"ADDR" help:"Listen on this address instead of web.listen."`
	ExternalURL string `name:"web.external-url" placeholder:"URL" help:"URL of the UI as people reach it, for links in messages (instead of web.external_url)."`
	WebConfig   string `name:"web.config.file" placeholder:"FILE" help:"Prometheus web configuration file (exporter-toolkit format): TLS, client certificates, basic-auth users; read again when it changes."`
	Storage     string `name:"storage.path" placeholder:"DIR" help:"Keep the store and the TSDB in DIR instead of data_dir."`
	logFlags
}

// Validate checks what the configuration's loader would check of the
// settings the flags override.
func (c *runCmd) Validate() error {
	if c.ExternalURL == "" {
		return nil
	}
	u, err := url.Parse(c.ExternalURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--web.external-url %q: write an absolute http or https URL, e.g. https://assertd.example.com/", c.ExternalURL)
	}
	return nil
}

// logFlags choose the level and the format of assertd's logs.
type logFlags struct {
	LogLevel  string `name:"log.level" aliases:"log-level" enum:"debug,info,warn,error" default:"info" help:"Log level: debug, info, warn or error."`
	LogFormat string `name:"log.format" enum:"logfmt,json" default:"logfmt" help:"Log format: logfmt or json."`
}

// logger returns the logger the flags describe, writing to w.
func (f logFlags) logger(w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(f.LogLevel)) // kong checked the enum
	opts := &slog.HandlerOptions{Level: level}
	if f.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// options are the app.Options the flags set.
func (c *runCmd) options(e *env) app.Options {
	return app.Options{ConfigPath: c.Config, Listen: c.Listen, ExternalURL: c.ExternalURL, WebConfigFile: c.WebConfig, DataDir: c.Storage, Logger: c.logger(e.stderr),
		Replay: replay.InForce}
}

func (c *runCmd) Run(e *env) error {
	if err := app.Run(e.ctx, c.options(e)); err != nil {
		fmt.Fprintf(e.stderr, "assertd run: %v\n", err)
		return exitCode(1)
	}
	return nil
}

type statusCmd struct {
	Config string `short:"c" default:"assertd.yaml" placeholder:"FILE" help:"assertd.yaml (read when --url is not given)."`
	Output string `short:"o" enum:"text,json" default:"text" help:"Output format: text or json."`
	All    bool   `short:"a" help:"Show ok instances too."`
	apiFlags
}

func (c *statusCmd) Run(e *env) error {
	if c.URL != "" {
		// Through the API of a running assertd (the live view, silences included).
		var r struct {
			Instances []assertd.Instance `json:"instances"`
		}
		if err := c.client().call(e.ctx, "GET", "/api/v1/instances", nil, &r); err != nil {
			fmt.Fprintf(e.stderr, "assertd status: %v\n", err)
			return exitCode(1)
		}
		return c.print(e, r.Instances)
	}
	set, errs := config.Load(c.Config)
	if len(errs) > 0 {
		fmt.Fprintf(e.stderr, "assertd status: %s has errors (run assertd check):\n%v\n", c.Config, errs)
		return exitCode(2)
	}
	st, err := app.OpenStore(e.ctx, set, os.Getenv)
	if err != nil {
		fmt.Fprintf(e.stderr, "assertd status: %v\n", err)
		return exitCode(1)
	}
	defer st.Close()
	ins, err := st.Instances(e.ctx, "")
	if err != nil {
		fmt.Fprintf(e.stderr, "assertd status: %v\n", err)
		return exitCode(1)
	}
	engine.SortWorstFirst(ins)
	return c.print(e, ins)
}

func (c *statusCmd) print(e *env, ins []assertd.Instance) error {
	if c.Output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"instances": ins})
	}
	now := time.Now()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tSINCE\tASSERT\tINSTANCE\tREASON")
	shown, counts := 0, map[string]int{}
	for _, in := range ins {
		counts[string(in.State)]++
		if in.State == "ok" && !c.All {
			continue
		}
		shown++
		state := string(in.State)
		switch {
		case in.Underlying != "":
			state += " (" + string(in.Underlying) + ")"
		case in.Held:
			state += " (held: " + string(in.HeldState) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s ago\t%s\t%s\t%s\n", state, now.Sub(in.Since).Round(time.Second), in.Assert, in.Labels, truncate(in.Reason, 120))
	}
	tw.Flush()
	var parts []string
	for _, s := range []string{"escalated", "remediating", "violated", "uncertain", "pending", "silenced", "ok"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	if len(ins) == 0 {
		parts = append(parts, "no instances yet (is assertd run running?)")
	}
	fmt.Fprintf(e.stdout, "%d instances: %s\n", len(ins), strings.Join(parts, ", "))
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
