package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// parse parses args into a cli without running the command.
func parse(t *testing.T, args ...string) (cli, string, error) {
	t.Helper()
	var c cli
	p, err := kong.New(&c, kong.Name("assertd"), kong.Writers(io.Discard, io.Discard), kong.Exit(func(int) {}))
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := p.Parse(args)
	if err != nil {
		return c, "", err
	}
	return c, kctx.Command(), nil
}

func TestRunFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want runCmd
	}{
		{"defaults", nil, runCmd{Config: "assertd.yaml", logFlags: logFlags{LogLevel: "info", LogFormat: "logfmt"}}},
		{"prometheus style", []string{"--config.file=/etc/assertd/assertd.yaml", "--web.listen-address=:9095",
			"--web.external-url=https://assertd.example.com/", "--storage.path=/var/lib/assertd", "--log.level=debug", "--log.format=json"},
			runCmd{Config: "/etc/assertd/assertd.yaml", Listen: ":9095", ExternalURL: "https://assertd.example.com/", Storage: "/var/lib/assertd",
				logFlags: logFlags{LogLevel: "debug", LogFormat: "json"}}},
		{"short aliases", []string{"-c", "a.yaml", "--listen", "127.0.0.1:0", "--log-level", "warn"},
			runCmd{Config: "a.yaml", Listen: "127.0.0.1:0", logFlags: logFlags{LogLevel: "warn", LogFormat: "logfmt"}}},
		{"long aliases", []string{"--config", "b.yaml", "--listen=:1"},
			runCmd{Config: "b.yaml", Listen: ":1", logFlags: logFlags{LogLevel: "info", LogFormat: "logfmt"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cmd, err := parse(t, append([]string{"run"}, tc.args...)...)
			if err != nil || cmd != "run" {
				t.Fatalf("parse: %q %v", cmd, err)
			}
			if c.Run != tc.want {
				t.Fatalf("got %+v\nwant %+v", c.Run, tc.want)
			}
			o := c.Run.options(&env{stderr: io.Discard})
			if o.ConfigPath != tc.want.Config || o.Listen != tc.want.Listen || o.ExternalURL != tc.want.ExternalURL || o.DataDir != tc.want.Storage || o.Logger == nil || o.Replay == nil {
				t.Fatalf("options %+v", o)
			}
		})
	}
}

func TestRunFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--log.level=verbose"}, "--log.level"},
		{[]string{"--log.format=text"}, "--log.format"},
		{[]string{"--web.external-url=assertd.example.com"}, "write an absolute http or https URL"},
		{[]string{"--web.external-url=ftp://assertd.example.com/"}, "write an absolute http or https URL"},
		{[]string{"--storage.path"}, "--storage.path"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errs := runCLI(append([]string{"run"}, tc.args...)...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, want 2 and %q in\n%s", code, tc.want, errs)
			}
		})
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tc := range []struct {
		name         string
		args         []string
		data, listen string
		format       string
	}{
		{"defaults", nil, "", "127.0.0.1:8080", "logfmt"},
		{"prometheus style", []string{"--storage.path=/tmp/d", "--web.listen-address=127.0.0.1:9", "--log.format=json"}, "/tmp/d", "127.0.0.1:9", "json"},
		{"aliases", []string{"--data", "/tmp/e", "--listen", "127.0.0.1:7"}, "/tmp/e", "127.0.0.1:7", "logfmt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cmd, err := parse(t, append([]string{"demo"}, tc.args...)...)
			if err != nil || cmd != "demo run" {
				t.Fatalf("parse: %q %v", cmd, err)
			}
			d := c.Demo.Run
			if d.Data != tc.data || d.Listen != tc.listen || d.LogFormat != tc.format {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

func TestJSONLogLine(t *testing.T) {
	var buf bytes.Buffer
	log := logFlags{LogLevel: "warn", LogFormat: "json"}.logger(&buf)
	log.Info("not shown below warn")
	log.Warn("reload failed", "file", "asserts/web.yaml", "line", 3)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("%v: %s", err, lines[0])
	}
	if rec["level"] != slog.LevelWarn.String() || rec["msg"] != "reload failed" || rec["file"] != "asserts/web.yaml" || rec["line"] != float64(3) || rec["time"] == nil {
		t.Fatalf("record %v", rec)
	}

	buf.Reset()
	logFlags{LogLevel: "debug", LogFormat: "logfmt"}.logger(&buf).Debug("tick", "n", 1)
	if got := buf.String(); !strings.Contains(got, "level=DEBUG msg=tick n=1") {
		t.Fatalf("logfmt line %q", got)
	}
}
